"""Launching cubestream on clusters: dask-jobqueue profiles and sbatch/PBS training jobs.

- :mod:`cluster.profiles`: named cluster profiles (YAML) -> :class:`ClusterProfile`.
- :mod:`cluster.dask`: :func:`profile_client`, a Dask client on a profile's cluster (LocalCluster,
  dask-jobqueue SLURMCluster or PBSCluster); ``cubestream l1/l2 --cluster PROFILE``.
- :mod:`cluster.launch`: :class:`TrainJob`, its sbatch and PBS scripts, submit/status/wait/cancel.
- :mod:`cluster.schedulers`: the :class:`Scheduler` protocol and its SLURM and PBS
  implementations, registered by name (:data:`SCHEDULERS`, :func:`get_scheduler`).
- :mod:`cluster.local_slurm`: :class:`LocalSlurm`, a real SLURM on loopback for tests and the demo.
"""

from cluster.dask import profile_client
from cluster.errors import (
    ClusterError,
    ClusterJobError,
    ClusterProfileError,
    ClusterProfileNotFoundError,
    ClusterTimeoutError,
    JobNotFoundError,
    LocalSlurmError,
    PipelineConfigError,
    PipelineConfigNotFoundError,
    PipelineError,
    PipelineStageError,
    PipelineStateError,
    SchedulerUnavailableError,
    SubmitError,
    TrainJobError,
)
from cluster.launch import (
    TrainJob,
    cancel,
    log_path,
    render_pbs,
    render_sbatch,
    status,
    submit,
    wait,
)
from cluster.local_slurm import LocalSlurm
from cluster.profiles import ClusterProfile, load_profile, shipped_profiles
from cluster.schedulers import SCHEDULERS, JobState, Scheduler, get_scheduler

__all__ = [
    "SCHEDULERS",
    "ClusterError",
    "ClusterJobError",
    "ClusterProfile",
    "ClusterProfileError",
    "ClusterProfileNotFoundError",
    "ClusterTimeoutError",
    "JobNotFoundError",
    "JobState",
    "LocalSlurm",
    "LocalSlurmError",
    "PipelineConfigError",
    "PipelineConfigNotFoundError",
    "PipelineError",
    "PipelineStageError",
    "PipelineStateError",
    "Scheduler",
    "SchedulerUnavailableError",
    "SubmitError",
    "TrainJob",
    "TrainJobError",
    "cancel",
    "get_scheduler",
    "load_profile",
    "log_path",
    "profile_client",
    "render_pbs",
    "render_sbatch",
    "shipped_profiles",
    "status",
    "submit",
    "wait",
]
