"""DeepSpeed on CPUs: the same objective trained by DeepSpeed's own engine over gloo.

On GPUs DeepSpeed runs through Lightning's ``DeepSpeedStrategy`` (a ``trainer.strategy`` in
the YAML config). Lightning's strategy needs CUDA, so on CPUs this module drives DeepSpeed
directly: one process per rank (``torch.multiprocessing`` spawn, with ``MASTER_ADDR``,
``MASTER_PORT``, ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` set), ``deepspeed.init_distributed``
over gloo, and ``deepspeed.initialize`` on the task's :class:`~trainers.objective.ForecastObjective`
with ZeRO stage 1 or 2, fp32 or bf16. The model, the inputs, the pixel sampling, the loss, the
optimiser (torch's AdamW as the client optimiser) and the schedule are those of the Lightning
task, built from the same YAML config::

    python -m trainers.deepspeed_cpu --config trainers/configs/rnn.yaml \
        --data.store demo/l2.zarr --deepspeed.stage 2 --deepspeed.world_size 2 \
        --deepspeed.max_steps 20 --deepspeed.out demo/train/deepspeed

The config's ``trainer`` section is ignored. DeepSpeed was installed without prebuilt ops
(``DS_BUILD_OPS=0``); the ops it would otherwise compile at run time (the shared-memory
all-reduce of its CPU backend) are marked unavailable, so plain gloo collectives are used and
nothing is compiled. Rank 0 writes ``<out>/deepspeed_cpu.json`` (losses per step, samples/s)
and every rank writes its ZeRO partition under ``<out>/checkpoints/<tag>``; ``resume`` continues
from the latest checkpoint there (the weights, optimiser, schedule and step; the loader starts
its epoch again).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import torch
from jsonargparse import ArgumentParser, Namespace

from trainers import config
from trainers.errors import TrainerConfigError, TrainersError
from trainers.optim import build_optimizer, build_scheduler
from trainers.setting import KndviSetting
from trainers.task import ForecastTask

__all__ = ["DeepSpeedCPUConfig", "build_parser", "deepspeed_config", "main", "train_deepspeed_cpu"]


@dataclass(frozen=True, kw_only=True)
class DeepSpeedCPUConfig:
    """How DeepSpeed runs on CPUs.

    Parameters
    ----------
    out : str
        Directory of the checkpoints and the run summary.
    stage : {1, 2}
        ZeRO stage (optimiser states; and gradients) partitioned over ranks.
    precision : {"fp32", "bf16"}
        Weights and activations in float32, or bfloat16 with fp32 master weights.
    world_size : int
        Processes (ranks) on this machine.
    max_steps : int
        Optimiser steps.
    gradient_accumulation_steps : int
        Micro-batches per optimiser step.
    threads_per_rank : int
        torch intra-op threads of each rank.
    master_addr : str
        Rendezvous address.
    master_port : int
        Rendezvous port; 0 picks a free one.
    timeout_s : int
        Collective timeout (a rank that dies fails the others instead of hanging).
    resume : bool
        Continue from the latest checkpoint in ``out``.
    """

    out: str = "deepspeed_cpu"
    stage: Literal[1, 2] = 2
    precision: Literal["fp32", "bf16"] = "fp32"
    world_size: int = 2
    max_steps: int = 20
    gradient_accumulation_steps: int = 1
    threads_per_rank: int = 1
    master_addr: str = "127.0.0.1"
    master_port: int = 0
    timeout_s: int = 300
    resume: bool = False

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise TrainerConfigError(
                f"ZeRO stage {self.stage} on CPUs: use 1 or 2 (stage 3 runs through Lightning's "
                "DeepSpeedStrategy on GPUs)"
            )
        if min(self.world_size, self.max_steps, self.gradient_accumulation_steps) < 1:
            raise TrainerConfigError("world_size, max_steps and gradient_accumulation_steps >= 1")


def deepspeed_config(config: DeepSpeedCPUConfig, micro_batch_size: int) -> dict[str, Any]:
    """The DeepSpeed JSON config of a run."""
    return {
        "train_micro_batch_size_per_gpu": micro_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "zero_optimization": {"stage": config.stage},
        "bf16": {"enabled": config.precision == "bf16"},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


def build_parser() -> ArgumentParser:
    """Parser of the training YAML (``model``, ``data``) plus a ``deepspeed`` section."""
    parser = config.build_parser("python -m trainers.deepspeed_cpu", description=__doc__)
    parser.add_class_arguments(DeepSpeedCPUConfig, "deepspeed")
    return parser


def _disable_jit_ops() -> None:
    """Mark every DeepSpeed op that is not prebuilt as unavailable: nothing compiles at run time."""
    import deepspeed.ops
    from deepspeed.git_version_info import installed_ops

    compatible = deepspeed.ops.__compatible_ops__
    for name, built in installed_ops.items():
        if not built:
            compatible[name] = False


def _free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def _rank_main(rank: int, argv: list[str], port: int) -> None:
    """One rank: set up the process group, build task and data, train, checkpoint."""
    parser = build_parser()
    ds = DeepSpeedCPUConfig(**parser.parse_args(argv).deepspeed.as_dict())
    os.environ.update(
        DS_ACCELERATOR="cpu",
        MASTER_ADDR=ds.master_addr,
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(ds.world_size),
    )
    torch.set_num_threads(ds.threads_per_rank)
    import deepspeed

    _disable_jit_ops()
    deepspeed.init_distributed(dist_backend="gloo", timeout=timedelta(seconds=ds.timeout_s))
    loaded = config.load(parser, argv)
    _train(loaded.task, loaded.setting, ds, rank)


def _train(task: ForecastTask, setting: KndviSetting, ds: DeepSpeedCPUConfig, rank: int) -> None:
    import deepspeed

    hp = task.hparams
    setting.setup("fit")
    loader = setting.train_dataloader()
    objective = task.objective
    optimizer = build_optimizer(
        objective.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"]
    )
    scheduler = build_scheduler(
        optimizer, name=hp["scheduler"], warmup_steps=hp["warmup_steps"], total_steps=ds.max_steps
    )
    engine, _, _, _ = deepspeed.initialize(
        model=objective,
        optimizer=optimizer,
        lr_scheduler=scheduler,
        config=deepspeed_config(ds, micro_batch_size=loader.batch_size or 1),
    )
    checkpoints = Path(ds.out) / "checkpoints"
    if ds.resume and (checkpoints / "latest").is_file():
        engine.load_checkpoint(str(checkpoints))
    history: list[dict[str, float]] = []
    micro, epoch, samples, started = 0, 0, 0, time.perf_counter()
    while engine.global_steps < ds.max_steps:
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        for batch in loader:
            step = engine.global_steps
            pixels = objective.training_pixels(
                batch, hp["train_pixels"], seed=hp["seed"], step=micro, rank=rank
            )
            out = engine(batch, pixels)
            engine.backward(out.loss)
            engine.step()
            micro += 1
            samples += len(batch["cube_id"])
            if engine.global_steps > step:
                history.append(
                    {"step": float(engine.global_steps), "loss": float(out.loss.detach())}
                )
            if engine.global_steps >= ds.max_steps:
                break
        epoch += 1
    seconds = time.perf_counter() - started
    tag = f"step{engine.global_steps}"
    engine.save_checkpoint(str(checkpoints), tag=tag)
    if rank == 0:
        summary = {
            "config": asdict(ds),
            "deepspeed": deepspeed_config(ds, micro_batch_size=loader.batch_size or 1),
            "deepspeed_version": deepspeed.__version__,
            "steps": engine.global_steps,
            "losses": history,
            "samples_per_s_per_rank": samples / max(seconds, 1e-9),
            "checkpoint": str(checkpoints / tag),
        }
        Path(ds.out).mkdir(parents=True, exist_ok=True)
        (Path(ds.out) / "deepspeed_cpu.json").write_text(json.dumps(summary, indent=1))


def train_deepspeed_cpu(argv: Sequence[str]) -> dict[str, Any]:
    """Run the DeepSpeed CPU training described by ``argv``; return rank 0's summary.

    Parameters
    ----------
    argv : sequence of str
        Arguments as on the command line (``--config FILE --deepspeed.stage 2 ...``).

    Raises
    ------
    TrainersError
        A rank failed (its traceback is in the message).
    """
    from torch.multiprocessing.spawn import (
        ProcessExitedException,
        ProcessRaisedException,
        start_processes,
    )

    argv = list(argv)
    cfg: Namespace = build_parser().parse_args(argv)
    ds = DeepSpeedCPUConfig(**cfg.deepspeed.as_dict())
    port = ds.master_port or _free_port(ds.master_addr)
    (Path(ds.out) / "deepspeed_cpu.json").unlink(missing_ok=True)
    try:
        start_processes(
            _rank_main, args=(argv, port), nprocs=ds.world_size, join=True, start_method="spawn"
        )
    except ProcessRaisedException as exc:
        raise TrainersError(f"a DeepSpeed rank failed:\n{exc}") from None
    except ProcessExitedException as exc:
        raise TrainersError(f"a DeepSpeed rank exited with code {exc.exit_code}") from None
    summary: dict[str, Any] = json.loads((Path(ds.out) / "deepspeed_cpu.json").read_text())
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m trainers.deepspeed_cpu --config FILE ...``."""
    summary = train_deepspeed_cpu(sys.argv[1:] if argv is None else argv)
    print(json.dumps({k: summary[k] for k in ("steps", "checkpoint", "samples_per_s_per_rank")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
