"""Training on a cluster: render a batch script for ``cubestream train fit``, submit and follow it.

A :class:`TrainJob` names the config, the shape (nodes x tasks per node, one task per GPU) and the
shared work directory. :func:`render_sbatch` writes a SLURM script in which ``srun`` starts one
task per device and Lightning reads the SLURM environment; it asks for SIGUSR1 before the time
limit (Lightning saves an HPC checkpoint and requeues the job), keeps a ``last.ckpt`` every few
steps in ``WORKDIR/checkpoints`` and resumes from the newest checkpoint when the job comes back.
:func:`render_pbs` writes the same job for PBS (torchrun on every node). :func:`submit`,
:func:`status`, :func:`wait`, :func:`cancel` and :func:`log_path` talk to the job's scheduler
(:mod:`cluster.schedulers`: SLURM by default, PBS).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cluster import schedulers
from cluster.errors import TrainJobError
from cluster.schedulers import SCHEDULERS, get_scheduler
from cluster.schedulers.pbs import render_pbs
from cluster.schedulers.slurm import FAILED_STATES, FINAL_STATES, render_sbatch

__all__ = [
    "FAILED_STATES",
    "FINAL_STATES",
    "TrainJob",
    "cancel",
    "log_path",
    "render_pbs",
    "render_sbatch",
    "script_path",
    "status",
    "submit",
    "wait",
]

_TIME = re.compile(r"^(?:\d+-)?\d{1,3}:[0-5]\d:[0-5]\d$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


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
    scheduler : str
        The scheduler (:data:`cluster.schedulers.SCHEDULERS`: ``slurm``, ``pbs``) whose script
        :func:`submit` renders and submits.
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
    scheduler: str = "slurm"

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
        if self.job_name in ("bash", "interactive") or not re.match(r"^[\w.-]+$", self.job_name):
            self._fail("job_name", f"is {self.job_name!r}; use letters, digits, '-', '_', '.'")
        if self.scheduler not in SCHEDULERS:
            known = " or ".join(repr(name) for name in SCHEDULERS)
            self._fail("scheduler", f"is {self.scheduler!r}; use {known}")
        problem = SCHEDULERS[self.scheduler].check_walltime(self.time)
        if problem:
            self._fail("time", problem)
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
    scheduler = get_scheduler(job.scheduler)
    script = scheduler.render(job)
    if dry_run:
        return script
    if not job.config.is_file():
        raise TrainJobError(f"training job {job.job_name!r}: no config file at {job.config}")
    job.log_dir.mkdir(parents=True, exist_ok=True)  # SLURM does not create it: output is lost
    job.ckpt_dir.mkdir(parents=True, exist_ok=True)
    path = script_path(job)
    path.write_text(script)
    return scheduler.submit(path)


def script_path(job: TrainJob) -> Path:
    """Where :func:`submit` keeps the script of ``job``: ``WORKDIR/logs/<job_name>.<suffix>``."""
    return job.log_dir / f"{job.job_name}.{get_scheduler(job.scheduler).script_suffix}"


def status(job_id: str, *, scheduler: str = "slurm") -> str:
    """The state of a job (SLURM: ``PENDING``, ``RUNNING``, ``COMPLETED``, ``FAILED``...).

    SLURM asks ``scontrol show job`` (which keeps finished jobs for ``MinJobAge`` seconds), then
    ``sacct`` where accounting is on; PBS asks ``qstat -f -x``.

    Raises
    ------
    JobNotFoundError
        The scheduler does not know the job.
    """
    return get_scheduler(scheduler).status(job_id).state


def cancel(job_id: str, *, scheduler: str = "slurm") -> None:
    """Cancel a job (``scancel``, ``qdel``)."""
    get_scheduler(scheduler).cancel(job_id)


def log_path(job_id: str, *, scheduler: str = "slurm") -> Path:
    """The file the job writes its output to (``WORKDIR/logs/<job_name>-<job_id>.out``)."""
    return get_scheduler(scheduler).log_path(job_id)


def wait(
    job_id: str,
    *,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
    scheduler: str = "slurm",
) -> str:
    """Wait until a job reaches a final state and return it (``COMPLETED``).

    A requeued job is pending again, so waiting goes on through requeues.

    Raises
    ------
    ClusterJobError
        The job ended in a failed state; the message has the state, the reason and the log tail.
    ClusterTimeoutError
        ``timeout_s`` passed first.
    """
    return schedulers.wait(get_scheduler(scheduler), job_id, poll_s=poll_s, timeout_s=timeout_s)
