"""The common shape of every model: per-pixel features, then a pixelwise decoder over time.

A model maps :class:`~trainers.batch.ModelInputs` to kNDVI in two stages:

1. ``pixel_features(inputs) -> (B, F, H, W)``: everything that looks at the image (an FPN) or
   simply arranges the context and statics per pixel;
2. ``decode(features, weather) -> (N, S)``: a pixelwise recurrent decoder over the ``S`` forecast
   steps, given each pixel's ``F`` features and its sample's weather ``(N, S, V)``.

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

__all__ = ["PixelForecaster"]


class PixelForecaster(nn.Module, ABC):
    """Base class of the models.

    Parameters
    ----------
    weather_variables : int
        Weather variables per step (``V``), the size the store must match.
    chunk_pixels : int
        Most pixels decoded at once (over the whole batch).
    """

    def __init__(self, *, weather_variables: int, chunk_pixels: int = 16384) -> None:
        super().__init__()
        if chunk_pixels < 1 or weather_variables < 1:
            raise TrainerConfigError(
                f"chunk_pixels ({chunk_pixels}) and weather_variables ({weather_variables}) "
                "must be positive"
            )
        self.weather_variables = weather_variables
        self.chunk_pixels = chunk_pixels

    @abstractmethod
    def pixel_features(self, inputs: ModelInputs) -> Tensor:
        """Per-pixel features ``(B, F, H, W)``."""

    @abstractmethod
    def decode(self, features: Tensor, weather: Tensor) -> Tensor:
        """Forecast kNDVI ``(N, S)`` from features ``(N, F)`` and weather ``(N, S, V)``."""

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
            pieces.append(self.decode(chosen[start:stop], inputs.weather[owner[start:stop]]))
        out = torch.cat(pieces).reshape(b, p, -1).transpose(1, 2)
        return out.reshape(b, -1, h, w) if pixels is None else out
