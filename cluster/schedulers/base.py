"""What every batch scheduler offers: the :class:`Scheduler` protocol and a job's :class:`JobState`.

A scheduler submits a training job's script, tells a job's state, cancels it and finds its log;
:func:`wait` follows a job on any of them. SLURM (:mod:`cluster.schedulers.slurm`) and PBS
(:mod:`cluster.schedulers.pbs`) implement it; :mod:`cluster.schedulers` registers them by name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from cluster import _scheduler
from cluster.errors import ClusterJobError, ClusterTimeoutError

if TYPE_CHECKING:
    from cluster.launch import TrainJob

__all__ = ["JobState", "Scheduler", "wait"]


@dataclass(frozen=True, kw_only=True)
class JobState:
    """Where a job is, in the scheduler's own words and in three flags.

    Attributes
    ----------
    state : str
        The state as ``cubestream cluster status`` prints it: SLURM's own (``PENDING``,
        ``COMPLETED``, ``FAILED``...); for PBS the word of its letter (``Q`` is ``QUEUED``,
        ``F`` is ``FINISHED``), a finished job being ``COMPLETED`` or ``FAILED`` by its exit status.
    final : bool
        The job will not run again (a requeued SLURM job is PENDING again).
    failed : bool
        It ended without success.
    reason, exit_code : str
        The scheduler's reason (or comment) and the exit code, ``"?"`` when it gives none.
    log : str, optional
        The file the job writes its output to.
    """

    state: str
    final: bool
    failed: bool
    reason: str = "?"
    exit_code: str = "?"
    log: str | None = None


@runtime_checkable
class Scheduler(Protocol):
    """A batch scheduler: renders, submits, follows and cancels jobs.

    Attributes
    ----------
    name : str
        Its name in profiles and on the command line (``slurm``, ``pbs``).
    submit_program : str
        The command that submits a script (``sbatch``, ``qsub``).
    script_suffix : str
        Suffix of the job scripts it takes (``sbatch``, ``pbs``).
    jobqueue_class : str
        The dask-jobqueue cluster class of its Dask workers (``SLURMCluster``, ``PBSCluster``).
    """

    name: str
    submit_program: str
    script_suffix: str
    jobqueue_class: str

    def check_walltime(self, walltime: str) -> str | None:
        """What is wrong with a ``[D-]HH:MM:SS`` time limit for this scheduler, or None."""
        ...

    def render(self, job: TrainJob) -> str:
        """The batch script of ``job``."""
        ...

    def submit(self, script: Path) -> str:
        """Submit the script file and return the job id (``SubmitError`` when refused)."""
        ...

    def status(self, job_id: str) -> JobState:
        """The job's state (``JobNotFoundError`` when the scheduler does not know it)."""
        ...

    def cancel(self, job_id: str) -> None:
        """Cancel the job (``JobNotFoundError`` when the scheduler does not know it)."""
        ...

    def log_path(self, job_id: str) -> Path:
        """The file a submitted job writes its output to (``JobNotFoundError`` if unknown)."""
        ...

    def log_pattern(self, job: TrainJob, job_id: str) -> str:
        """Where the output of a submitted ``job`` goes, for the user to read."""
        ...

    def check_reachable(self) -> None:
        """Fail with ``SchedulerUnavailableError`` unless the scheduler answers."""
        ...

    def check_worker_script(self, script: str, profile: str) -> None:
        """Let the scheduler check a Dask worker job script without running it, if it can."""
        ...

    def describe(self, job_ids: list[str]) -> str:
        """The state of the jobs (Dask workers that did not start), for an error message."""
        ...


def wait(
    scheduler: Scheduler, job_id: str, *, poll_s: float = 2.0, timeout_s: float | None = None
) -> str:
    """Wait until a job reaches a final state and return it (``COMPLETED``).

    Waiting goes on through requeues (the job is pending again, not final).

    Raises
    ------
    ClusterJobError
        The job ended in a failed state; the message has the state, the reason and the log tail.
    ClusterTimeoutError
        ``timeout_s`` passed first.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        job = scheduler.status(job_id)
        if job.final and not job.failed:
            return job.state
        if job.failed:
            raise ClusterJobError(
                f"job {job_id} ended {job.state} (reason {job.reason}, exit code "
                f"{job.exit_code}); last lines of {job.log}:\n{_scheduler.tail(job.log)}"
            )
        if deadline is not None and time.monotonic() > deadline:
            raise ClusterTimeoutError(
                f"job {job_id} is still {job.state} after {timeout_s:.0f} s "
                f"(reason {job.reason}); see `cubestream cluster logs {job_id}`"
            )
        time.sleep(poll_s)
