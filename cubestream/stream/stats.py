"""Loader counters: samples/s, MB/s and the time each step waited for data.

The loader records every batch it hands out, in the process that consumes the batches (the
training process), so a Lightning callback of the trainers can log :meth:`LoaderStats.as_dict`
(``trainer.train_dataloader.stats``). "Waited" is the time spent inside ``next()`` on the loader:
the time the training step could not run because its batch was not ready.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["LoaderStats"]


@dataclass
class LoaderStats:
    """Counters of one loader, over its whole life and per step.

    Attributes
    ----------
    batches, samples : int
        Batches and items delivered.
    nbytes : int
        Bytes of the tensors delivered.
    wait_s : float
        Total seconds spent waiting for batches.
    first_s, last_s : float or None
        ``time.perf_counter()`` when the first wait began and the last batch was delivered.
    waits : deque of float
        The waits of the last ``window`` steps, oldest first.
    window : int
        How many per-step waits to keep.
    """

    batches: int = 0
    samples: int = 0
    nbytes: int = 0
    wait_s: float = 0.0
    first_s: float | None = None
    last_s: float | None = None
    window: int = 1000
    waits: deque[float] = field(default_factory=deque)

    def begin(self) -> float:
        """Mark the start of a wait; return the time."""
        now = time.perf_counter()
        if self.first_s is None:
            self.first_s = now
        return now

    def record(self, started: float, samples: int, nbytes: int) -> None:
        """Count a batch of ``samples`` items, ``nbytes`` bytes, whose wait began at ``started``."""
        now = time.perf_counter()
        waited = now - started
        self.batches += 1
        self.samples += samples
        self.nbytes += nbytes
        self.wait_s += waited
        self.last_s = now
        self.waits.append(waited)
        while len(self.waits) > self.window:
            self.waits.popleft()

    @property
    def elapsed_s(self) -> float:
        """Seconds from the first wait to the last delivery."""
        if self.first_s is None or self.last_s is None:
            return 0.0
        return self.last_s - self.first_s

    def as_dict(self) -> dict[str, float]:
        """Figures to log: rates over the loader's life, and the last step's wait."""
        elapsed = self.elapsed_s
        rate = (lambda value: value / elapsed) if elapsed > 0 else (lambda value: 0.0)
        return {
            "batches": float(self.batches),
            "samples": float(self.samples),
            "samples_per_s": rate(self.samples),
            "mb_per_s": rate(self.nbytes / 1e6),
            "wait_s": self.wait_s,
            "wait_fraction": self.wait_s / elapsed if elapsed > 0 else 0.0,
            "last_wait_s": self.waits[-1] if self.waits else 0.0,
        }

    def reset(self) -> None:
        """Start counting afresh."""
        self.batches = self.samples = self.nbytes = 0
        self.wait_s = 0.0
        self.first_s = self.last_s = None
        self.waits.clear()
