"""Models: plain torch modules that forecast kNDVI pixel by pixel from :class:`ModelInputs`."""

from __future__ import annotations

from trainers.models.base import PixelForecaster
from trainers.models.context_rnn import ContextRNN
from trainers.models.contextformer import Contextformer
from trainers.models.conv_lstm import ConvLSTM
from trainers.models.fpn import FPN, load_encoder_weights
from trainers.models.rnn import RNN

__all__ = [
    "FPN",
    "RNN",
    "ContextRNN",
    "Contextformer",
    "ConvLSTM",
    "PixelForecaster",
    "load_encoder_weights",
]
