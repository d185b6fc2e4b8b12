"""The shuffle-quality and start-up benchmarks on small sizes: their figures mean what they say."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import shuffle, startup


def test_shuffle_figures_against_a_uniform_shuffle() -> None:
    record = shuffle.measure(shuffle.Settings(tiles=10, cubes_per_tile=20, batch_size=8))
    rows = {row["case"]: row for row in record["rows"]}
    default = rows["default"]
    assert default["loader"]["read_amplification"] == pytest.approx(1.0)
    assert default["loader"]["cubes"] == default["uniform"]["cubes"] == 8.0
    chunked = rows["samples_per_chunk=4"]
    assert chunked["uniform"]["read_amplification"] > 3.5  # a chunk read per item
    assert chunked["loader"]["read_amplification"] == pytest.approx(1.0)
    mixed = [rows[f"samples_per_chunk=4, patches=4, chunk_buffer={b}"] for b in (1, 4, 16)]
    cubes = [row["loader"]["cubes"] for row in mixed]
    assert cubes == sorted(cubes) and cubes[0] < 4.5 < 7 < cubes[-1]  # the buffer buys mixing
    assert "| default |" in shuffle.table(record)


def test_startup_rows_map_only_the_ranks_own_items(tmp_path: Path) -> None:
    record = startup.measure(startup.Settings(samples=(2000,), ranks=(1, 4), size=16))
    one, four = record["rows"]
    assert one["mapped"] == one["train_items"] == 1200
    assert four["per_rank"] <= four["mapped"] < four["per_rank"] + 8  # padding only
    assert all(r["first_batch_s"] > 0 for r in record["rows"])
    assert "| 2,000 | 4 |" in startup.table(record)
