"""Training on a cluster: render a batch script for ``cubestream train fit``, submit and follow it.

A :class:`TrainJob` names the config, the shape (nodes x tasks per node, one task per GPU) and the
shared work directory. :func:`render_sbatch` writes a SLURM script in which ``srun`` starts one
task per device and Lightning reads the SLURM environment; it asks for SIGUSR1 before the time
limit (Lightning saves an HPC checkpoint and requeues the job), keeps a ``last.ckpt`` every few
steps in ``WORKDIR/checkpoints`` and resumes from the newest checkpoint when the job comes back.
:func:`render_pbs` writes the same job for PBS (torchrun on every node). :func:`submit`,
:func:`status`, :func:`wait`, :func:`cancel` and :func:`log_path` talk to SLURM.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Literal

from cluster import _scheduler
from cluster.errors import (
    ClusterJobError,
    ClusterTimeoutError,
    JobNotFoundError,
    SubmitError,
    TrainJobError,
)

__all__ = [
    "FAILED_STATES",
    "FINAL_STATES",
    "TrainJob",
    "cancel",
    "log_path",
    "render_pbs",
    "render_sbatch",
    "status",
    "submit",
    "wait",
]

TEMPLATES = Path(__file__).with_name("templates")
FAILED_STATES = frozenset(
    {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}
    | {"PREEMPTED"}
)
"""SLURM states of a job that ended without success."""
FINAL_STATES = FAILED_STATES | {"COMPLETED"}
"""SLURM states of a job that will not run again (a requeued job is PENDING again)."""

_TIME = re.compile(r"^(?:\d+-)?\d{1,3}:[0-5]\d:[0-5]\d$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Script(Template):
    delimiter = "@@"


@dataclass(frozen=True, kw_only=True)
class TrainJob:
    """A ``cubestream train fit`` run on a cluster.

    Attributes
    ----------
    config : Path
        The LightningCLI YAML config (``trainers/configs/rnn.yaml``).
    nodes : int
        Nodes (``trainer.num_nodes``).
    gpus_per_node : int
        GPUs per node; one task per GPU. 0 makes a CPU job (accelerator cpu, DDP over gloo).
    tasks_per_node : int, optional
        Tasks (``trainer.devices``) per node; for GPU jobs it defaults to, and must equal,
        ``gpus_per_node``; for CPU jobs it defaults to 1.
    cpus_per_task : int
        CPUs of each task (data loader workers, threads).
    memory : str, optional
        Memory per node (``--mem``, e.g. ``"64G"``).
    time : str
        Time limit, ``[D-]HH:MM:SS``.
    partition, account : str, optional
        SLURM partition (PBS queue) and account.
    job_name : str
        The job's name (never ``bash`` or ``interactive``: Lightning ignores SLURM for those).
    workdir : Path
        Shared storage of the run: ``checkpoints/``, ``logs/``, and Lightning's root directory.
    ckpt_every_n_steps : int
        ``last.ckpt`` is written every so many training steps: what a requeued job resumes
        from (Lightning allows no epoch-end trigger beside it; the config's own checkpoint
        callbacks keep the final and best models).
    signal_s : int
        Seconds before the time limit at which SLURM sends SIGUSR1.
    strategy : str
        ``trainer.strategy`` (``ddp``: NCCL on GPUs, gloo on CPUs).
    extra_args : tuple of str
        More LightningCLI arguments (``--trainer.max_epochs``, ``--data.store``...).
    extra_directives : tuple of str
        More ``#SBATCH`` / ``#PBS`` directives, without the prefix (``"--exclusive"``).
    prologue : tuple of str
        Shell lines run before the training (``module load ...``, ``source .venv/bin/activate``).
    env : mapping of str to str
        Environment variables exported to every task.
    python : str
        Python executable on the nodes (default: the current one).
    scheduler : {"slurm", "pbs"}
        Which script :func:`submit` renders and submits.
    """

    config: Path
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int | None = None
    cpus_per_task: int = 1
    memory: str | None = None
    time: str = "01:00:00"
    partition: str | None = None
    account: str | None = None
    job_name: str = "cubestream-train"
    workdir: Path = Path("train")
    ckpt_every_n_steps: int = 50
    signal_s: int = 90
    strategy: str = "ddp"
    extra_args: tuple[str, ...] = ()
    extra_directives: tuple[str, ...] = ()
    prologue: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    python: str = sys.executable
    scheduler: Literal["slurm", "pbs"] = "slurm"

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", Path(self.config))
        object.__setattr__(self, "workdir", Path(self.workdir))
        for name in ("nodes", "cpus_per_task", "ckpt_every_n_steps", "signal_s"):
            if int(getattr(self, name)) < 1:
                self._fail(name, f"is {getattr(self, name)}; it must be at least 1")
        if self.gpus_per_node < 0:
            self._fail("gpus_per_node", f"is {self.gpus_per_node}; use 0 for a CPU job")
        if self.tasks_per_node is not None and self.tasks_per_node < 1:
            self._fail("tasks_per_node", f"is {self.tasks_per_node}; it must be at least 1")
        if self.gpus_per_node and self.tasks_per_node not in (None, self.gpus_per_node):
            self._fail(
                "tasks_per_node",
                f"is {self.tasks_per_node} with {self.gpus_per_node} GPUs per node; a GPU job "
                "runs one task per GPU: leave it out or make it equal",
            )
        if not _TIME.match(self.time):
            self._fail("time", f"is {self.time!r}; write it as [D-]HH:MM:SS")
        if self.scheduler == "pbs" and "-" in self.time:
            self._fail("time", f"is {self.time!r}; PBS takes HH:MM:SS (e.g. '48:00:00')")
        if self.job_name in ("bash", "interactive") or not re.match(r"^[\w.-]+$", self.job_name):
            self._fail("job_name", f"is {self.job_name!r}; use letters, digits, '-', '_', '.'")
        if self.scheduler not in ("slurm", "pbs"):
            self._fail("scheduler", f"is {self.scheduler!r}; use 'slurm' or 'pbs'")
        bad = [k for k in self.env if not _ENV_NAME.match(k)]
        if bad:
            self._fail("env", f"has names that are not shell variables: {bad}")

    def _fail(self, name: str, what: str) -> None:
        raise TrainJobError(f"training job {self.job_name!r}: field {name!r} {what}")

    @property
    def tasks(self) -> int:
        """Tasks per node: one per GPU, or ``tasks_per_node`` (default 1) for a CPU job."""
        return self.gpus_per_node or self.tasks_per_node or 1

    @property
    def ckpt_dir(self) -> Path:
        """Where the periodic ``last.ckpt`` lies (shared storage)."""
        return self.workdir.absolute() / "checkpoints"

    @property
    def log_dir(self) -> Path:
        """Where the job's output goes."""
        return self.workdir.absolute() / "logs"

    def trainer_args(self) -> list[str]:
        """The ``trainers.cli`` arguments: fit, the config, the job's shape, the checkpoints."""
        checkpoint = "pytorch_lightning.callbacks.ModelCheckpoint"
        return [
            "fit",
            "--config", str(self.config.absolute()),
            "--trainer.num_nodes", str(self.nodes),
            "--trainer.devices", str(self.tasks),
            "--trainer.accelerator", "gpu" if self.gpus_per_node else "cpu",
            "--trainer.strategy", self.strategy,
            "--trainer.default_root_dir", str(self.workdir.absolute()),
            f"--trainer.callbacks+={checkpoint}",
            f"--trainer.callbacks.dirpath={self.ckpt_dir}",
            "--trainer.callbacks.save_last=true",
            "--trainer.callbacks.save_top_k=0",
            f"--trainer.callbacks.every_n_train_steps={self.ckpt_every_n_steps}",
            *self.extra_args,
        ]  # fmt: skip


def _common(job: TrainJob, prefix: str) -> dict[str, str]:
    exports = [f"export {k}={shlex.quote(str(v))}" for k, v in job.env.items()]
    return {
        "job_name": job.job_name,
        "nodes": str(job.nodes),
        "tasks_per_node": str(job.tasks),
        "cpus_per_task": str(job.cpus_per_task),
        "time": job.time,
        "log_dir": str(job.log_dir),
        "directives": "\n".join(f"{prefix} {d}" for d in job.extra_directives),
        "prologue": "\n".join(job.prologue),
        "env": "\n".join(exports),
        "root_dir": shlex.quote(str(job.workdir.absolute())),
        "ckpt_dir": shlex.quote(str(job.ckpt_dir)),
        "submit_dir": shlex.quote(str(Path.cwd())),
    }


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
    values = _common(job, "#SBATCH")
    values["directives"] = "\n".join(f"#SBATCH {d}" for d in directives)
    values["signal"] = f"SIGUSR1@{job.signal_s}"
    values["master_port"] = (
        f"export MASTER_PORT={job.env['MASTER_PORT']}"
        if "MASTER_PORT" in job.env
        else "# MASTER_PORT: Lightning's default, 15000 + the last 4 digits of the job id"
    )
    values["command"] = _lines([job.python, "-m", "trainers.cli", *job.trainer_args()])
    return _render("train.sbatch", values)


def _lines(command: list[str]) -> str:
    """A shell command, one option (with its value) per continued line."""
    lines: list[list[str]] = [[]]
    for arg in command:
        if arg.startswith("--") and lines[-1]:
            lines.append([])
        lines[-1].append(shlex.quote(arg))
    return " \\\n    ".join(" ".join(line) for line in lines)


def render_pbs(job: TrainJob) -> str:
    """The PBS Pro / OpenPBS script of ``job``: torchrun on every node, started by pbs_tmrsh."""
    values = _common(job, "#PBS")
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
    return _render("train.pbs", values)


def _render(name: str, values: Mapping[str, str]) -> str:
    text = _Script((TEMPLATES / name).read_text()).substitute(values)
    return re.sub(r"\n{3,}", "\n\n", text)


def submit(job: TrainJob, *, dry_run: bool = False) -> str:
    """Submit ``job`` (``sbatch`` or ``qsub``) and return its job id; with ``dry_run``, the script.

    The script is kept as ``WORKDIR/logs/<job_name>.<sbatch|pbs>``.

    Raises
    ------
    TrainJobError
        The config file does not exist.
    SchedulerUnavailableError
        The scheduler cannot be reached.
    SubmitError
        The scheduler rejects the script; the message quotes it.
    """
    script = render_sbatch(job) if job.scheduler == "slurm" else render_pbs(job)
    if dry_run:
        return script
    if not job.config.is_file():
        raise TrainJobError(f"training job {job.job_name!r}: no config file at {job.config}")
    job.log_dir.mkdir(parents=True, exist_ok=True)  # SLURM does not create it: output is lost
    job.ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = job.log_dir / f"{job.job_name}.{'sbatch' if job.scheduler == 'slurm' else 'pbs'}"
    path.write_text(script)
    command = ["sbatch", "--parsable", str(path)] if job.scheduler == "slurm" else ["qsub"]
    if job.scheduler == "pbs":
        command.append(str(path))
    try:
        out = _scheduler.run(command)
    except subprocess.CalledProcessError as exc:
        message = (exc.stderr or exc.stdout or "").strip()
        raise SubmitError(f"{command[0]} rejected {path}: {message}") from None
    return out.strip().split(";")[0]


def status(job_id: str) -> str:
    """The SLURM state of a job (``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``...).

    Asks ``scontrol show job`` (which keeps finished jobs for ``MinJobAge`` seconds), then
    ``sacct`` where accounting is on.

    Raises
    ------
    JobNotFoundError
        Neither knows the job.
    """
    fields = _scheduler.scontrol_job(job_id)
    if fields and "JobState" in fields:
        return fields["JobState"]
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


def cancel(job_id: str) -> None:
    """Cancel a job (``scancel``)."""
    status(job_id)  # a clear error for an unknown job; scancel alone is silent about some
    try:
        _scheduler.run(["scancel", str(job_id)])
    except subprocess.CalledProcessError as exc:
        raise JobNotFoundError(f"scancel {job_id}: {(exc.stderr or '').strip()}") from None


def log_path(job_id: str) -> Path:
    """The file the job writes its output to (``WORKDIR/logs/<job_name>-<job_id>.out``)."""
    fields = _scheduler.scontrol_job(job_id)
    if not fields or not fields.get("StdOut"):
        raise JobNotFoundError(f"SLURM knows no job {job_id}, nor where its log is")
    return Path(fields["StdOut"])


def wait(job_id: str, *, poll_s: float = 2.0, timeout_s: float | None = None) -> str:
    """Wait until a job reaches a final state and return it (``COMPLETED``).

    A requeued job is PENDING again, so waiting goes on through requeues.

    Raises
    ------
    ClusterJobError
        The job ended in a failed state; the message has the state, the reason and the log tail.
    ClusterTimeoutError
        ``timeout_s`` passed first.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        fields = _scheduler.scontrol_job(job_id) or {}
        state = fields.get("JobState") or status(job_id)
        if state == "COMPLETED":
            return state
        if state in FAILED_STATES:
            log = fields.get("StdOut")
            raise ClusterJobError(
                f"job {job_id} ended {state} (reason {fields.get('Reason', '?')}, exit code "
                f"{fields.get('ExitCode', '?')}); last lines of {log}:\n{_scheduler.tail(log)}"
            )
        if deadline is not None and time.monotonic() > deadline:
            raise ClusterTimeoutError(
                f"job {job_id} is still {state} after {timeout_s:.0f} s "
                f"(reason {fields.get('Reason', '?')}); see `cubestream cluster logs {job_id}`"
            )
        time.sleep(poll_s)
