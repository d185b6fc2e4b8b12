"""Test helpers of the cluster package: the ``local_slurm`` fixture and a sample recorder.

Register the fixture with ``pytest_plugins = ["cluster.testing"]`` (tests/cluster/conftest.py).
It starts :class:`~cluster.local_slurm.LocalSlurm` once per session, installing Debian's packages
when missing; when that is impossible it fails with the reason rather than skipping.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl

from cluster.local_slurm import LocalSlurm

__all__ = ["SeenSamples", "local_slurm", "read_seen"]


@pytest.fixture(scope="session")
def local_slurm() -> Iterator[LocalSlurm]:
    """A running local SLURM (2 nodes of 1 CPU); ``SLURM_CONF`` is set for the session."""
    slurm = LocalSlurm(timeout_s=90)
    slurm.start()
    saved = os.environ.get("SLURM_CONF")
    os.environ.update(slurm.env)
    try:
        yield slurm
    finally:
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        slurm.stop()


class SeenSamples(pl.Callback):
    """Each rank appends the samples of every training batch to ``OUT/rank<R>.jsonl``.

    A line is ``{"step", "epoch", "samples", "restart", "world_size", "backend"}``, where ``step``
    is the global step the batch trains (so lines of a run killed after its last checkpoint can
    be told apart) and ``restart`` is ``SLURM_RESTART_COUNT``. ``delay_s`` slows every step down,
    so that a test can act while the job runs.

    Parameters
    ----------
    out : str
        Directory of the JSON-lines files (shared storage).
    delay_s : float
        Sleep after each training batch.
    """

    def __init__(self, out: str, delay_s: float = 0.0) -> None:
        self.out = Path(out)
        self.delay_s = delay_s

    def on_train_batch_start(self, trainer: pl.Trainer, module: Any, batch: Any, idx: int) -> None:
        """Record the batch's samples."""
        import torch.distributed as dist

        self.out.mkdir(parents=True, exist_ok=True)
        record = {
            "step": trainer.global_step,
            "epoch": trainer.current_epoch,
            "samples": [int(s) for s in batch["sample"]],
            "restart": int(os.environ.get("SLURM_RESTART_COUNT", "0")),
            "world_size": trainer.world_size,
            "backend": dist.get_backend() if dist.is_initialized() else None,
        }
        with (self.out / f"rank{trainer.global_rank}.jsonl").open("a") as f:
            f.write(json.dumps(record) + "\n")

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, idx: int
    ) -> None:
        """Slow the step down by ``delay_s``."""
        if self.delay_s:
            time.sleep(self.delay_s)


def read_seen(out: str | Path) -> dict[int, list[dict[str, Any]]]:
    """The records of :class:`SeenSamples`, per rank."""
    return {
        int(path.stem.removeprefix("rank")): [
            json.loads(line) for line in path.read_text().splitlines() if line.strip()
        ]
        for path in sorted(Path(out).glob("rank*.jsonl"))
    }
