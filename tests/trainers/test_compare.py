"""Model comparison and saliency on a briefly trained RNN."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from cubestream.cli import main as cubestream
from cubestream.l2.schema import STEPS
from trainers import compare, saliency
from trainers.config import load_trained


@pytest.fixture(scope="module")
def trained(l2_store: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A config and a checkpoint of one epoch of a tiny RNN."""
    root = tmp_path_factory.mktemp("trained")
    config = root / "rnn.yaml"
    model = {"class_path": "trainers.models.RNN", "init_args": {"hidden": 8}}
    data = {"store": str(l2_store), "batch_size": 2, "num_workers": 0}
    config.write_text(yaml.safe_dump({"model": {"model": model, "lr": 0.01}, "data": data}))
    trainer = ["--trainer.max_epochs", "1", "--trainer.logger", "false"]
    trainer += ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false"]
    assert cubestream(["train", "fit", "--config", str(config), *trainer]) == 0
    (checkpoint,) = (root / "checkpoints").glob("*.ckpt")
    return config, checkpoint


def test_performance_gain_by_hand() -> None:
    a = {"abs_sum": np.array([1.0, 2.0, 3.0]), "count": np.array([2.0, 2.0, 2.0])}
    b = {"abs_sum": np.array([2.0, 2.0, 8.0]), "count": np.array([2.0, 2.0, 2.0])}
    overall = compare.performance_gain(a, b)
    assert overall["mae_a"] == pytest.approx(1.0) and overall["mae_b"] == pytest.approx(2.0)
    assert overall["gain"] == pytest.approx(50.0) and overall["pixels"] == 3
    first_two = compare.performance_gain(a, b, np.array([True, True, False]))
    assert first_two["gain"] == pytest.approx((1 - 3 / 4) * 100)


def test_compare_a_model_with_persistence(
    trained: tuple[Path, Path], l2_store: Path, tmp_path: Path
) -> None:
    config, checkpoint = trained
    out = tmp_path / "compare"
    args = ["--store", str(l2_store), "--out", str(out), "--b", "persistence"]
    assert compare.main([*args, "--a", "rnn", str(config), str(checkpoint)]) == 0
    result = json.loads((out / "comparison.json").read_text())
    assert (result["a"], result["b"]) == ("rnn", "persistence")
    overall = result["overall"]
    assert overall["gain"] == pytest.approx((1 - overall["mae_a"] / overall["mae_b"]) * 100)
    assert 0 <= result["ks"]["pvalue"] <= 1 and 0 <= result["ks"]["statistic"] <= 1
    assert set(result["landcover"]) == {"10 tree", "20 shrub", "30 grass", "40 crop", "90 wetland"}
    assert sum(v["pixels"] for v in result["landcover"].values()) == overall["pixels"]
    assert result["example_cube"] == "37MBU0004"
    # a store without tracks: every test sample is iid, and the track repeats the overall
    assert set(result["tracks"]) == {"iid"}
    assert result["tracks"]["iid"]["gain"] == pytest.approx(overall["gain"])
    assert result["tracks"]["iid"]["ks"] == pytest.approx(result["ks"])
    for figure in result["figures"]:
        assert Path(figure).stat().st_size > 10_000


def test_persistence_against_itself_gains_nothing(l2_store: Path, tmp_path: Path) -> None:
    from trainers.setting import KndviSetting

    setting = KndviSetting(str(l2_store), batch_size=2)
    a, b = compare.baseline("persistence"), compare.baseline("persistence")
    result = compare.compare(a, b, setting, tmp_path)
    assert result["overall"]["gain"] == pytest.approx(0.0)
    assert result["ks"]["statistic"] == pytest.approx(0.0)


def test_saliency_of_a_trained_model(
    trained: tuple[Path, Path], l2_store: Path, tmp_path: Path
) -> None:
    config, checkpoint = trained
    loaded = load_trained(config, checkpoint)
    loaded.setting.setup("test")
    batch = saliency.select_cube(loaded.setting.test_dataloader(), "37MBU0009")
    result = saliency.saliency(loaded.task, batch, problem=loaded.setting.problem)
    assert result["cube_id"] == "37MBU0009"
    assert result["context"].shape == (9, 10) and result["weather"].shape == (STEPS, 6)
    assert result["statics"].shape == (12,) and result["context_map"].shape == (32, 32)
    assert result["context"].sum() > 0 and result["weather"].sum() > 0
    assert len(result["context_channels"]) == 10 and result["context_channels"][0] == "B02"
    figure = tmp_path / "saliency.png"
    args = ["--config", str(config), "--ckpt", str(checkpoint), "--store", str(l2_store)]
    assert saliency.main([*args, "--out", str(figure), "--cube", "37MBU0004"]) == 0
    assert figure.stat().st_size > 10_000
