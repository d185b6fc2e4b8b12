"""SLURM: ``sbatch``, ``scontrol show job`` (then ``sacct``), ``scancel``; ``srun`` in scripts."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from cluster import _scheduler
from cluster._jobscript import common_values, render, shell_lines
from cluster.errors import JobNotFoundError, SubmitError
from cluster.schedulers.base import JobState

if TYPE_CHECKING:
    from cluster.launch import TrainJob

__all__ = ["FAILED_STATES", "FINAL_STATES", "Slurm", "render_sbatch"]

FAILED_STATES = frozenset(
    {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
    | {"PREEMPTED"}
)
"""SLURM states of a job that ended without success."""
FINAL_STATES = FAILED_STATES | {"COMPLETED"}
"""SLURM states of a job that will not run again (a requeued job is PENDING again)."""


def render_sbatch(job: TrainJob) -> str:
    """The SLURM batch script of ``job``.

    ``#SBATCH`` asks for ``nodes`` x ``tasks`` tasks (and ``--gpus-per-node``), SIGUSR1
    ``signal_s`` seconds before the time limit and ``--requeue``; ``srun`` starts
    ``python -m trainers.cli fit ...`` once per task, resuming from the newest checkpoint.
    """
    directives = []
    if job.gpus_per_node:
        directives.append(f"--gpus-per-node={job.gpus_per_node}")
    if job.memory:
        directives.append(f"--mem={job.memory}")
    if job.partition:
        directives.append(f"--partition={job.partition}")
    if job.account:
        directives.append(f"--account={job.account}")
    directives.extend(job.extra_directives)
    values = common_values(job, "#SBATCH")
    values["directives"] = "\n".join(f"#SBATCH {d}" for d in directives)
    values["signal"] = f"SIGUSR1@{job.signal_s}"
    values["master_port"] = (
        f"export MASTER_PORT={job.env['MASTER_PORT']}"
        if "MASTER_PORT" in job.env
        else "# MASTER_PORT: Lightning's default, 15000 + the last 4 digits of the job id"
    )
    values["command"] = shell_lines([job.python, "-m", "trainers.cli", *job.trainer_args()])
    return render("train.sbatch", values)


class Slurm:
    """The SLURM scheduler (see :class:`~cluster.schedulers.base.Scheduler`)."""

    name = "slurm"
    submit_program = "sbatch"
    script_suffix = "sbatch"
    jobqueue_class = "SLURMCluster"

    def check_walltime(self, walltime: str) -> str | None:
        """Nothing: SLURM takes ``[D-]HH:MM:SS``."""
        return None

    def render(self, job: TrainJob) -> str:
        """The ``sbatch`` script of ``job`` (:func:`render_sbatch`)."""
        return render_sbatch(job)

    def submit(self, script: Path) -> str:
        """``sbatch --parsable SCRIPT``; the job id."""
        return _submit(["sbatch", "--parsable", str(script)], script)

    def status(self, job_id: str) -> JobState:
        """``scontrol show job`` (which keeps finished jobs for ``MinJobAge`` s), then ``sacct``."""
        fields = _scheduler.scontrol_job(job_id) or {}
        state = fields.get("JobState") or _sacct_state(job_id)
        return JobState(
            state=state,
            final=state in FINAL_STATES,
            failed=state in FAILED_STATES,
            reason=fields.get("Reason", "?"),
            exit_code=fields.get("ExitCode", "?"),
            log=fields.get("StdOut"),
        )

    def cancel(self, job_id: str) -> None:
        """``scancel JOBID``, after checking that SLURM knows the job (scancel may not say)."""
        self.status(job_id)
        try:
            _scheduler.run(["scancel", str(job_id)])
        except subprocess.CalledProcessError as exc:
            raise JobNotFoundError(f"scancel {job_id}: {(exc.stderr or '').strip()}") from None

    def log_path(self, job_id: str) -> Path:
        """The job's ``StdOut`` file (``WORKDIR/logs/<job_name>-<job_id>.out``)."""
        fields = _scheduler.scontrol_job(job_id)
        if not fields or not fields.get("StdOut"):
            raise JobNotFoundError(f"SLURM knows no job {job_id}, nor where its log is")
        return Path(fields["StdOut"])

    def log_pattern(self, job: TrainJob, job_id: str) -> str:
        """``WORKDIR/logs/<job_name>-<job_id>.out``."""
        return str(job.log_dir / f"{job.job_name}-{job_id}.out")

    def check_reachable(self) -> None:
        """``sinfo`` answers."""
        _scheduler.check_reachable(["sinfo", "-h", "-o", "%P"])

    def check_worker_script(self, script: str, profile: str) -> None:
        """``sbatch --test-only``: SLURM checks the worker job script without submitting it."""
        with tempfile.NamedTemporaryFile("w", suffix=".sh") as file:
            file.write(script)
            file.flush()
            try:
                _scheduler.run(["sbatch", "--test-only", file.name], timeout_s=60)
            except subprocess.CalledProcessError as exc:
                message = (exc.stderr or exc.stdout or "").strip()
                raise SubmitError(
                    f"SLURM rejects the worker jobs of cluster profile {profile!r}: {message}\n"
                    f"the job script:\n{script}"
                ) from None

    def describe(self, job_ids: list[str]) -> str:
        """Each job's state and reason, and the last lines of the first one's error log."""
        parts = []
        for job_id in job_ids:
            fields = _scheduler.scontrol_job(job_id) or {}
            state = f"{fields.get('JobState', 'unknown')} ({fields.get('Reason', '?')})"
            parts.append(f"job {job_id}: {state}")
        log = (_scheduler.scontrol_job(job_ids[0]) or {}).get("StdErr")
        return "; ".join(parts) + f"\nlast lines of {log}:\n{_scheduler.tail(log, 20)}"


def _sacct_state(job_id: str) -> str:
    try:
        out = _scheduler.run(["sacct", "-n", "-X", "-P", "-j", str(job_id), "-o", "State"])
    except subprocess.CalledProcessError:
        out = ""
    states = [line.split()[0] for line in out.splitlines() if line.strip()]
    if states:
        return states[-1]
    raise JobNotFoundError(
        f"SLURM knows no job {job_id} (finished jobs are forgotten after MinJobAge)"
    )


def _submit(command: list[str], script: Path) -> str:
    try:
        out = _scheduler.run(command)
    except subprocess.CalledProcessError as exc:
        message = (exc.stderr or exc.stdout or "").strip()
        raise SubmitError(f"{command[0]} rejected {script}: {message}") from None
    return out.strip().split(";")[0]
