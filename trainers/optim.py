"""Optimiser and learning-rate schedule, shared by the Lightning task and the DeepSpeed CPU path."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Literal

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from trainers.errors import TrainerConfigError

__all__ = ["SchedulerName", "build_optimizer", "build_scheduler"]

SchedulerName = Literal["cosine", "constant"]


def build_optimizer(
    parameters: Iterable[nn.Parameter], *, lr: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW (torch's own: nothing to compile, so DeepSpeed takes it as the client optimiser)."""
    if lr <= 0 or weight_decay < 0:
        raise TrainerConfigError(
            f"lr must be positive and weight_decay >= 0, got {lr}, {weight_decay}"
        )
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    name: SchedulerName,
    warmup_steps: int,
    total_steps: int | Callable[[], int],
) -> LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine decay to 0 at ``total_steps`` or constant.

    Stepped once per optimiser step. ``total_steps`` may be a function, called once, at the
    first step after the warm-up: the Lightning task passes the trainer's
    ``estimated_stepping_batches`` that way, because asking for it in ``configure_optimizers``
    sets the training loader up before a checkpoint restores its position (Lightning issue
    #20550), which would break mid-epoch resume.
    """
    if name not in ("cosine", "constant"):
        raise TrainerConfigError(f"unknown scheduler {name!r}: use 'cosine' or 'constant'")
    warmup = max(0, warmup_steps)
    known: list[int] = [] if callable(total_steps) else [total_steps]

    def total() -> int:
        if not known:
            known.append(total_steps() if callable(total_steps) else total_steps)
        return max(known[0], warmup + 1)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if name == "constant" or step == warmup:
            return 1.0
        progress = min(1.0, (step - warmup) / (total() - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
