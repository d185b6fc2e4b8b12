"""cubestream trainers (X5): Model / Setting / Task on PyTorch Lightning.

- Models (:mod:`trainers.models`): plain torch modules mapping :class:`ModelInputs` to kNDVI,
  pixel by pixel: :class:`RNN`, :class:`ContextRNN`, :class:`ConvLSTM` and :class:`Contextformer`.
- Setting (:mod:`trainers.setting`): :class:`KndviSetting`, the L2 store through the streaming
  loader and what is scored on it (:class:`ProblemSpec`).
- Task (:mod:`trainers.task`): :class:`ForecastTask`, the LightningModule with the loops, the
  masked loss (:mod:`trainers.objective`, :mod:`trainers.metrics`), optimiser and schedule; its
  test writes the GreenEarthNet scores per track (:mod:`trainers.scores`,
  :mod:`trainers.score_table`, :mod:`trainers.protocol_figures`); runs are compared by
  :mod:`trainers.compare` and :mod:`trainers.compare_runs`.
- ``cubestream train fit|validate|test|predict --config FILE`` (:mod:`trainers.cli`) with the
  configs in ``trainers/configs``; DeepSpeed on CPUs through :mod:`trainers.deepspeed_cpu`.
"""

from __future__ import annotations

from cubestream._extras import require_extra

# ruff: noqa: E402 (the extra is checked before the modules that need it are imported)
require_extra("train", "the trainers", "torch", "pytorch_lightning", "torchmetrics", "torchdata")

from trainers.batch import Batch, ModelInputs, ProblemSpec
from trainers.callbacks import StepClock, ThroughputMonitor
from trainers.models import RNN, Contextformer, ContextRNN, ConvLSTM, PixelForecaster
from trainers.objective import ForecastObjective
from trainers.setting import KndviSetting
from trainers.task import ForecastTask

__all__ = [
    "RNN",
    "Batch",
    "ContextRNN",
    "Contextformer",
    "ConvLSTM",
    "ForecastObjective",
    "ForecastTask",
    "KndviSetting",
    "ModelInputs",
    "PixelForecaster",
    "ProblemSpec",
    "StepClock",
    "ThroughputMonitor",
]
