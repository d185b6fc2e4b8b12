"""The L2 layout: ``s2`` chunked along time in the context steps; the layout before still valid."""

from __future__ import annotations

from pathlib import Path

import pytest

from cubestream.errors import L2StoreError
from cubestream.l2 import check_store
from cubestream.l2.schema import STEPS, TIME_CHUNKS, chunks_of
from cubestream.l2.synthetic import write_synthetic_l2

SIZES = {"sample": 5, "time": STEPS, "band": 9, "y": 128, "x": 128, "weather_variable": 6}


def test_s2_is_chunked_in_the_context_steps_and_the_rest_whole() -> None:
    assert TIME_CHUNKS == {"s2": 9}
    assert chunks_of("s2", SIZES, 1) == (1, 9, 9, 128, 128)
    assert chunks_of("s2", SIZES, 2, {}) == (2, STEPS, 9, 128, 128)  # the layout before
    assert chunks_of("kndvi", SIZES, 1) == (1, STEPS, 128, 128)
    assert chunks_of("weather", SIZES, 4) == (4, STEPS, 6)
    assert chunks_of("dem", SIZES, 1) == (1, 128, 128)


def test_both_layouts_pass_the_check_and_a_split_target_does_not(tmp_path: Path) -> None:
    for name, time_chunks in (("new", None), ("old", {}), ("time3", {"s2": 3})):
        store = write_synthetic_l2(tmp_path / name, 2, size=16, time_chunks=time_chunks)
        assert check_store(str(store))["time"] == STEPS
    bad = write_synthetic_l2(tmp_path / "bad", 2, size=16, time_chunks={"kndvi": 9})
    with pytest.raises(L2StoreError, match=r"'kndvi' of .* is chunked \(1, 9, 16, 16\)"):
        check_store(str(bad))
