"""Comparing runs by their protocol tables, with seeds as repeats."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from trainers import compare_runs
from trainers.errors import TrainerConfigError
from trainers.score_table import score_table


def _run(rmse: float, nse: float, r2: float = 0.5) -> dict:
    """A run document with one iid cube-class row per forecaster (climatology fixed)."""
    base = {"cube_id": "c", "sample": 4, "landcover": 10, "pixels": 5, "track": "iid"}
    base |= {"veg_nnse_sum": 0.0, "veg_pixels": 0}
    rows = [
        {**base, "forecaster": "model", "rmse": rmse, "nse": nse, "nnse": 1 / (2 - nse)}
        | {"r2": r2, "bias_abs": 0.0},
        {**base, "forecaster": "climatology", "rmse": 0.2, "nse": 0.0, "nnse": 0.5}
        | {"r2": 0.0, "bias_abs": 0.05},
    ]
    return {"table": score_table(rows), "rows": rows}


def test_seeds_give_mean_and_spread_and_pairwise_wins(tmp_path: Path) -> None:
    a = [_run(0.1, 0.1, 0.6), _run(0.1, 0.3, 0.6), _run(0.1, 0.5, 0.6)]
    b = [_run(0.3, -0.5), _run(0.3, -0.5), _run(0.1, 0.5)]
    result = compare_runs.compare_runs(a, b)
    iid = result["tracks"]["iid"]
    assert iid["a"]["nse"]["mean"] == pytest.approx(0.3)
    assert iid["a"]["nse"]["std"] == pytest.approx(0.2)
    assert iid["a"]["nse"]["n"] == 3
    assert iid["b"]["rmse"]["mean"] == pytest.approx(0.7 / 3)
    assert iid["a_minus_b"]["nse"] == pytest.approx(0.3 - (-0.5 - 0.5 + 0.5) / 3)
    # pairs 1, 2: RMSE, NSE and R2 gains (3 of 4) -> A wins; pair 3: only R2 -> it does not
    assert iid["a_beats_b"]["mean"] == pytest.approx(2 / 3)
    assert set(result["tracks"]) == {"all", "iid"}
    for i, run in enumerate(a + b):
        (tmp_path / f"run{i}").mkdir()
        (tmp_path / f"run{i}" / "protocol_scores.json").write_text(json.dumps(run))
    args = ["--a", *(str(tmp_path / f"run{i}") for i in range(3))]
    args += ["--b", *(str(tmp_path / f"run{i}") for i in range(3, 6))]
    assert compare_runs.main([*args, "--out", str(tmp_path / "out"), "--names", "ctx", "rnn"]) == 0
    markdown = (tmp_path / "out" / "runs.md").read_text()
    assert "| iid | ctx | 0.300 ± 0.200 |" in markdown
    assert "ctx beats rnn" in markdown
    saved = json.loads((tmp_path / "out" / "runs.json").read_text())
    assert saved["seeds"] == {"a": 3, "b": 3}


def test_against_a_baseline_and_missing_runs(tmp_path: Path) -> None:
    result = compare_runs.compare_runs(
        [_run(0.1, 0.3)], [_run(0.1, 0.3)], forecaster_b="climatology"
    )
    iid = result["tracks"]["iid"]
    assert iid["b"]["nse"]["mean"] == 0.0 and iid["b"]["nse"]["std"] == 0.0
    assert math.isnan(iid["b"]["beats_climatology"]["mean"])
    assert iid["a_beats_b"]["mean"] == 1.0
    with pytest.raises(TrainerConfigError, match="train test"):
        compare_runs.load_run(tmp_path / "nowhere")
