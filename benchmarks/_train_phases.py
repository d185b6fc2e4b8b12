"""The timed pieces of the training benchmark: a step timer, a no-op task and in-memory batches.

Private helper of :mod:`benchmarks.train_step`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

from trainers.callbacks import StepClock, batch_size_of

__all__ = ["InMemoryBatches", "NoOpTask", "StepTimes", "to_cpu"]


def to_cpu(batch: Any) -> Any:
    """A copy of a batch in host memory (the loader may reuse its buffers)."""
    if isinstance(batch, Tensor):
        return batch.detach().to("cpu", copy=True)
    if isinstance(batch, dict):
        return {key: to_cpu(value) for key, value in batch.items()}
    if isinstance(batch, list | tuple):
        return type(batch)(to_cpu(value) for value in batch)
    return batch


class StepTimes(StepClock):
    """Time of every training step and of the wait for its batch; optionally keep the batches.

    The wait and the step are those of :class:`trainers.callbacks.StepClock` (the same as the
    training's own :class:`~trainers.callbacks.ThroughputMonitor`).

    Parameters
    ----------
    keep : bool
        Keep a host copy of every batch (not timed) for the in-memory run.
    """

    def __init__(self, *, keep: bool = False) -> None:
        super().__init__()
        self.keep = keep
        self.waits: list[float] = []
        self.steps: list[float] = []
        self.samples: list[int] = []
        self.batches: list[Any] = []

    def fetched(self, batch: Any) -> None:
        """Keep a host copy of the batch when asked."""
        if self.keep:
            self.batches.append(to_cpu(batch))

    def measured(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        wait: float,
        step: float,
        batch: Any,
    ) -> None:
        """Record the step."""
        self.waits.append(wait)
        self.steps.append(step)
        self.samples.append(batch_size_of(batch))

    def figures(self, warmup: int) -> dict[str, Any]:
        """Rates over the steps after the first ``warmup`` ones."""
        waits, steps = self.waits[warmup:], self.steps[warmup:]
        seconds = sum(waits) + sum(steps)
        if not steps or seconds <= 0:
            raise RuntimeError(
                f"no timed training step: {len(self.steps)} steps ran, {warmup} of them warm-up"
            )
        samples = sum(self.samples[warmup:])
        return {
            "steps": len(steps),
            "samples": samples,
            "seconds": round(seconds, 4),
            "steps_per_s": round(len(steps) / seconds, 3),
            "samples_per_s": round(samples / seconds, 3),
            "data_wait_fraction": round(sum(waits) / seconds, 4),
            "wait_seconds": round(sum(waits), 4),
            "step_seconds": round(sum(steps), 4),
            "warmup_steps": warmup,
            "warmup_seconds": round(sum(self.waits[:warmup]) + sum(self.steps[:warmup]), 3),
        }


class NoOpTask(pl.LightningModule):
    """A task that does nothing with its batches: the loader through the real Lightning loop.

    Its loss is a zero times one parameter, so the loop runs forward, backward and an optimiser
    step of nothing; the batches are still fetched, collated and moved to the device.
    """

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """A zero loss."""
        return self.weight.sum() * 0.0

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Plain SGD."""
        return torch.optim.SGD(self.parameters(), lr=0.0)


class InMemoryBatches:
    """Batches held in host memory, handed to Lightning as a training loader.

    ``problem`` is the :class:`~trainers.batch.ProblemSpec` of the store they came from (a task
    fitted without a DataModule takes it from here).
    """

    def __init__(self, batches: list[Any], problem: Any = None) -> None:
        self.batches = batches
        self.problem = problem

    def __iter__(self) -> Iterator[Any]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
