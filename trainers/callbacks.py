"""Callbacks: the training throughput monitor."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

__all__ = ["ThroughputMonitor", "batch_size_of"]


def batch_size_of(batch: Any) -> int:
    """Samples in a batch of the contract (``cube_id``), or the first dimension of a tensor."""
    if isinstance(batch, dict):
        if "cube_id" in batch:
            return len(batch["cube_id"])
        batch = next(v for v in batch.values() if isinstance(v, Tensor))
    if isinstance(batch, Tensor):
        return int(batch.shape[0])
    return len(batch)


class ThroughputMonitor(pl.Callback):
    """Samples/s per device and the fraction of training time spent waiting for data.

    Lightning fetches a batch and then calls ``on_train_batch_start``, so the time from the end
    of one training batch to the start of the next is the wait for data (fetching, collating,
    moving to the device), and the time from start to end is the step (forward, backward,
    optimiser, logging). Every ``window`` steps the callback logs, over those steps,
    ``throughput/samples_per_s_per_device``, ``throughput/samples_per_s`` (times the world size,
    assuming balanced ranks) and ``throughput/data_wait_fraction`` = wait / (wait + step). Each
    logged window is also kept in :attr:`history`.

    Parameters
    ----------
    window : int
        Training steps per measurement.
    """

    def __init__(self, window: int = 20) -> None:
        super().__init__()
        if window < 1:
            raise ValueError(f"window must be positive, got {window}")
        self.window = window
        self.history: list[dict[str, float]] = []
        self._reset()
        self._last_end: float | None = None
        self._start = 0.0

    def _reset(self) -> None:
        self._wait = 0.0
        self._compute = 0.0
        self._samples = 0
        self._steps = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start timing the epoch's first fetch."""
        self._last_end = time.perf_counter()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Close the wait of this batch."""
        now = time.perf_counter()
        if self._last_end is not None:
            self._wait += now - self._last_end
        self._start = now

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Close the step; log when a window is full."""
        now = time.perf_counter()
        self._compute += now - self._start
        self._samples += batch_size_of(batch)
        self._steps += 1
        self._last_end = now
        if self._steps >= self.window:
            self._log(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log a last, partial window (the epoch's tail)."""
        if self._steps:
            self._log(trainer, pl_module)
        self._last_end = None

    def _log(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        elapsed = max(self._wait + self._compute, 1e-9)
        per_device = self._samples / elapsed
        values = {
            "throughput/samples_per_s_per_device": per_device,
            "throughput/samples_per_s": per_device * trainer.world_size,
            "throughput/data_wait_fraction": self._wait / elapsed,
        }
        self.history.append({**values, "steps": float(self._steps)})
        pl_module.log_dict(values, batch_size=self._samples)
        self._reset()
