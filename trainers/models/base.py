"""The common shape of every model: per-pixel features, then a pixelwise decoder over time.

A model maps :class:`~trainers.batch.ModelInputs` to kNDVI in two stages:

1. ``pixel_features(inputs) -> (B, F, H, W)``: everything that looks at the image (an FPN) or
   simply arranges the context and statics per pixel;
2. ``decode(features, weather) -> (N, S)``: a pixelwise recurrent decoder, given each pixel's
   ``F`` features and its sample's weather of all ``T`` steps ``(N, T, V)`` (the context
   season's and the forecast period's), returns one value per forecast step (the last ``S``).

The value decoded is a logit. With ``residual`` (the default), it is the change from the pixel's
context level, as EarthNet-style models forecast an offset from the observed state rather than
the state itself: ``kndvi = sigmoid(logit(level) + decoded)``, where ``level`` is the pixel's
mean context kNDVI. For the small kNDVI values of dry land, ``logit(x)`` is close to
``log(x)``, so a decoded value acts as a relative change. The models start from a zero head,
i.e. from that level (the climatology baseline of :mod:`trainers.metrics`, up to gap filling),
and learn how the weather moves each pixel away from it. Without ``residual``,
``kndvi = sigmoid(decoded)``.

:meth:`PixelForecaster.forward` runs stage 1 once, gathers the pixels asked for (all of them, or
``pixels`` sampled per cube for training) and runs stage 2 in chunks of at most
``chunk_pixels`` pixels, which bounds the memory of inference on whole 128 x 128 cubes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from trainers.batch import ModelInputs
from trainers.errors import TrainerConfigError

__all__ = ["PixelForecaster", "context_level"]

_EPS = 1e-4
"""Bounds of the level in ``logit(level)``: kNDVI of bare ground is 0."""


def context_level(inputs: ModelInputs) -> Tensor:
    """Mean kNDVI of each pixel over the context steps: ``(B, H, W)``.

    kNDVI is the last channel of ``inputs.context``; its gaps are filled, so every step counts.
    """
    return inputs.context[:, :, -1].mean(1)


class PixelForecaster(nn.Module, ABC):
    """Base class of the models.

    Parameters
    ----------
    weather_variables : int
        Weather variables per step (``V``), the size the store must match.
    chunk_pixels : int
        Most pixels decoded at once (over the whole batch).
    residual : bool
        Decode the change from the pixel's context level (see the module docstring).
    """

    def __init__(
        self, *, weather_variables: int, chunk_pixels: int = 16384, residual: bool = True
    ) -> None:
        super().__init__()
        if chunk_pixels < 1 or weather_variables < 1:
            raise TrainerConfigError(
                f"chunk_pixels ({chunk_pixels}) and weather_variables ({weather_variables}) "
                "must be positive"
            )
        self.weather_variables = weather_variables
        self.chunk_pixels = chunk_pixels
        self.residual = residual

    @abstractmethod
    def pixel_features(self, inputs: ModelInputs) -> Tensor:
        """Per-pixel features ``(B, F, H, W)``."""

    @abstractmethod
    def decode(self, features: Tensor, weather: Tensor) -> Tensor:
        """Forecast-step logits ``(N, S)`` from features ``(N, F)`` and weather ``(N, T, V)``."""

    def forward(self, inputs: ModelInputs, pixels: Tensor | None = None) -> Tensor:
        """Forecast kNDVI.

        Parameters
        ----------
        inputs : ModelInputs
            The batch's inputs.
        pixels : Tensor, optional
            (B, P) flat pixel indices (``row * W + col``) per sample; all pixels if omitted.

        Returns
        -------
        Tensor
            ``(B, S, H, W)`` without ``pixels``, ``(B, S, P)`` with them.
        """
        features = self.pixel_features(inputs)
        if self.residual:
            level = context_level(inputs).clamp(_EPS, 1 - _EPS).logit()
        else:
            level = torch.zeros_like(inputs.context[:, 0, 0])
        features = torch.cat([features, level[:, None]], dim=1)
        b, f, h, w = features.shape
        flat = features.flatten(2)
        if pixels is None:
            chosen = flat.transpose(1, 2).reshape(b * h * w, f)
            p = h * w
        else:
            p = pixels.shape[1]
            index = pixels[:, None, :].expand(b, f, p)
            chosen = flat.gather(2, index).transpose(1, 2).reshape(b * p, f)
        owner = torch.arange(b, device=features.device).repeat_interleave(p)
        pieces = []
        for start in range(0, b * p, self.chunk_pixels):
            stop = start + self.chunk_pixels
            piece, offset = chosen[start:stop, :-1], chosen[start:stop, -1:]
            logits = self.decode(piece, inputs.weather[owner[start:stop]])
            pieces.append((offset + logits).sigmoid())
        out = torch.cat(pieces).reshape(b, p, -1).transpose(1, 2)
        return out.reshape(b, -1, h, w) if pixels is None else out
