"""PBS Pro / OpenPBS: ``qsub``, ``qstat -f -x`` (finished jobs included), ``qdel``; torchrun.

``qstat -f`` prints one record per job: ``Job Id: ID`` then ``    name = value`` lines, long
values continued on lines that start with a tab (glued on as they are: PBS breaks anywhere).
:func:`parse_qstat_full` reads that; :meth:`Pbs.status` maps its ``job_state`` letter to a
:class:`~cluster.schedulers.base.JobState` (``F``, finished, is ``COMPLETED`` or ``FAILED`` by
``Exit_status``).
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from cluster import _scheduler
from cluster._jobscript import common_values, render
from cluster.errors import JobNotFoundError, SubmitError
from cluster.schedulers.base import JobState

if TYPE_CHECKING:
    from cluster.launch import TrainJob

__all__ = ["STATES", "Pbs", "job_state", "parse_qstat_full", "render_pbs"]

STATES = {
    "Q": "QUEUED",
    "H": "HELD",
    "W": "WAITING",
    "T": "TRANSIT",
    "S": "SUSPENDED",
    "U": "SUSPENDED",
    "R": "RUNNING",
    "B": "BEGUN",
    "E": "EXITING",
    "M": "MOVED",
    "X": "FINISHED",
    "F": "FINISHED",
}
"""PBS job state letters and their words (``X``: a finished subjob of an array)."""
_FINISHED = frozenset({"F", "X"})


def render_pbs(job: TrainJob) -> str:
    """The PBS Pro / OpenPBS script of ``job``: torchrun on every node, started by pbs_tmrsh."""
    values = common_values(job, "#PBS")
    directives = list(job.extra_directives)
    if job.partition:
        directives.insert(0, f"-q {job.partition}")
    if job.account:
        directives.insert(0, f"-A {job.account}")
    values["directives"] = "\n".join(f"#PBS {d}" for d in directives)
    values["ncpus"] = str(job.tasks * job.cpus_per_task)
    values["pbs_gpus"] = f":ngpus={job.gpus_per_node}" if job.gpus_per_node else ""
    values["pbs_mem"] = f":mem={job.memory}" if job.memory else ""
    values["pbs_port"] = str(job.env.get("MASTER_PORT", "29500"))
    values["env_inline"] = " ".join(f"{k}={shlex.quote(str(v))}" for k, v in job.env.items())
    values["torchrun"] = f"{shlex.quote(job.python)} -m torch.distributed.run"
    values["trainer_args"] = " ".join(shlex.quote(a) for a in job.trainer_args())
    return render("train.pbs", values)


def parse_qstat_full(text: str) -> dict[str, dict[str, str]]:
    r"""The records of ``qstat -f`` output: job id -> attribute name -> value.

    Examples
    --------
    >>> parse_qstat_full("Job Id: 7.srv\\n    job_state = R\\n    comment = a lo\\n\\tng one\\n")
    {'7.srv': {'job_state': 'R', 'comment': 'a long one'}}
    """
    jobs: dict[str, dict[str, str]] = {}
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if line.startswith("Job Id:"):
            fields = jobs.setdefault(line.partition(":")[2].strip(), {})
            name = ""
        elif line.startswith("\t") and name:
            fields[name] += line[1:]
        elif " = " in line:
            name, _, value = line.strip().partition(" = ")
            fields[name] = value
    return jobs


def job_state(fields: dict[str, str]) -> JobState:
    """The :class:`JobState` of one ``qstat -f`` record."""
    letter = fields.get("job_state", "?")
    exit_code = fields.get("Exit_status", "?")
    final = letter in _FINISHED
    failed = final and exit_code != "0"
    state = ("FAILED" if failed else "COMPLETED") if final else STATES.get(letter, letter)
    output = fields.get("Output_Path")
    return JobState(
        state=state,
        final=final,
        failed=failed,
        reason=fields.get("comment", "?"),
        exit_code=exit_code,
        log=output.partition(":")[2] if output and ":" in output else output,
    )


class Pbs:
    """The PBS Pro / OpenPBS scheduler (see :class:`~cluster.schedulers.base.Scheduler`)."""

    name = "pbs"
    submit_program = "qsub"
    script_suffix = "pbs"
    jobqueue_class = "PBSCluster"

    def check_walltime(self, walltime: str) -> str | None:
        """PBS takes wall times as ``HH:MM:SS`` only (no ``D-`` days)."""
        if "-" in walltime:
            return f"is {walltime!r}; PBS takes HH:MM:SS (e.g. '48:00:00')"
        return None

    def render(self, job: TrainJob) -> str:
        """The ``qsub`` script of ``job`` (:func:`render_pbs`)."""
        return render_pbs(job)

    def submit(self, script: Path) -> str:
        """``qsub SCRIPT``; the job id (``1234.server``)."""
        try:
            out = _scheduler.run(["qsub", str(script)])
        except subprocess.CalledProcessError as exc:
            message = (exc.stderr or exc.stdout or "").strip()
            raise SubmitError(f"qsub rejected {script}: {message}") from None
        return out.strip().split(";")[0]

    def status(self, job_id: str) -> JobState:
        """``qstat -f -x JOBID`` (``-x``: finished jobs too, while the server keeps history)."""
        return job_state(self._fields(job_id))

    def cancel(self, job_id: str) -> None:
        """``qdel JOBID``, after checking that PBS knows the job."""
        self.status(job_id)
        try:
            _scheduler.run(["qdel", str(job_id)])
        except subprocess.CalledProcessError as exc:
            raise JobNotFoundError(f"qdel {job_id}: {(exc.stderr or '').strip()}") from None

    def log_path(self, job_id: str) -> Path:
        """The job's ``Output_Path`` (without PBS's ``host:`` prefix)."""
        log = self.status(job_id).log
        if not log:
            raise JobNotFoundError(f"PBS knows no output path of job {job_id}")
        return Path(log)

    def log_pattern(self, job: TrainJob, job_id: str) -> str:
        """``WORKDIR/logs/<job_name>.out`` (the script's ``#PBS -o``)."""
        return str(job.log_dir / f"{job.job_name}.out")

    def check_reachable(self) -> None:
        """``qstat -B`` answers."""
        _scheduler.check_reachable(["qstat", "-B"])

    def check_worker_script(self, script: str, profile: str) -> None:
        """Nothing: PBS has no dry run of ``qsub`` (a bad script fails when its jobs start)."""

    def describe(self, job_ids: list[str]) -> str:
        """Each job's state and PBS's comment on it."""
        parts = []
        for job_id in job_ids:
            try:
                job = self.status(job_id)
                parts.append(f"job {job_id}: {job.state} ({job.reason})")
            except JobNotFoundError:
                parts.append(f"job {job_id}: unknown to qstat")
        return "; ".join(parts) + "; check them with `qstat -f -x JOBID`"

    def _fields(self, job_id: str) -> dict[str, str]:
        try:
            out = _scheduler.run(["qstat", "-f", "-x", str(job_id)], timeout_s=30)
        except subprocess.CalledProcessError as exc:
            message = " ".join((exc.stderr or exc.stdout or "").split())
            raise JobNotFoundError(f"PBS knows no job {job_id} ({message})") from None
        jobs = parse_qstat_full(out)
        if not jobs:
            raise JobNotFoundError(f"PBS knows no job {job_id} (qstat printed no record)")
        return next(iter(jobs.values()))
