"""Calls to the batch scheduler's commands (sbatch, squeue, scontrol, qsub, qstat...).

Every call goes through :func:`run`, which turns a missing command or an unreachable controller
into :class:`~cluster.errors.SchedulerUnavailableError` quoting the scheduler's own message.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from cluster.errors import SchedulerUnavailableError

__all__ = ["check_reachable", "run", "scontrol_job", "tail"]

_UNREACHABLE = (
    "Unable to contact slurm controller",
    "Connection refused",
    "Socket timed out",
    "Zero Bytes were transmitted or received",
    "Communication connection failure",
    "cannot connect to server",
    "Connection timed out",
)


def run(args: Sequence[str], *, timeout_s: float = 60.0, stdin: str | None = None) -> str:
    """Run a scheduler command and return its standard output.

    Raises
    ------
    SchedulerUnavailableError
        The command is not installed, times out, or cannot reach the controller.
    subprocess.CalledProcessError
        Any other failure (the caller turns it into its own error, with ``stderr``).
    """
    if shutil.which(args[0]) is None:
        raise SchedulerUnavailableError(
            f"`{args[0]}` is not installed here: run this on a login node of the cluster "
            "(or start the local SLURM: `cubestream cluster local-slurm start`)"
        )
    try:
        done = subprocess.run(
            list(args), input=stdin, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise SchedulerUnavailableError(
            f"`{' '.join(args)}` did not answer in {timeout_s:.0f} s: is the scheduler up?"
        ) from None
    if done.returncode != 0:
        message = (done.stderr or done.stdout).strip()
        if any(marker in message for marker in _UNREACHABLE):
            raise SchedulerUnavailableError(f"cannot reach the scheduler ({args[0]}): {message}")
        raise subprocess.CalledProcessError(done.returncode, list(args), done.stdout, done.stderr)
    return done.stdout


def check_reachable(command: Sequence[str]) -> None:
    """Fail with :class:`SchedulerUnavailableError` unless ``command`` (``sinfo``) succeeds."""
    try:
        run(command, timeout_s=30)
    except subprocess.CalledProcessError as exc:
        message = (exc.stderr or exc.stdout or "").strip()
        raise SchedulerUnavailableError(
            f"cannot reach the scheduler (`{' '.join(command)}`): {message}"
        ) from None


def scontrol_job(job_id: str) -> dict[str, str] | None:
    """The fields of ``scontrol show job -o JOBID``, or None when SLURM does not know the job."""
    try:
        out = run(["scontrol", "show", "job", "-o", str(job_id)], timeout_s=30)
    except subprocess.CalledProcessError as exc:
        if "Invalid job id" in (exc.stderr or ""):
            return None
        message = " ".join((exc.stderr or exc.stdout or "").split())[-300:]
        raise SchedulerUnavailableError(
            f"`scontrol show job {job_id}` failed: {message}; is SLURM configured here?"
        ) from None
    fields: dict[str, str] = {}
    for token in out.split():
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields or None


def tail(path: str | Path | None, lines: int = 30) -> str:
    """The last ``lines`` lines of a text file, or a note when it cannot be read."""
    if not path:
        return "(no log file)"
    try:
        text = Path(path).read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc.strerror})"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"
