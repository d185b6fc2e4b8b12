"""The shipped configs through `cubestream train` (LightningCLI) on a tiny store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import zarr
from jsonargparse import Namespace

from cubestream.cli import main
from cubestream.l2.synthetic import write_synthetic_l2
from trainers.cli import place_outputs

CONFIGS = Path(__file__).resolve().parents[2] / "trainers" / "configs"
"""The shipped configs (in the checkout, beside these tests)."""
SMALL = {
    "rnn.yaml": ["--model.model.init_args.hidden", "8"],
    "context_rnn.yaml": [
        "--model.model.init_args.hidden", "8",
        "--model.model.init_args.embedding", "4",
        "--model.model.init_args.pyramid_channels", "8",
        "--model.model.init_args.segmentation_channels", "8",
    ],
    "conv_lstm.yaml": ["--model.model.init_args.hidden", "2"],
    "contextformer.yaml": ["--model.model.init_args.width", "8"],
}  # fmt: skip


def test_every_shipped_config_is_tested() -> None:
    assert sorted(p.name for p in CONFIGS.glob("*.yaml")) == sorted(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_shipped_config_runs_with_fast_dev_run(
    name: str, l2_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the configs' default_root_dir is relative: demo/train/...
    args = ["train", "fit", "--config", str(CONFIGS / name), "--data.store", str(l2_store)]
    assert (
        main([*args, *SMALL[name], "--data.batch_size", "2", "--trainer.fast_dev_run", "true"]) == 0
    )


def test_fit_then_test_and_predict_from_the_checkpoint(
    l2_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Everything a run writes goes under --trainer.default_root_dir, wherever the run starts."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "elsewhere" / "rnn"
    common = [
        "--config",
        str(CONFIGS / "rnn.yaml"),
        "--data.store",
        str(l2_store),
        "--trainer.default_root_dir",
        str(root),
        *SMALL["rnn.yaml"],
    ]
    fit = ["--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2"]
    assert main(["train", "fit", *common, *fit]) == 0
    last = root / "checkpoints" / "last.ckpt"
    assert last.is_file() and (root / "checkpoints" / "best.ckpt").is_file()
    assert (root / "csv" / "fit" / "metrics.csv").is_file()
    assert any((root / "tensorboard" / "fit").glob("events.out.tfevents.*"))
    assert main(["train", "test", *common, "--ckpt_path", str(last)]) == 0
    assert (root / "scores.json").is_file()
    assert "val/mae" in (root / "csv" / "fit" / "metrics.csv").read_text()  # kept by test
    assert "test/mae" in (root / "csv" / "test" / "metrics.csv").read_text()
    assert main(["train", "predict", *common, "--ckpt_path", str(last)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]


def test_place_outputs_fills_in_only_what_is_unset() -> None:
    checkpoint = "pytorch_lightning.callbacks.ModelCheckpoint"
    trainer = Namespace(
        default_root_dir="runs/a",
        logger=True,
        callbacks=[
            Namespace(class_path=checkpoint, init_args=Namespace(dirpath=None)),
            Namespace(class_path=checkpoint, init_args=Namespace(dirpath="kept")),
            Namespace(class_path="trainers.callbacks.ThroughputMonitor", init_args=Namespace()),
        ],
    )
    place_outputs(trainer, "fit")
    assert [c.init_args.get("dirpath") for c in trainer.callbacks] == [
        str(Path("runs/a/checkpoints")),
        "kept",
        None,
    ]
    assert [(g.init_args.save_dir, g.init_args.version) for g in trainer.logger] == [
        ("runs/a", "fit"),
        ("runs/a", "fit"),
    ]
    given = Namespace(default_root_dir=None, logger=False, callbacks=None)
    place_outputs(given, "test")
    assert given.logger is False and given.default_root_dir == "."


def _with_four_weather_variables(path: Path) -> Path:
    """A synthetic store whose weather has 4 variables instead of 6."""
    write_synthetic_l2(path, samples=5, size=16)
    root = zarr.open_group(path, mode="r+")
    weather = root["weather"][...][..., :4]
    names = np.array([str(v) for v in root["weather_variable"][...]][:4])
    attrs = {k: list(v)[:4] for k, v in root["weather"].attrs.items()}  # type: ignore[arg-type]
    del root["weather"], root["weather_variable"]
    array = root.create_array(
        "weather",
        shape=weather.shape,
        dtype="float32",
        chunks=(1, *weather.shape[1:]),
        dimension_names=("sample", "time", "weather_variable"),
    )
    array[...] = weather
    array.attrs.update(attrs)
    coord = root.create_array(
        "weather_variable", shape=(4,), dtype=str, dimension_names=("weather_variable",)
    )
    coord[...] = names
    return path


def test_weather_size_is_linked_from_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _with_four_weather_variables(tmp_path / "four.zarr")
    monkeypatch.chdir(tmp_path)
    args = ["train", "fit", "--config", str(CONFIGS / "rnn.yaml"), "--data.store", str(store)]
    assert (
        main(
            [*args, *SMALL["rnn.yaml"], "--data.batch_size", "1", "--trainer.fast_dev_run", "true"]
        )
        == 0
    )


def test_train_help_and_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--help"]) == 0
    assert "fit" in capsys.readouterr().out
    missing = tmp_path / "missing.zarr"
    args = ["train", "fit", "--config", str(CONFIGS / "rnn.yaml"), "--data.store", str(missing)]
    assert main(args) == 3  # ExitCode.INPUT
    assert "no L2 store" in capsys.readouterr().err
