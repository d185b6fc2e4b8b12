"""The models learn on the replica world's data, through the real L2 builder and loader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from trainers.models import RNN
from trainers.setting import KndviSetting
from trainers.task import ForecastTask

EPOCHS = 12


class LossRecord(pl.Callback):
    """The training loss of every step."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.losses.append(float(trainer.callback_metrics["train/loss"]))


def test_loss_goes_down_on_replica_data(replica_l2_store: Path, tmp_path: Path) -> None:
    """The RNN learns how the weather moves each pixel, beyond both baselines.

    A new model forecasts each pixel's context level, about what the climatology baseline
    forecasts. Each epoch sees every training sample once, so the mean loss of the last epoch
    must be clearly below that of the first, and the validation MAE below the persistence and
    climatology MAE of the same pixels.
    """
    torch.manual_seed(0)
    setting = KndviSetting(str(replica_l2_store), batch_size=1, num_workers=0, seed=0)
    model = RNN(weather_variables=len(setting.problem.weather_variables), hidden=32)
    task = ForecastTask(model, lr=1e-2, train_pixels=256, scheduler="constant")
    record = LossRecord()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        check_val_every_n_epoch=EPOCHS,
        callbacks=[record],
        default_root_dir=str(tmp_path),
    )
    trainer.fit(task, setting)
    per_epoch = len(record.losses) // EPOCHS
    first = sum(record.losses[:per_epoch]) / per_epoch
    last = sum(record.losses[-per_epoch:]) / per_epoch
    assert last < 0.85 * first, record.losses
    scores = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    assert scores["val/mae"] < 0.9 * scores["val/climatology_mae"], scores
    assert scores["val/mae"] < 0.9 * scores["val/persistence_mae"], scores
