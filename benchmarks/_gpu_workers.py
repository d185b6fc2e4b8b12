"""The multi-process steps of :mod:`benchmarks.gpu_check`, each run in a child process.

Private helper. ``python -m benchmarks.gpu_check --worker NAME --store S --workdir D --out F``
runs :func:`run_worker`: ``ddp`` (DDP over NCCL, one process per GPU: Lightning starts the
other ranks by running the same command again) or ``zero1``/``zero2``/``zero3`` (Lightning's
DeepSpeed strategy: fit, save a checkpoint, reload it into a fresh model, resume the fit from
it). Rank 0 writes the result JSON to ``F``; any failure exits non-zero with its traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

__all__ = ["run_worker"]

BATCH = 8


class _Seen(pl.Callback):
    """What the run looked like from inside: backend, world size, the step it started at."""

    def __init__(self) -> None:
        self.seen: dict[str, Any] = {}

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        dist = torch.distributed
        self.seen = {
            "backend": dist.get_backend() if dist.is_initialized() else None,
            "world_size": trainer.world_size,
            "first_global_step": trainer.global_step,
            "strategy": type(trainer.strategy).__name__,
            "precision": str(trainer.precision),
        }


def _trainer(root: Path, strategy: Any, devices: int, steps: int, seen: _Seen) -> pl.Trainer:
    return pl.Trainer(
        accelerator="gpu",
        devices=devices,
        strategy=strategy,
        precision="bf16-mixed",
        max_steps=steps,
        limit_val_batches=1,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=str(root),
        callbacks=[seen],
    )


def _task() -> Any:
    from trainers.models import RNN
    from trainers.task import ForecastTask

    torch.manual_seed(0)
    return ForecastTask(RNN())


def _setting(store: str) -> Any:
    from trainers.setting import KndviSetting

    return KndviSetting(store, batch_size=BATCH, num_workers=2, seed=0)


def _ddp(store: str, root: Path) -> dict[str, Any]:
    seen = _Seen()
    trainer = _trainer(root, "ddp", torch.cuda.device_count(), 6, seen)
    trainer.fit(_task(), _setting(store))
    if seen.seen.get("backend") != "nccl":
        raise RuntimeError(f"DDP ran with backend {seen.seen.get('backend')!r}, not 'nccl'")
    return {**seen.seen, "global_step": trainer.global_step}


def _state_dict(path: Path) -> dict[str, Any]:
    from pytorch_lightning.utilities.deepspeed import convert_zero_checkpoint_to_fp32_state_dict

    single = path.with_suffix(".fp32.pt")
    convert_zero_checkpoint_to_fp32_state_dict(str(path), str(single))
    loaded = torch.load(single, map_location="cpu", weights_only=False)
    state = loaded.get("state_dict", loaded)
    return {k.removeprefix("_forward_module."): v for k, v in state.items()}


def _zero(stage: int, store: str, root: Path) -> dict[str, Any]:
    from pytorch_lightning.strategies import DeepSpeedStrategy

    seen = _Seen()
    trainer = _trainer(root, DeepSpeedStrategy(stage=stage), 1, 4, seen)
    trainer.fit(_task(), _setting(store))
    checkpoint = root / f"zero{stage}.ckpt"
    trainer.save_checkpoint(checkpoint)
    first = dict(seen.seen)
    fresh = _task()
    loaded = fresh.load_state_dict(_state_dict(checkpoint), strict=False)
    parameters = dict(fresh.named_parameters())
    missing = [key for key in loaded.missing_keys if key in parameters]
    if missing:
        raise RuntimeError(f"ZeRO {stage}: the reloaded checkpoint lacks parameters {missing}")
    resumed_seen = _Seen()
    resumed = _trainer(root, DeepSpeedStrategy(stage=stage), 1, 8, resumed_seen)
    resumed.fit(_task(), _setting(store), ckpt_path=str(checkpoint))
    start = resumed_seen.seen.get("first_global_step")
    if start != 4 or resumed.global_step != 8:
        raise RuntimeError(
            f"ZeRO {stage}: the resumed fit started at step {start} and ended at "
            f"{resumed.global_step}, expected 4 and 8"
        )
    return {
        "first_fit": first,
        "checkpoint": str(checkpoint),
        "checkpoint_is_directory": checkpoint.is_dir(),
        "reloaded_parameters": sum(p.numel() for p in parameters.values()),
        "reload_missing_buffers": list(loaded.missing_keys),
        "reload_unexpected_keys": list(loaded.unexpected_keys),
        "resumed_from_step": start,
        "resumed_to_step": resumed.global_step,
        "peak_gpu_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 3),
    }


def run_worker(name: str, store: str, workdir: Path, out: Path) -> int:
    """Run one worker step; rank 0 writes its result to ``out``; return 0."""
    workdir.mkdir(parents=True, exist_ok=True)
    if name == "ddp":
        result = _ddp(store, workdir)
    elif name in ("zero1", "zero2", "zero3"):
        result = _zero(int(name[-1]), store, workdir)
    else:
        raise ValueError(f"unknown worker {name!r}")
    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    if rank == 0:
        out.write_text(json.dumps(result, indent=1, default=str) + "\n", encoding="utf-8")
    return 0
