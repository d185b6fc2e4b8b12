"""Multi-process training on CPU: DDP over gloo (Lightning), DeepSpeed ZeRO (its engine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import ModelCheckpoint
from trainer_models import setting_of, tiny_rnn

from trainers.deepspeed_cpu import train_deepspeed_cpu
from trainers.task import ForecastTask


class SeenSamples(pl.Callback):
    """Each rank writes the training samples it received and its process group backend."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_train_batch_start(self, trainer: pl.Trainer, module: Any, batch: Any, idx: int) -> None:
        backend = torch.distributed.get_backend() if torch.distributed.is_initialized() else None
        path = self.out / f"rank{trainer.global_rank}.jsonl"
        with path.open("a") as f:
            f.write(json.dumps({"samples": batch["sample"].tolist(), "backend": backend}) + "\n")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_one_epoch_ddp_with_two_cpu_processes(l2_store: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = ForecastTask(tiny_rnn(), train_pixels=64)
    run = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(tmp_path),
        callbacks=[
            SeenSamples(tmp_path),
            ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True),
        ],
    )
    run.fit(task, setting_of(l2_store, loader="stream"))
    ranks = [
        [json.loads(line) for line in (tmp_path / f"rank{r}.jsonl").read_text().splitlines()]
        for r in (0, 1)
    ]
    assert len(ranks[0]) == len(ranks[1]) == 2  # 6 samples, batch 2, 2 ranks: padded to 2 each
    assert {b["backend"] for rank in ranks for b in rank} == {"gloo"}
    seen = {s for rank in ranks for b in rank for s in b["samples"]}
    assert seen == {0, 1, 2, 5, 6, 7}  # every training sample, across the ranks
    assert torch.isfinite(run.callback_metrics["val/mae"])
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 2
    for name, value in task.state_dict().items():
        torch.testing.assert_close(value, saved["state_dict"][name], msg=name)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_deepspeed_zero2_with_two_cpu_ranks(
    l2_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extensions = tmp_path / "torch_extensions"
    extensions.mkdir()
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(extensions))  # inherited by the ranks
    config = {
        "seed_everything": 0,
        "model": {
            "model": {"class_path": "trainers.models.RNN", "init_args": {"hidden": 16}},
            "lr": 0.01,
            "scheduler": "constant",
            "train_pixels": 256,
        },
        "data": {"store": str(l2_store), "batch_size": 1, "num_workers": 0},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "ds"
    summary = train_deepspeed_cpu(
        ["--config", str(path), "--deepspeed.out", str(out), "--deepspeed.stage", "2",
         "--deepspeed.world_size", "2", "--deepspeed.max_steps", "12"]
    )  # fmt: skip
    losses = [entry["loss"] for entry in summary["losses"]]
    assert summary["steps"] == 12 and len(losses) == 12
    assert summary["deepspeed"]["zero_optimization"]["stage"] == 2
    assert sum(losses[-4:]) < sum(losses[:4]), losses
    step = out / "checkpoints" / "step12"
    assert (step / "mp_rank_00_model_states.pt").is_file()
    partitions = sorted(p.name for p in step.glob("*optim_states.pt"))
    assert partitions == [
        "zero_pp_rank_0_mp_rank_00_optim_states.pt",
        "zero_pp_rank_1_mp_rank_00_optim_states.pt",
    ]
    assert not any(extensions.iterdir()), "DeepSpeed compiled an op at run time"
