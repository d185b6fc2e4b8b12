"""The loader benchmark runs end to end at a tiny size and records what it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.loader import main

KEYS = {"benchmark", "time", "git", "machine", "versions", "settings", "stores"}
STORE = {
    "samples_per_chunk", "variables", "ceiling", "ceiling_getitem", "cubestream",
    "xbatcher_map", "xbatcher_iterable", "ratios", "meets_goal",
}  # fmt: skip
RUN = {"seconds", "epoch_samples_per_s", "ratio", "ratios", "first_pass_seconds", "memory_mb"}


@pytest.mark.slow
def test_tiny_run_appends_one_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results" / "loader.jsonl"
    argv = ["--samples", "8", "--size", "16", "--batch-size", "4", "--workers", "0", "1"]
    argv += ["--passes", "1", "--start-method", "forkserver", "--no-cache", "--out", str(out)]
    record = main(argv)
    assert "zarr ceiling" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == json.loads(json.dumps(record))
    assert set(record) >= KEYS
    assert [s["samples_per_chunk"] for s in record["stores"]] == [1, 4]
    for store in record["stores"]:
        assert set(store) >= STORE
        for kind in ("cubestream", "xbatcher_map", "xbatcher_iterable"):
            assert set(store[kind]) == {"0", "1"}
            assert set(store[kind]["1"]) >= RUN
        ours = store["cubestream"]["1"]
        assert ours["samples"] == ours["distinct_samples"] == 8  # one epoch, each sample once
        assert store["xbatcher_iterable"]["1"]["samples"] == 8  # one worker: no repeats
        assert store["ceiling"]["bytes"] == sum(
            v["decoded_bytes"] for v in store["variables"].values()
        )
        assert set(store["ratios"]["cubestream_over_ceiling"]) == {"0", "1"}
    assert {"torch", "zarr", "xbatcher"} <= set(record["versions"])
