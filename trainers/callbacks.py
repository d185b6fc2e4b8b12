"""Callbacks: the step clock and the training throughput monitor built on it."""

from __future__ import annotations

import time
from typing import Any

import pytorch_lightning as pl
from torch import Tensor

__all__ = ["StepClock", "ThroughputMonitor", "batch_size_of"]


def batch_size_of(batch: Any) -> int:
    """Samples in a batch of the contract (``cube_id``), or the first dimension of a tensor."""
    if isinstance(batch, dict):
        if "cube_id" in batch:
            return len(batch["cube_id"])
        batch = next(v for v in batch.values() if isinstance(v, Tensor))
    if isinstance(batch, Tensor):
        return int(batch.shape[0])
    return len(batch)


class StepClock(pl.Callback):
    """Times every training step and the wait for its batch; subclasses take each measurement.

    Lightning fetches a batch (and moves it to the device) and then calls
    ``on_train_batch_start``, so the time from the end of one training batch (or the start of
    the epoch) to the start of the next is the wait for data (fetching, collating, moving to the
    device), and the time from start to end is the step (forward, backward, optimiser,
    logging). Each step is handed to :meth:`measured`; :meth:`fetched` sees each batch before
    its step, untimed.
    """

    def __init__(self) -> None:
        super().__init__()
        self._last_end: float | None = None
        self._start = 0.0
        self._wait = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Start timing the epoch's first fetch."""
        self._last_end = time.perf_counter()

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        """Close the wait of this batch; start its step."""
        now = time.perf_counter()
        self._wait = now - self._last_end if self._last_end is not None else 0.0
        self.fetched(batch)
        self._start = time.perf_counter()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Close the step and hand it on."""
        self._last_end = time.perf_counter()
        self.measured(trainer, pl_module, self._wait, self._last_end - self._start, batch)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Stop timing: the next epoch's first wait starts at its own start."""
        self._last_end = None

    def fetched(self, batch: Any) -> None:
        """See a batch before its step (not timed); nothing by default."""

    def measured(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        wait: float,
        step: float,
        batch: Any,
    ) -> None:
        """Take one step's measurement: seconds waiting for ``batch``, seconds of its step."""
        raise NotImplementedError


class ThroughputMonitor(StepClock):
    """Samples/s per device and the fraction of training time spent waiting for data.

    The wait and the step are those of :class:`StepClock`. Every ``window`` steps the callback
    logs, over those steps, ``throughput/samples_per_s_per_device``, ``throughput/samples_per_s``
    (times the world size, assuming balanced ranks) and ``throughput/data_wait_fraction`` =
    wait / (wait + step). Each logged window is also kept in :attr:`history`.

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

    def _reset(self) -> None:
        self._waits = 0.0
        self._compute = 0.0
        self._samples = 0
        self._steps = 0

    def measured(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        wait: float,
        step: float,
        batch: Any,
    ) -> None:
        """Add the step to the window; log when the window is full."""
        self._waits += wait
        self._compute += step
        self._samples += batch_size_of(batch)
        self._steps += 1
        if self._steps >= self.window:
            self._log(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Log a last, partial window (the epoch's tail)."""
        if self._steps:
            self._log(trainer, pl_module)
        super().on_train_epoch_end(trainer, pl_module)

    def _log(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        elapsed = max(self._waits + self._compute, 1e-9)
        per_device = self._samples / elapsed
        values = {
            "throughput/samples_per_s_per_device": per_device,
            "throughput/samples_per_s": per_device * trainer.world_size,
            "throughput/data_wait_fraction": self._waits / elapsed,
        }
        self.history.append({**values, "steps": float(self._steps)})
        pl_module.log_dict(values, batch_size=self._samples)
        self._reset()
