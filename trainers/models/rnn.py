"""The RNN baseline: a pixelwise GRU whose initial state encodes the context and statics.

Per pixel: an MLP (the state encoder) maps the 9 context steps x (bands + kNDVI) and the statics
(DEM, land cover one-hot) to the initial GRU state; an MLP encodes the weather of each step; the
GRU runs over the weather of the 9 context steps (so that it knows the weather the context
kNDVI was seen under) and then of the 36 forecast steps; a linear head on its forecast-step
outputs, with a sigmoid, gives kNDVI (as a change from the pixel's context level:
:mod:`trainers.models.base`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainers.batch import CONTEXT_STEPS, STATIC_CHANNELS, ModelInputs, context_channels
from trainers.models.base import PixelForecaster

__all__ = ["RNN"]


def mlp(inputs: int, hidden: int, outputs: int) -> nn.Sequential:
    """Two linear layers with a ReLU between them."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, outputs))


def zero_head(inputs: int) -> nn.Linear:
    """The linear head, zero at the start: a model first forecasts the context level."""
    head = nn.Linear(inputs, 1)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    return head


class RNN(PixelForecaster):
    """Pixelwise GRU baseline.

    Parameters
    ----------
    bands : int
        Sentinel-2 bands per step.
    weather_variables : int
        Weather variables per step.
    hidden : int
        GRU state size.
    weather_hidden : int
        Size of each step's weather encoding (the GRU input).
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
        hidden: int = 128,
        weather_hidden: int = 32,
        chunk_pixels: int = 16384,
        residual: bool = True,
    ) -> None:
        super().__init__(
            weather_variables=weather_variables, chunk_pixels=chunk_pixels, residual=residual
        )
        features = CONTEXT_STEPS * context_channels(bands) + STATIC_CHANNELS
        self.state_encoder = nn.Sequential(mlp(features, hidden, hidden), nn.Tanh())
        self.weather_encoder = nn.Sequential(
            mlp(weather_variables, weather_hidden, weather_hidden), nn.ReLU()
        )
        self.gru = nn.GRU(weather_hidden, hidden, batch_first=True)
        self.head = zero_head(hidden)

    def pixel_features(self, inputs: ModelInputs) -> Tensor:
        """Context steps and statics stacked per pixel: ``(B, 9 * (C + 1) + 12, H, W)``."""
        b, h, w = inputs.shape
        context = inputs.context.reshape(b, -1, h, w)
        return torch.cat([context, inputs.statics], dim=1)

    def decode(self, features: Tensor, weather: Tensor) -> Tensor:
        """Run the GRU from the encoded state over the encoded weather; forecast-step logits."""
        state = self.state_encoder(features)
        steps, _ = self.gru(self.weather_encoder(weather), state[None].contiguous())
        logits: Tensor = self.head(steps[:, CONTEXT_STEPS:])
        return logits.squeeze(-1)
