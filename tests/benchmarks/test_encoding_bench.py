"""The encoding benchmark at a tiny size: every candidate holds the same samples, the ratios are
against today's float32 store, the choice follows its rule, and the suite summarises it."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import encoding
from benchmarks.projection import ClusterSpec
from benchmarks.suite import stage_record
from cubestream.l2.encoding import MAX_ERROR


def test_tiny_run_ratios_choice_and_summary(tmp_path: Path) -> None:
    settings = encoding.Settings(
        samples=2,
        size=16,
        batch_size=2,
        passes=1,
        candidates=("today", "float16", "uint16-zstd3-bitshuffle"),
        gpu_rates=False,
        out=tmp_path / "encoding.jsonl",
    )
    record = encoding.measure(settings)
    by_name = {c["name"]: c for c in record["candidates"]}
    assert list(by_name) == ["today", "float16", "uint16-zstd3-bitshuffle"]
    today, scaled = by_name["today"], by_name["uint16-zstd3-bitshuffle"]
    assert today["max_abs_error"] == {"s2": 0.0, "kndvi": 0.0}
    assert 0 < scaled["max_abs_error"]["s2"] <= MAX_ERROR
    assert by_name["float16"]["max_abs_error"]["kndvi"] > encoding.ERROR_LIMIT
    assert today["vs_today"]["stored_mb_per_sample"] == 1.0
    assert scaled["decoded_mb_per_sample"] < 0.7 * today["decoded_mb_per_sample"]
    for candidate in record["candidates"]:
        for phase in ("ceiling", "loader_device", "loader_cpu", "naive"):
            assert candidate[phase]["samples"] == 2 and candidate[phase]["cpu_s"] > 0
    assert record["chosen"]["name"] == "uint16-zstd3-bitshuffle"  # float16 is not accurate
    assert record["implemented"] == {
        "values": "uint16",
        "codec": "blosc-zstd3-bitshuffle",
        "samples_per_chunk": 1,
        "s2_time_chunk": 9,
        "s2_read_steps_of_the_trainers": 9,
    }
    assert record["chosen_layout"] is None  # no candidate read s2 for the context
    assert record["mask_bits"]["bits"]["stored_bytes_per_sample"] > 0
    summary = stage_record("encoding", record, ClusterSpec(), {"run": "t", "preset": "tiny"})
    assert [row["row"].split()[1] for row in summary["rows"]] == [
        "today",
        "uint16-zstd3-bitshuffle",
    ]
    assert "samples per core-s" in encoding.table(record)


def test_the_context_layout_reads_a_fifth_of_s2(tmp_path: Path) -> None:
    names = ("today", "uint16-zstd3-bitshuffle", "bitshuffle-context", "bitshuffle-time9-context")
    settings = encoding.Settings(
        samples=2, size=16, batch_size=2, passes=1, candidates=names, gpu_rates=False,
        out=tmp_path / "encoding.jsonl",
    )  # fmt: skip
    record = encoding.measure(settings)
    by_name = {c["name"]: c for c in record["candidates"]}
    whole, chunks = by_name["bitshuffle-context"], by_name["bitshuffle-time9-context"]
    assert (whole["s2_time_chunk"], chunks["s2_time_chunk"]) == (None, 9)
    assert whole["s2_read_steps"] == chunks["s2_read_steps"] == 9
    whole_s2 = whole["s2_stored_mb_per_sample"]  # whole chunks: all of it (but the metadata)
    assert whole["s2_read_mb_per_sample"] == pytest.approx(whole_s2, rel=0.02)
    assert 0.15 < chunks["s2_read_mb_per_sample"] / chunks["s2_stored_mb_per_sample"] < 0.3
    assert chunks["read_mb_per_sample"] < whole["read_mb_per_sample"]
    for candidate in (whole, chunks):
        for phase in ("ceiling", "loader_device", "loader_cpu", "naive"):
            assert candidate[phase]["samples"] == 2 and candidate[phase]["cpu_s"] > 0
    assert record["chosen"]["name"] == "uint16-zstd3-bitshuffle"  # layouts are chosen apart
    layout = record["chosen_layout"]
    assert layout["tried"] == ["bitshuffle-context", "bitshuffle-time9-context"]
    assert layout["name"] in layout["small"]
    summary = stage_record("encoding", record, ClusterSpec(), {"run": "t", "preset": "tiny"})
    assert summary["rows"][-1]["row"].split()[1] == layout["name"]
    assert "chosen layout" in encoding.table(record)


def test_flags_make_the_settings() -> None:
    assert encoding._arguments([]) == encoding.Settings()
    assert len(encoding.Settings().candidates) == len(encoding.CANDIDATES)
    settings = encoding._arguments(["--candidates", "float16", "uint16-lz4", "--no-gpu-rates"])
    assert settings.candidates == ("float16", "uint16-lz4") and settings.gpu_rates is False
    with pytest.raises(SystemExit):
        encoding._arguments(["--candidates", "float64"])


def test_the_benchmark_reads_what_the_trainers_read() -> None:
    """The benchmark keeps its own list (it must not import Lightning); it must stay the same."""
    from trainers.setting import VARIABLES

    assert encoding.VARIABLES == VARIABLES
