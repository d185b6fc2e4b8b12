"""All exceptions of the cluster package.

Each inherits :class:`cubestream.errors.CubestreamError` (the CLI prints one line and exits with
the code of its kind, :class:`cubestream._exit.ExitCode`) and the matching builtin, so callers can
catch either.
"""

from __future__ import annotations

from cubestream.errors import CubestreamError, WorkFailedError

__all__ = [
    "ClusterError",
    "ClusterJobError",
    "ClusterProfileError",
    "ClusterProfileNotFoundError",
    "ClusterTimeoutError",
    "JobNotFoundError",
    "LocalSlurmError",
    "PipelineConfigError",
    "PipelineConfigNotFoundError",
    "PipelineError",
    "PipelineStageError",
    "PipelineStateError",
    "SchedulerUnavailableError",
    "SubmitError",
    "TrainJobError",
]


class ClusterError(CubestreamError, RuntimeError):
    """Launching on a cluster cannot go on as asked."""


class ClusterProfileError(ClusterError, ValueError):
    """A cluster profile has a missing, unknown or wrong field."""


class ClusterProfileNotFoundError(ClusterProfileError, FileNotFoundError):
    """A cluster profile is neither a YAML file nor the name of a shipped profile."""


class TrainJobError(ClusterError, ValueError):
    """A training job's settings cannot work (nodes, tasks, time limit, config file)."""


class SchedulerUnavailableError(ClusterError, ConnectionError):
    """The batch scheduler (SLURM, PBS) cannot be reached, or its commands are not installed."""


class SubmitError(ClusterError):
    """The scheduler rejected a job script; the message quotes the scheduler."""


class JobNotFoundError(ClusterError, LookupError):
    """The scheduler does not know a job id (never submitted, or forgotten after MinJobAge)."""


class ClusterJobError(ClusterError, WorkFailedError):
    """A job ended in a failed state (FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY)."""


class ClusterTimeoutError(ClusterError, TimeoutError):
    """A job or a Dask worker did not reach the awaited state in time."""


class LocalSlurmError(ClusterError):
    """The local SLURM (munge, slurmctld, slurmd) could not be installed, started or stopped."""


class PipelineError(CubestreamError, RuntimeError):
    """``cubestream run`` (the chained pipeline) cannot go on as asked."""


class PipelineConfigError(PipelineError, ValueError):
    """A pipeline YAML has a missing, unknown or wrong key; the message names the key and file."""


class PipelineConfigNotFoundError(PipelineConfigError, FileNotFoundError):
    """A pipeline YAML, or a file it names (the trainer config), does not exist."""


class PipelineStateError(PipelineError, ValueError):
    """The pipeline's state file is unreadable, or a stage needed first is not done."""


class PipelineStageError(PipelineError, WorkFailedError):
    """A stage's command failed; the message gives its exit status, log and what to do."""
