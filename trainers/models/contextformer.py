"""Contextformer: a pixelwise transformer over time with a spatial context encoder.

After the Contextformer of GreenEarthNet (Benson et al., CVPR 2024; ``contextformer6M``: a
PVT-v2 vision encoder, a temporal transformer of width 256, 3 layers, 8 heads, MLP ratio 4,
patches of 4 px) as a model of this package, with its two parts:

1. **Spatial context encoder** (:meth:`Contextformer.pixel_features`): the last context step's
   reflectance and kNDVI and the statics, cut into ``patch`` x ``patch`` patches, embedded, and
   mixed by ``spatial_depth`` transformer layers with attention over all patches of the cube
   (the role of the paper's pyramid vision transformer); the result is upsampled (bilinear) to
   one ``width``-channel context vector per pixel.
2. **Temporal transformer** (:meth:`Contextformer.decode`), per pixel, over the 45 steps: a
   context step's token embeds its reflectance and kNDVI, a forecast step's token is a learned
   mask token; every token adds the step's embedded weather, a learned step embedding and the
   pixel's context vector and statics. ``depth`` pre-norm transformer layers; a linear head
   (zero at the start) on the forecast tokens gives each step's logit, as a change from the
   pixel's context level (:mod:`trainers.models.base`; the paper adds the last observed NDVI).

Differences from the paper: tokens are single pixels (the paper embeds 4 x 4 patches in the
temporal part too), the spatial encoder is trained from scratch rather than a pretrained
PVT-v2-b0, and the masked-token training (random context steps masked) is not used.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional

from trainers.batch import (
    CONTEXT_STEPS,
    FORECAST_STEPS,
    STATIC_CHANNELS,
    ModelInputs,
    context_channels,
)
from trainers.errors import TrainerConfigError
from trainers.models.base import PixelForecaster

__all__ = ["Contextformer"]


def _layers(width: int, heads: int, depth: int, mlp_ratio: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(
        width,
        heads,
        int(width * mlp_ratio),
        dropout=0.0,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


class Contextformer(PixelForecaster):
    """Spatial context encoder and pixelwise temporal transformer.

    Parameters
    ----------
    bands : int
        Sentinel-2 bands per step.
    weather_variables : int
        Weather variables per step.
    width : int
        Token width of both transformers (paper: 256).
    depth : int
        Temporal transformer layers (paper: 3).
    heads : int
        Attention heads (paper: 8).
    mlp_ratio : float
        Width of the transformer MLPs over ``width`` (paper: 4).
    patch : int
        Patch side of the spatial encoder in pixels (paper: 4).
    spatial_depth : int
        Spatial transformer layers.
    chunk_pixels : int
        Most pixels decoded at once.
    residual : bool
        Forecast the change from the pixel's context level (:mod:`trainers.models.base`).
    """

    def __init__(
        self,
        *,
        bands: int = 9,
        weather_variables: int = 6,
        width: int = 256,
        depth: int = 3,
        heads: int = 8,
        mlp_ratio: float = 4.0,
        patch: int = 4,
        spatial_depth: int = 2,
        chunk_pixels: int = 4096,
        residual: bool = True,
    ) -> None:
        super().__init__(
            weather_variables=weather_variables, chunk_pixels=chunk_pixels, residual=residual
        )
        if width % heads or min(width, depth, heads, patch, spatial_depth) < 1:
            raise TrainerConfigError(
                f"Contextformer needs positive sizes and width ({width}) divisible by heads "
                f"({heads})"
            )
        self.channels = context_channels(bands)
        self.width = width
        self.patch = patch
        self.patches = nn.Conv2d(self.channels + STATIC_CHANNELS, width, patch, stride=patch)
        self.spatial = _layers(width, heads, spatial_depth, mlp_ratio)
        self.values = nn.Linear(self.channels, width)
        self.weather = nn.Linear(weather_variables, width)
        self.context = nn.Linear(width + STATIC_CHANNELS, width)
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.steps = nn.Parameter(torch.randn(CONTEXT_STEPS + FORECAST_STEPS, width) * 0.02)
        self.temporal = _layers(width, heads, depth, mlp_ratio)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def pixel_features(self, inputs: ModelInputs) -> Tensor:
        """Context steps, statics and spatial context per pixel (``9 (C+1) + 12 + width``)."""
        b, h, w = inputs.shape
        image = torch.cat([inputs.context[:, -1], inputs.statics], dim=1)
        pad_h, pad_w = -h % self.patch, -w % self.patch
        tokens = self.patches(functional.pad(image, (0, pad_w, 0, pad_h), mode="replicate"))
        gh, gw = tokens.shape[-2:]
        mixed = self.spatial(tokens.flatten(2).transpose(1, 2)).transpose(1, 2)
        grid = mixed.reshape(b, self.width, gh, gw)
        spatial = functional.interpolate(
            grid, scale_factor=self.patch, mode="bilinear", align_corners=False
        )[..., :h, :w]
        context = inputs.context.reshape(b, -1, h, w)
        return torch.cat([context, inputs.statics, spatial], dim=1)

    def decode(self, features: Tensor, weather: Tensor) -> Tensor:
        """Run the temporal transformer over the pixel's 45 tokens; forecast-step logits."""
        n = features.shape[0]
        split = CONTEXT_STEPS * self.channels
        values = features[:, :split].reshape(n, CONTEXT_STEPS, self.channels)
        context = self.context(features[:, split:])
        forecast = self.mask_token.expand(n, FORECAST_STEPS, -1)
        tokens = torch.cat([self.values(values), forecast], dim=1)
        tokens = tokens + self.weather(weather) + self.steps + context[:, None]
        out = self.norm(self.temporal(tokens))
        logits: Tensor = self.head(out[:, CONTEXT_STEPS:])
        return logits.squeeze(-1)
