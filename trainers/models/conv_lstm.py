"""ConvLSTM: convolutional LSTM layers run over every step of the whole image.

GreenEarthNet's ConvLSTM baseline (Benson et al., CVPR 2024; ``convlstm1M``: four layers of 64
channels, 3 x 3 kernels, about 1 M parameters; 1.1 M here with 6 weather variables) as a model
of this package. At each of the 45 steps the input image holds the step's reflectance and kNDVI
(the context steps; in the forecast steps the bands are zero and the kNDVI channel holds the
model's own forecast of the previous step, fed back as in the paper), a flag of the forecast
steps, the step's weather broadcast over the image, and the statics (DEM, land cover one-hot).
The layers run over the steps; a 1 x 1 convolution of the last layer's state gives each forecast
step's logit, as a change from the pixel's context level (:mod:`trainers.models.base`).

Unlike the pixelwise models, the whole image is recurrent: :meth:`ConvLSTM.pixel_features`
runs the layers and returns the forecast-step logits as the per-pixel "features", and
:meth:`ConvLSTM.decode` passes them through. Training on sampled pixels still runs the whole
image (the cost is the image's, not the pixels').
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from trainers.batch import (
    CONTEXT_STEPS,
    FORECAST_STEPS,
    STATIC_CHANNELS,
    ModelInputs,
    context_channels,
)
from trainers.errors import TrainerConfigError
from trainers.models.base import _EPS, PixelForecaster, context_level

__all__ = ["ConvLSTM", "ConvLSTMCell"]


class ConvLSTMCell(nn.Module):
    """One ConvLSTM layer: the four gates from a convolution of the input and the state."""

    def __init__(self, inputs: int, hidden: int, kernel: int = 3) -> None:
        super().__init__()
        self.hidden = hidden
        self.gates = nn.Conv2d(inputs + hidden, 4 * hidden, kernel, padding=kernel // 2)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """One step: ``x`` (B, inputs, H, W), ``state`` = (h, c) -> new (h, c)."""
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c.tanh(), c


class ConvLSTM(PixelForecaster):
    """Stacked ConvLSTM over the whole image, forecasting with its own output fed back.

    Parameters
    ----------
    bands : int
        Sentinel-2 bands per step.
    weather_variables : int
        Weather variables per step.
    hidden : int
        State channels of each layer (paper: 64).
    layers : int
        ConvLSTM layers (paper: 4).
    kernel : int
        Convolution kernel size (paper: 3).
    chunk_pixels : int
        Most pixels passed through at once.
    residual : bool
        Forecast the change from the pixel's context level (:mod:`trainers.models.base`).
    """

    def __init__(
        self,
        *,
        bands: int = 9,
        weather_variables: int = 6,
        hidden: int = 64,
        layers: int = 4,
        kernel: int = 3,
        chunk_pixels: int = 16384,
        residual: bool = True,
    ) -> None:
        super().__init__(
            weather_variables=weather_variables, chunk_pixels=chunk_pixels, residual=residual
        )
        if layers < 1 or hidden < 1 or kernel % 2 == 0:
            raise TrainerConfigError(
                f"ConvLSTM needs layers >= 1, hidden >= 1 and an odd kernel, got {layers}, "
                f"{hidden}, {kernel}"
            )
        channels = context_channels(bands) + 1 + weather_variables + STATIC_CHANNELS
        sizes = [channels] + [hidden] * layers
        self.cells = nn.ModuleList(ConvLSTMCell(sizes[k], hidden, kernel) for k in range(layers))
        self.hidden = hidden
        self.head = nn.Conv2d(hidden, 1, 1, bias=False)
        self.bias = nn.Parameter(torch.zeros(()))
        nn.init.zeros_(self.head.weight)

    def pixel_features(self, inputs: ModelInputs) -> Tensor:
        """Forecast-step logits of every pixel, ``(B, 36, H, W)`` (see the module docstring)."""
        b, h, w = inputs.shape
        context = inputs.context
        level = context_level(inputs).clamp(_EPS, 1 - _EPS).logit()
        if not self.residual:
            level = torch.zeros_like(level)
        zero = context.new_zeros(b, self.hidden, h, w)
        states = [(zero, zero) for _ in self.cells]
        previous = context[:, -1, -1]
        logits = []
        for t in range(CONTEXT_STEPS + FORECAST_STEPS):
            if t < CONTEXT_STEPS:
                values, flag = context[:, t], context.new_zeros(b, 1, h, w)
            else:
                values = torch.cat([context.new_zeros(b, context.shape[2] - 1, h, w),
                                    previous[:, None]], dim=1)  # fmt: skip
                flag = context.new_ones(b, 1, h, w)
            weather = inputs.weather[:, t, :, None, None].expand(-1, -1, h, w)
            x = torch.cat([values, flag, weather, inputs.statics], dim=1)
            for k, cell in enumerate(self.cells):
                states[k] = cell(x, states[k])
                x = states[k][0]
            if t >= CONTEXT_STEPS:
                logit = self.head(x)[:, 0] + self.bias
                logits.append(logit)
                previous = (level + logit).sigmoid()
        return torch.stack(logits, dim=1)

    def decode(self, features: Tensor, weather: Tensor) -> Tensor:
        """The logits computed by :meth:`pixel_features`, unchanged: ``(N, 36)``."""
        return features
