"""ContextRNN: an FPN reads the context season and the DEM, a pixelwise GRU runs the weather.

The FPN (EfficientNet-B3 encoder by default) takes the 9 context steps x (bands + kNDVI) and the
standardised DEM as one image of ``9 * (C + 1) + 1`` channels and gives, per pixel, a location
embedding (64 channels) and the initial GRU state (192 channels, through a tanh). For each
step the weather, concatenated with the embedding, goes through an MLP into the GRU (hidden
192), which runs over the 9 context steps and then the 36 forecast steps; a linear head on its
forecast-step outputs, with a sigmoid, gives kNDVI (as a change from the pixel's context level:
:mod:`trainers.models.base`).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainers.batch import CONTEXT_STEPS, ModelInputs, context_channels
from trainers.models.base import PixelForecaster
from trainers.models.fpn import FPN
from trainers.models.rnn import mlp, zero_head

__all__ = ["ContextRNN"]


class ContextRNN(PixelForecaster):
    """FPN context encoder and pixelwise GRU.

    Parameters
    ----------
    bands : int
        Sentinel-2 bands per step.
    weather_variables : int
        Weather variables per step.
    embedding : int
        Location embedding channels.
    hidden : int
        GRU state size (the FPN's other output channels).
    weather_hidden : int
        Size of the MLP's output, the GRU input.
    encoder : str
        timm encoder name.
    encoder_weights : str, optional
        Local file with pretrained encoder weights (nothing is downloaded).
    pyramid_channels, segmentation_channels : int
        FPN widths.
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
        embedding: int = 64,
        hidden: int = 192,
        weather_hidden: int = 64,
        encoder: str = "efficientnet_b3",
        encoder_weights: str | None = None,
        pyramid_channels: int = 128,
        segmentation_channels: int = 64,
        chunk_pixels: int = 16384,
        residual: bool = True,
    ) -> None:
        super().__init__(
            weather_variables=weather_variables, chunk_pixels=chunk_pixels, residual=residual
        )
        self.embedding = embedding
        self.fpn = FPN(
            CONTEXT_STEPS * context_channels(bands) + 1,
            embedding + hidden,
            encoder=encoder,
            pyramid_channels=pyramid_channels,
            segmentation_channels=segmentation_channels,
            encoder_weights=encoder_weights,
        )
        self.weather_encoder = nn.Sequential(
            mlp(weather_variables + embedding, weather_hidden, weather_hidden), nn.ReLU()
        )
        self.gru = nn.GRU(weather_hidden, hidden, batch_first=True)
        self.head = zero_head(hidden)

    def pixel_features(self, inputs: ModelInputs) -> Tensor:
        """Location embedding and initial state per pixel: ``(B, embedding + hidden, H, W)``."""
        b, h, w = inputs.shape
        image = torch.cat([inputs.context.reshape(b, -1, h, w), inputs.statics[:, :1]], dim=1)
        features: Tensor = self.fpn(image)
        return features

    def decode(self, features: Tensor, weather: Tensor) -> Tensor:
        """Run the GRU over the weather and embedding of each step; forecast-step logits."""
        embedding, state = features[:, : self.embedding], features[:, self.embedding :].tanh()
        steps = weather.shape[1]
        x = torch.cat([weather, embedding[:, None].expand(-1, steps, -1)], dim=-1)
        out, _ = self.gru(self.weather_encoder(x), state[None].contiguous())
        logits: Tensor = self.head(out[:, CONTEXT_STEPS:])
        return logits.squeeze(-1)
