"""A history of the suite made from small stage records, for the report and CLI tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks import _context
from benchmarks._context import append_record
from benchmarks.projection import ClusterSpec
from benchmarks.suite import stage_record


def _context_of(time: str) -> dict[str, Any]:
    return {
        "time": time,
        "git": {"commit": "abc1234", "dirty": False},
        "machine": _context.machine(),
        "versions": {"cubestream": "0.1.0"},
    }


def _phase(seconds: float, cog_bytes: int) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "fetched": {"cog_bytes": cog_bytes},
        "peak_rss_mb_per_worker": [300.0, 280.0],
    }


def l1_figures(time: str, seconds: float) -> dict[str, Any]:
    whole = {
        **_phase(4 * seconds, 50_000_000),
        "whole_tile_in_memory": False,
        "days_in_memory": 6,
        "whole_tile_days": 18,
    }
    return {
        **_context_of(time),
        "settings": {"preset": "tiny", "workers": 2, "threads_per_worker": 1},
        "sizes": {"cubes": 16, "tiles": ["37MBU"], "cubes_per_tile": {"37MBU": 16}},
        "cubestream": {**_phase(seconds, 10_000_000), "days": {"37MBU": 18}},
        "cog_floor": {"blocks": 8_000_000, "file": 60_000_000},
        "peer": _phase(3 * seconds, 12_000_000),
        "whole_tile": whole,
    }


def _run(rate: float) -> dict[str, Any]:
    seconds = 32 / (rate / 0.9)  # the paired ceiling passes: 32 samples at rate / 0.9
    return {
        "epoch_samples_per_s": rate,
        "mb_per_s": 10 * rate,
        "ratio": 0.9,
        "ceiling_seconds_runs": [seconds, seconds],
    }


def loader_figures(time: str, rate: float) -> dict[str, Any]:
    store = {
        "samples_per_chunk": 1,
        "variables": {"s2": {"stored_bytes": 32_000_000}, "kndvi": {"stored_bytes": 3_200_000}},
        "ceiling": _run(rate / 0.9),
        "cubestream": {"0": _run(rate * 0.8), "1": _run(rate)},
        "xbatcher_map": {"0": _run(rate / 3), "1": _run(rate / 4)},
        "xbatcher_iterable": {"0": _run(rate / 5), "1": _run(rate / 6)},
    }
    return {
        **_context_of(time),
        "settings": {"samples": 32, "size": 128, "batch_size": 8, "workers": [0, 1]},
        "stores": [store, {**store, "samples_per_chunk": 4}],
    }


def train_figures(time: str, rate: float) -> dict[str, Any]:
    gpu = {"mean_percent": None, "reason": "no CUDA device"}
    real = {"samples_per_s": rate, "steps_per_s": rate / 4, "data_wait_fraction": 0.1}
    model = {
        "real_loader": {**real, "gpu_utilisation": gpu},
        "in_memory": {"samples_per_s": rate / 0.9},
        "ratio_to_in_memory": 0.9,
        "peer": {"samples_per_s": rate / 2},
        "ratio_to_peer": 2.0,
    }
    return {
        **_context_of(time),
        "settings": {"samples": 48, "size": 32, "batch_size": 4, "device": "cpu", "steps": 10},
        "models": {"rnn": model, "context_rnn": model, "noop": model},
    }


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """Two runs of every stage, the second faster."""
    path = tmp_path / "history.jsonl"
    cluster = ClusterSpec(nodes=4, cores_per_node=16)
    for n, time in enumerate(("2026-01-01T10:00:00+00:00", "2026-01-02T10:00:00+00:00")):
        suite = {"run": f"run-{n}", "preset": "tiny", "stages": ["l1", "loader", "train"]}
        for stage, figures in (
            ("l1", l1_figures(time, 10.0 - n)),
            ("loader", loader_figures(time, 40.0 + n)),
            ("train", train_figures(time, 8.0 + n)),
        ):
            append_record(path, stage_record(stage, figures, cluster, suite))
    return path
