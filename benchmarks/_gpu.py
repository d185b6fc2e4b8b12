"""GPU utilisation while a block runs: ``nvidia-smi`` sampled in a background thread.

Private helper of :mod:`benchmarks.train_step`. Without CUDA (or without ``nvidia-smi``) the
figures are ``None`` with the reason, never a made-up number.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from types import TracebackType
from typing import Any

import torch

__all__ = ["GpuUtilisation", "not_measured"]

QUERY = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]


def not_measured() -> str | None:
    """Why GPU utilisation cannot be measured here, or ``None`` when it can."""
    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found"
    return None


class GpuUtilisation:
    """Sample the utilisation (%) of every GPU every ``interval`` seconds while in the block."""

    def __init__(self, interval: float = 0.2) -> None:
        self.reason = not_measured()
        self.samples: list[list[float]] = []
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gpu-utilisation", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                done = subprocess.run(QUERY, capture_output=True, text=True, check=True)
            except (OSError, subprocess.CalledProcessError):
                continue
            self.samples.append([float(v) for v in done.stdout.split()])

    def __enter__(self) -> GpuUtilisation:
        if self.reason is None:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()

    def summary(self) -> dict[str, Any]:
        """Mean and max utilisation of GPU 0 over the samples, or ``None`` and the reason."""
        first = [sample[0] for sample in self.samples if sample]
        if self.reason is not None or not first:
            reason = self.reason or "no utilisation sample was taken"
            return {"mean_percent": None, "max_percent": None, "samples": 0, "reason": reason}
        return {
            "mean_percent": round(sum(first) / len(first), 1),
            "max_percent": max(first),
            "samples": len(first),
            "reason": None,
        }
