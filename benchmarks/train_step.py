"""Training benchmark: step rate with the real loader against the same batches held in memory.

In one run on this machine, for each model (``rnn``, ``context_rnn`` and ``noop``)::

    python -m benchmarks.train_step [--samples-size 32] [--batch-size 4] [--steps 10]
                                    [--warmup 2] [--workers 1] [--models rnn context_rnn noop]
                                    [--no-peer] [--out FILE]

1. A store: :func:`cubestream.l2.synthetic.write_synthetic_l2` with every sample in ``train``,
   as many as ``batch_size * (warmup + steps)`` so that the run is one epoch.
2. Real: :class:`trainers.task.ForecastTask` with the model (the ``noop`` model is a task that
   does nothing with its batches, TorchGeo's "IO bench") fitted by a real Lightning ``Trainer``
   on :class:`trainers.setting.KndviSetting` over ``cubestream.stream``. A callback times each
   step and the wait for its batch (the data-wait fraction, measured directly) and keeps a
   copy of every batch.
3. The ceiling: a fresh task with the same seed fitted on those batches held in memory; its step
   rate over the real one is the loader's share of the ideal (1 - derived data-wait fraction).
4. The peer: the same fit over ``trainers.synthetic_data.SyntheticL2DataModule``, a map-style torch
   dataset reading the store sample by sample with zarr (no workers).
5. On a CUDA machine each fit runs on one GPU and the record holds the GPU utilisation sampled
   with ``nvidia-smi``, the peak GPU memory (``torch.cuda.max_memory_allocated``) and the
   samples/s per GPU; elsewhere they are ``None`` with the reason.

The first ``warmup`` steps of each fit (worker start-up, first allocations) are not timed. One
JSON line with the context is appended to ``--out`` (default ``benchmarks/results/train.jsonl``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from benchmarks import _context
from benchmarks._gpu import GpuUtilisation
from benchmarks._train_phases import InMemoryBatches, NoOpTask, StepTimes
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.options import add_flags, from_args, option
from trainers.models import RNN, ContextRNN
from trainers.setting import KndviSetting
from trainers.synthetic_data import SyntheticL2DataModule
from trainers.task import ForecastTask

__all__ = ["MODELS", "Settings", "main", "measure", "table"]

RESULTS = Path(__file__).resolve().parent / "results" / "train.jsonl"
PACKAGES = ("cubestream", "torch", "pytorch-lightning", "timm", "torchdata", "zarr", "numpy")
MODELS: dict[str, dict[str, Any]] = {
    "rnn": {"hidden": 32, "weather_hidden": 16},
    "context_rnn": {
        "hidden": 32,
        "embedding": 16,
        "weather_hidden": 16,
        "pyramid_channels": 32,
        "segmentation_channels": 16,
    },
    "noop": {},
}
"""The models and their (small) sizes; ``noop`` does nothing with its batches."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One run of the benchmark: its flags (see the module's description)."""

    size: int = option(32, help="sample side in px")
    batch_size: int = option(4, help="samples per batch")
    steps: int = option(10, help="timed steps")
    warmup: int = option(2, help="untimed steps")
    workers: int = option(1, help="loader workers")
    models: tuple[str, ...] = option(
        ("rnn", "context_rnn", "noop"), nargs="+", choices=lambda: MODELS, help="models to fit"
    )
    peer: bool = option(True, help="skip the test-helper loader")
    threads: int | None = option(None, help="torch threads (default: CPUs - workers)")
    out: Path = option(RESULTS, help="JSON-lines file to append to")
    workdir: Path | None = option(None, help="keep the store here")
    seed: int = option(0, help="seed of the store and of the models")

    @property
    def torch_threads(self) -> int:
        """Threads of torch: ``threads``, or the usable CPUs less one per loader worker."""
        usable = len(os.sched_getaffinity(0))
        return self.threads or max(1, usable - self.workers)

    @property
    def samples(self) -> int:
        """Samples of the store: one epoch of ``warmup + steps`` batches."""
        return self.batch_size * (self.warmup + self.steps)


def _task(name: str, seed: int) -> pl.LightningModule:
    torch.manual_seed(seed)
    if name == "noop":
        return NoOpTask()
    builder: Callable[..., Any] = {"rnn": RNN, "context_rnn": ContextRNN}[name]
    return ForecastTask(builder(**MODELS[name]), scheduler="constant", seed=seed)


def _trainer(settings: Settings, root: Path, timer: StepTimes) -> pl.Trainer:
    return pl.Trainer(
        accelerator="gpu" if torch.cuda.is_available() else "cpu",
        devices=1,
        max_steps=settings.warmup + settings.steps,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=str(root),
        callbacks=[timer],
    )


def _fit(
    settings: Settings, name: str, root: Path, data: Any, *, keep: bool = False
) -> tuple[dict[str, Any], StepTimes]:
    """Fit a fresh task on ``data`` (a DataModule or in-memory batches); time its steps."""
    task, timer = _task(name, settings.seed), StepTimes(keep=keep)
    trainer = _trainer(settings, root, timer)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with GpuUtilisation() as gpu:
        if isinstance(data, InMemoryBatches):
            if isinstance(task, ForecastTask):
                task.set_problem(data.problem)
            trainer.fit(task, train_dataloaders=data)
        else:
            trainer.fit(task, datamodule=data)
    figures = timer.figures(settings.warmup)
    peak = round(torch.cuda.max_memory_allocated() / 1e9, 3) if torch.cuda.is_available() else None
    return {**figures, "gpu_utilisation": gpu.summary(), "peak_gpu_memory_gb": peak}, timer


def _one_model(settings: Settings, name: str, store: Path, root: Path) -> dict[str, Any]:
    setting = KndviSetting(
        str(store), batch_size=settings.batch_size, num_workers=settings.workers, seed=0
    )
    real, timer = _fit(settings, name, root, setting, keep=True)
    memory = InMemoryBatches(timer.batches, problem=setting.problem)
    in_memory, _ = _fit(settings, name, root, memory)
    out: dict[str, Any] = {
        "model": MODELS[name],
        "real_loader": real,
        "in_memory": in_memory,
        "ratio_to_in_memory": round(real["samples_per_s"] / in_memory["samples_per_s"], 3),
        "derived_data_wait_fraction": round(
            1 - real["samples_per_s"] / in_memory["samples_per_s"], 3
        ),
        "samples_per_s_per_gpu": real["samples_per_s"] if torch.cuda.is_available() else None,
    }
    if settings.peer:
        helper = SyntheticL2DataModule(store, batch_size=settings.batch_size, seed=0)
        peer_setting = KndviSetting(str(store), batch_size=settings.batch_size, loader=helper)
        peer, _ = _fit(settings, name, root, peer_setting)
        out["peer"] = peer
        out["ratio_to_peer"] = round(real["samples_per_s"] / peer["samples_per_s"], 3)
    return out


def _quiet() -> None:
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*have no `validation_step`.*")


def measure(settings: Settings) -> dict[str, Any]:
    """Run the benchmark; return its record (see the module's description)."""
    _quiet()
    torch.set_num_threads(settings.torch_threads)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as scratch:
        root = settings.workdir or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        store = write_synthetic_l2(
            root / "train.zarr",
            settings.samples,
            size=settings.size,
            seed=settings.seed,
            splits=("train",),
        )
        models = {name: _one_model(settings, name, store, root) for name in settings.models}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    return {
        "benchmark": "train_step",
        "time": _context.now(),
        "git": _context.git(),
        "machine": _context.machine(),
        "versions": _context.versions(PACKAGES),
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
            "samples": settings.samples,
            "torch_threads": settings.torch_threads,
            "device": device,
            "gpu": torch.cuda.get_device_name(0) if device == "cuda" else None,
            "timed": "steps after `warmup`: wait for the batch + step, per step (callback)",
        },
        "models": models,
    }


def table(record: dict[str, Any]) -> str:
    """A short human-readable summary of a record."""
    settings = record["settings"]
    lines = [
        f"training: {settings['samples']} samples of {settings['size']} px, batch "
        f"{settings['batch_size']}, {settings['steps']} timed steps, {settings['workers']} "
        f"loader workers, {settings['device']}, commit {record['git']['commit']}",
        "  samples/s: real loader, in memory, ratio, data wait (measured), peer",
    ]
    for name, model in record["models"].items():
        real, memory = model["real_loader"], model["in_memory"]
        peer = model.get("peer")
        lines.append(
            f"  {name:<12} {real['samples_per_s']:8.2f} {memory['samples_per_s']:8.2f} "
            f"{model['ratio_to_in_memory']:6.2f} {real['data_wait_fraction']:6.2f} "
            f"{peer['samples_per_s'] if peer else float('nan'):8.2f}"
        )
    return "\n".join(lines)


def _arguments(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.train_step", description=__doc__)
    add_flags(parser, Settings)
    settings: Settings = from_args(Settings, parser.parse_args(argv))
    return settings


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; append the record and print the table."""
    settings = _arguments(argv)
    return _context.keep_and_print(settings.out, measure(settings), table)


if __name__ == "__main__":
    main(sys.argv[1:])
