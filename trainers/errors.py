"""All exceptions of the trainers package (X5).

Each class inherits :class:`cubestream.errors.CubestreamError`, so the ``cubestream`` command
prints it as one clear line, and the matching builtin, so callers can catch either.
"""

from __future__ import annotations

from cubestream.errors import CubestreamError

__all__ = [
    "BatchContractError",
    "CheckpointError",
    "GpuMemoryError",
    "LoaderNotAvailableError",
    "TrainerConfigError",
    "TrainersError",
]


class TrainersError(CubestreamError, RuntimeError):
    """Base class of every error raised by the trainers."""


class TrainerConfigError(TrainersError, ValueError):
    """A training configuration is inconsistent (model sizes vs the store, options)."""


class BatchContractError(TrainersError, ValueError):
    """A batch does not follow the loader's batch contract (keys, shapes, dtypes)."""


class LoaderNotAvailableError(TrainersError, ImportError):
    """The streaming loader (:mod:`cubestream.stream`) cannot be imported."""


class CheckpointError(TrainersError, FileNotFoundError):
    """A checkpoint or a pretrained weights file is missing or does not fit the model."""


class GpuMemoryError(TrainerConfigError, MemoryError):
    """The settings do not fit the free GPU memory (the message names the setting to lower)."""
