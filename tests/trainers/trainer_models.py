"""Small models and settings of the trainer tests (imported by name: a test helper module)."""

from __future__ import annotations

from pathlib import Path

from trainers.models import RNN, Contextformer, ContextRNN, ConvLSTM
from trainers.setting import KndviSetting
from trainers.testing import SyntheticL2DataModule

SIZE = 32
"""Side of the synthetic samples (px)."""


def tiny_rnn(**kwargs: object) -> RNN:
    return RNN(**{"hidden": 16, "weather_hidden": 8, **kwargs})  # type: ignore[arg-type]


def tiny_context_rnn(**kwargs: object) -> ContextRNN:
    options: dict[str, object] = {
        "hidden": 16,
        "embedding": 8,
        "weather_hidden": 8,
        "pyramid_channels": 16,
        "segmentation_channels": 8,
    }
    return ContextRNN(**{**options, **kwargs})  # type: ignore[arg-type]


def setting_of(
    store: Path, batch_size: int = 2, seed: int = 0, loader: str = "helper"
) -> KndviSetting:
    """The Setting over the test helper loader, or over cubestream.stream (``"stream"``)."""
    if loader == "stream":
        return KndviSetting(str(store), batch_size=batch_size, num_workers=0, seed=seed)
    helper = SyntheticL2DataModule(store, batch_size=batch_size, seed=seed)
    return KndviSetting(str(store), batch_size=batch_size, loader=helper)


def tiny_conv_lstm(**kwargs: object) -> ConvLSTM:
    return ConvLSTM(**{"hidden": 4, "layers": 2, **kwargs})  # type: ignore[arg-type]


def tiny_contextformer(**kwargs: object) -> Contextformer:
    options: dict[str, object] = {"width": 16, "depth": 1, "heads": 2, "patch": 4}
    return Contextformer(**{**options, "spatial_depth": 1, **kwargs})  # type: ignore[arg-type]
