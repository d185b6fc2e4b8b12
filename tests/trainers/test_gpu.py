"""GPU paths (opt-in: skipped without CUDA): DDP over NCCL and Lightning's DeepSpeed strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from trainer_models import setting_of, tiny_rnn

from trainers.task import ForecastTask

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _fit(store: Path, root: Path, strategy: Any, precision: str = "32-true") -> pl.Trainer:
    torch.manual_seed(0)
    run = pl.Trainer(
        accelerator="gpu",
        devices=1,
        strategy=strategy,
        precision=precision,  # type: ignore[arg-type]
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        default_root_dir=str(root),
    )
    run.fit(ForecastTask(tiny_rnn(), train_pixels=64), setting_of(store, loader="stream"))
    return run


@pytest.mark.timeout(600)
def test_ddp_nccl(l2_store: Path, tmp_path: Path) -> None:
    run = _fit(l2_store, tmp_path, "ddp")
    assert torch.isfinite(run.callback_metrics["val/mae"])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_lightning_deepspeed_strategy(l2_store: Path, tmp_path: Path, stage: int) -> None:
    from pytorch_lightning.strategies import DeepSpeedStrategy

    run = _fit(l2_store, tmp_path, DeepSpeedStrategy(stage=stage), precision="bf16-mixed")
    assert torch.isfinite(run.callback_metrics["train/loss"])
