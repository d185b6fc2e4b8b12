"""The RNN baseline: a pixelwise GRU whose initial state encodes the context and statics.

Per pixel: an MLP (the state encoder) maps the 9 context steps x (bands + kNDVI) and the statics
(DEM, land cover one-hot) to the initial GRU state; an MLP encodes the weather of each forecast
step; the GRU runs over the 36 forecast steps; a linear head with a sigmoid gives kNDVI.
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
    """

    def __init__(
        self,
        *,
        bands: int = 9,
        weather_variables: int = 6,
        hidden: int = 128,
        weather_hidden: int = 32,
        chunk_pixels: int = 16384,
    ) -> None:
        super().__init__(weather_variables=weather_variables, chunk_pixels=chunk_pixels)
        features = CONTEXT_STEPS * context_channels(bands) + STATIC_CHANNELS
        self.state_encoder = nn.Sequential(mlp(features, hidden, hidden), nn.Tanh())
        self.weather_encoder = nn.Sequential(
            mlp(weather_variables, weather_hidden, weather_hidden), nn.ReLU()
        )
        self.gru = nn.GRU(weather_hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 1)

    def pixel_features(self, inputs: ModelInputs) -> Tensor:
        """Context steps and statics stacked per pixel: ``(B, 9 * (C + 1) + 12, H, W)``."""
        b, h, w = inputs.shape
        context = inputs.context.reshape(b, -1, h, w)
        return torch.cat([context, inputs.statics], dim=1)

    def decode(self, features: Tensor, weather: Tensor) -> Tensor:
        """Run the GRU from the encoded state over the encoded weather."""
        state = self.state_encoder(features)
        steps, _ = self.gru(self.weather_encoder(weather), state[None].contiguous())
        return self.head(steps).squeeze(-1).sigmoid()
