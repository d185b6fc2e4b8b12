"""Exceptions of ``cubestream run`` (the chained pipeline).

Each inherits :class:`cubestream.errors.CubestreamError` (the CLI prints one line and exits 2)
and the matching builtin. They live apart from :mod:`cluster.errors` only until the two are
merged.
"""

from __future__ import annotations

from cubestream.errors import CubestreamError

__all__ = [
    "PipelineConfigError",
    "PipelineConfigNotFoundError",
    "PipelineError",
    "PipelineStageError",
    "PipelineStateError",
]


class PipelineError(CubestreamError, RuntimeError):
    """The pipeline cannot go on as asked."""


class PipelineConfigError(PipelineError, ValueError):
    """A pipeline YAML has a missing, unknown or wrong key; the message names the key and file."""


class PipelineConfigNotFoundError(PipelineConfigError, FileNotFoundError):
    """A pipeline YAML, or a file it names (the trainer config), does not exist."""


class PipelineStateError(PipelineError, ValueError):
    """The pipeline's state file is unreadable, or a stage needed first is not done."""


class PipelineStageError(PipelineError):
    """A stage's command failed; the message gives its exit status, log and what to do."""
