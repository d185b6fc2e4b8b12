"""The SLURM scheduler through its protocol, against the real local SLURM: submit, status, wait,
cancel and the log of small shell jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.errors import ClusterJobError
from cluster.local_slurm import LocalSlurm
from cluster.schedulers import get_scheduler, wait

pytestmark = [pytest.mark.slurm]


def _script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.sbatch"
    path.write_text(f"#!/bin/sh\n#SBATCH -J {name}\n#SBATCH -o {tmp_path}/{name}-%j.out\n{body}\n")
    return path


def test_a_job_runs_to_completion_and_its_log_is_found(
    local_slurm: LocalSlurm, tmp_path: Path
) -> None:
    slurm = get_scheduler("slurm")
    job_id = slurm.submit(_script(tmp_path, "hello", "echo hello from $SLURM_JOB_ID"))
    assert job_id.isdigit()
    assert wait(slurm, job_id, poll_s=0.5, timeout_s=120) == "COMPLETED"
    done = slurm.status(job_id)
    assert (done.state, done.final, done.failed, done.exit_code) == (
        "COMPLETED",
        True,
        False,
        "0:0",
    )
    log = slurm.log_path(job_id)
    assert log == tmp_path / f"hello-{job_id}.out"
    assert log.read_text().strip() == f"hello from {job_id}"


def test_a_cancelled_job_ends_the_wait_with_its_state(
    local_slurm: LocalSlurm, tmp_path: Path
) -> None:
    slurm = get_scheduler("slurm")
    job_id = slurm.submit(_script(tmp_path, "sleeper", "sleep 120"))
    running = slurm.status(job_id)
    assert running.state in ("PENDING", "RUNNING") and not running.final
    slurm.cancel(job_id)
    with pytest.raises(ClusterJobError, match=rf"job {job_id} ended CANCELLED"):
        wait(slurm, job_id, poll_s=0.5, timeout_s=60)
