"""The code every training path shares: inputs, model, pixel sampling and the masked loss.

:class:`ForecastObjective` is a plain ``nn.Module``: the Lightning task (:mod:`trainers.task`)
holds one, and the DeepSpeed CPU path (:mod:`trainers.deepspeed_cpu`) hands the same module to
``deepspeed.initialize``, so both run the same model and loss code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

from trainers.batch import (
    CONTEXT_STEPS,
    VEGETATION_CLASSES,
    Batch,
    InputEncoder,
    ModelInputs,
    ProblemSpec,
    check_batch,
)
from trainers.metrics import masked_mae, masked_mse, score_weight
from trainers.models.base import PixelForecaster

__all__ = ["ForecastObjective", "ForecastOutput", "LossName", "pixel_generator", "sample_pixels"]

LossName = Literal["mae", "mse"]


@dataclass(frozen=True)
class ForecastOutput:
    """Loss and what it was computed from; shapes ``(B, 36, H, W)`` or ``(B, 36, P)``."""

    loss: Tensor
    prediction: Tensor
    target: Tensor
    weight: Tensor


def pixel_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The random source of the pixels drawn at a training step on a rank.

    A function of ``(seed, step, rank)`` only, so a resumed run draws what an uninterrupted one
    would have drawn.
    """
    state = np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> np.uint64(1)))


def sample_pixels(weight: Tensor, count: int, generator: torch.Generator | None = None) -> Tensor:
    """Draw ``count`` pixels per sample, scored pixels first, at random within each group.

    Parameters
    ----------
    weight : Tensor
        (B, S, H, W) score weights of the forecast steps.
    count : int
        Pixels per sample; must not exceed ``H * W``.
    generator : torch.Generator, optional
        Random source (a CPU generator), for runs that resume exactly.

    Returns
    -------
    Tensor
        (B, count) flat pixel indices. Pixels with at least one scored step rank above the
        others, so a cube with fewer scored pixels than ``count`` is filled with unscored ones,
        which the loss weights at 0.
    """
    scored = weight.flatten(2).amax(1) > 0
    noise = torch.rand(scored.shape, generator=generator).to(weight.device)
    return (noise + scored.to(noise.dtype)).topk(count, dim=1).indices


class ForecastObjective(nn.Module):
    """Batch -> inputs -> model -> masked loss.

    Parameters
    ----------
    model : PixelForecaster
        The model.
    loss : {"mae", "mse"}
        Masked loss minimised.
    """

    def __init__(self, model: PixelForecaster, *, loss: LossName = "mae") -> None:
        super().__init__()
        self.model = model
        self.inputs = InputEncoder(model.weather_variables)
        self.loss_name: LossName = loss
        self.vegetation_classes: tuple[int, ...] = VEGETATION_CLASSES

    def set_problem(self, problem: ProblemSpec) -> None:
        """Take the normalisation and the scored classes of a store."""
        self.inputs.set_problem(problem)
        self.vegetation_classes = problem.vegetation_classes

    def encode(self, batch: Batch) -> ModelInputs:
        """Model inputs of a batch, in the dtype of the model's weights."""
        inputs: ModelInputs = self.inputs(batch, next(self.model.parameters()).dtype)
        return inputs

    def weight(self, batch: Batch) -> Tensor:
        """(B, 36, H, W) score weights of the forecast steps."""
        return score_weight(
            batch["mask"][:, CONTEXT_STEPS:], batch["landcover"], self.vegetation_classes
        )

    def training_pixels(
        self, batch: Batch, count: int | None, *, seed: int, step: int, rank: int
    ) -> Tensor | None:
        """Pixels to train on at ``step`` (``None``: all, when ``count`` is unset or too large)."""
        h, w = batch["kndvi"].shape[-2:]
        if count is None or count >= h * w:
            return None
        return sample_pixels(self.weight(batch), count, pixel_generator(seed, step, rank))

    def forward(self, batch: Batch, pixels: Tensor | None = None) -> ForecastOutput:
        """Forecast and score a batch, on all pixels or on ``pixels`` (B, P) per sample."""
        check_batch(batch)
        prediction = self.model(self.encode(batch), pixels).float()
        target = batch["kndvi"][:, CONTEXT_STEPS:].float()
        weight = self.weight(batch)
        if pixels is not None:
            target = _gather(target, pixels)
            weight = _gather(weight, pixels)
        error = masked_mae if self.loss_name == "mae" else masked_mse
        return ForecastOutput(error(prediction, target, weight), prediction, target, weight)


def _gather(values: Tensor, pixels: Tensor) -> Tensor:
    """(B, S, H, W) -> (B, S, P) at flat pixel indices (B, P)."""
    b, s = values.shape[:2]
    return values.flatten(2).gather(2, pixels[:, None, :].expand(b, s, -1))
