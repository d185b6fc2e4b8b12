"""The pipeline's training stage as a batch job, SLURM or PBS (through :mod:`cluster.launch`).

The job trains ``--config`` on the pipeline's L2 store with ``default_root_dir`` and its
checkpoints in ``<workdir>/train/<name>``; the batch script resumes from the newest checkpoint
when it is requeued. A pipeline run that was stopped while a job was in flight finds the job
again (its id is in the state file) and waits for it instead of submitting another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cluster.pipeline_commands import Layout
from cluster.pipeline_config import PipelineSpec

__all__ = ["follow_train_job", "train_job"]

POLL_S = 5.0
"""Seconds between two looks at the job's state."""


def train_job(spec: PipelineSpec, profile: Any) -> Any:
    """The :class:`cluster.launch.TrainJob` of the pipeline's training on ``profile``."""
    from cluster.launch import TrainJob

    train = spec.train
    layout = Layout(spec.workdir)
    return TrainJob(
        config=Path(train.config).absolute(),
        nodes=train.nodes,
        gpus_per_node=train.gpus_per_node,
        tasks_per_node=train.tasks_per_node,
        cpus_per_task=train.cpus_per_task,
        time=train.time,
        partition=profile.queue,
        account=profile.account,
        job_name=re.sub(r"[^\w.-]", "-", f"{spec.name}-{spec.train_name}"),
        workdir=layout.train_root(spec.train_name),
        extra_args=("--data.store", str(layout.l2), *train.args),
        extra_directives=tuple(profile.job_extra_directives),
        prologue=tuple(profile.job_script_prologue),
        python=profile.python or TrainJob.python,
        scheduler=profile.kind,
    )


def follow_train_job(
    spec: PipelineSpec, note: str | None, submitted: Callable[[str, str], None]
) -> str:
    """Submit the training job (or find the one in flight) and wait until it completes.

    Parameters
    ----------
    spec : PipelineSpec
        The pipeline.
    note : str, optional
        The state file's note of an interrupted training stage (``"job 1234"``).
    submitted : callable
        Called with the job id and its submit command (``sbatch SCRIPT``, ``qsub SCRIPT``) once
        a job is submitted.

    Returns
    -------
    str
        The id of the job that completed.

    Raises
    ------
    ClusterJobError
        The job ended in a failed state (the message has its log's last lines).
    """
    from cluster.launch import script_path, submit
    from cluster.profiles import load_profile
    from cluster.schedulers import get_scheduler, wait

    job = train_job(spec, load_profile(spec.train.cluster))
    scheduler = get_scheduler(job.scheduler)
    job_id = _in_flight(note, scheduler)
    if job_id is None:
        job_id = submit(job)
        submitted(job_id, f"{scheduler.submit_program} {script_path(job)}")
    wait(scheduler, job_id, poll_s=POLL_S)
    return job_id


def _in_flight(note: str | None, scheduler: Any) -> str | None:
    match = re.fullmatch(r"job (\S+)", note or "")
    if match is None:
        return None
    from cubestream.errors import CubestreamError

    try:
        return match.group(1) if not scheduler.status(match.group(1)).final else None
    except CubestreamError:  # forgotten by the scheduler: submit again
        return None
