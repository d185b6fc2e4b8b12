"""The training benchmark runs end to end at a tiny size and records what it promises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.train_step import main

TIMED = {"steps", "samples_per_s", "steps_per_s", "data_wait_fraction", "gpu_utilisation"}


@pytest.mark.slow
def test_tiny_run_appends_one_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "train.jsonl"
    argv = ["--size", "16", "--batch-size", "2", "--steps", "2", "--warmup", "1"]
    argv += ["--workers", "0", "--threads", "1", "--models", "rnn", "noop", "--out", str(out)]
    record = main([*argv, "--workdir", str(tmp_path / "work")])
    assert "samples/s" in capsys.readouterr().out
    lines = out.read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0]) == json.loads(json.dumps(record))
    assert record["settings"]["samples"] == 6 and record["settings"]["torch_threads"] == 1
    assert set(record["models"]) == {"rnn", "noop"}
    for model in record["models"].values():
        for run in ("real_loader", "in_memory", "peer"):
            assert set(model[run]) >= TIMED
            assert model[run]["steps"] == 2 and model[run]["samples"] == 4
        assert 0 <= model["real_loader"]["data_wait_fraction"] <= 1
        assert model["ratio_to_in_memory"] > 0 and model["ratio_to_peer"] > 0
        if record["settings"]["device"] == "cpu":
            assert model["samples_per_s_per_gpu"] is None
            assert model["real_loader"]["gpu_utilisation"]["reason"]
