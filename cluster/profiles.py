"""Named cluster profiles: the size and the scheduler settings of a Dask cluster, from YAML.

A profile is a flat YAML mapping in the dask-jobqueue style (keys with ``-`` or ``_``)::

    name: slurm-cpu
    kind: slurm              # local | slurm | pbs
    jobs: 4                  # batch jobs to scale to (local: groups of worker processes)
    cores: 8                 # cores per job
    memory: 32GB             # memory per job
    processes: 2             # Dask worker processes per job (each gets cores/processes threads)
    walltime: "02:00:00"
    queue: cpu
    account: my-project
    job-extra-directives: ["--exclusive"]
    job-script-prologue: ["source /path/to/.venv/bin/activate"]
    worker-extra-args: []
    lifetime: 110m           # workers leave before the wall time (dask-worker --lifetime)
    lifetime-stagger: 5m

:func:`load_profile` reads a YAML file, or a profile shipped in ``cluster/profiles/<name>.yaml``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, get_args

import yaml

from cluster.errors import ClusterProfileError, ClusterProfileNotFoundError
from cluster.schedulers import SCHEDULERS

__all__ = ["PROFILES_DIR", "ClusterProfile", "Kind", "load_profile", "shipped_profiles"]

Kind = Literal["local", "slurm", "pbs"]
PROFILES_DIR = Path(__file__).with_name("profiles")
"""Where the shipped profiles lie (``local``, ``slurm-cpu``, ``pbs-cpu``, ``local-slurm``...)."""

_WALLTIME = re.compile(r"^(?:(\d+)-)?(\d{1,3}):([0-5]\d):([0-5]\d)$")


@dataclass(frozen=True, kw_only=True)
class ClusterProfile:
    """The size and the scheduler settings of a Dask cluster.

    Attributes
    ----------
    name : str
        The profile's name (the file's stem by default).
    kind : {"local", "slurm", "pbs"}
        A LocalCluster, a dask-jobqueue SLURMCluster or PBSCluster.
    jobs : int
        Batch jobs the cluster scales to; for ``local``, groups of ``processes`` workers.
    cores, processes : int
        Cores and Dask worker processes per job; each worker has ``cores // processes`` threads.
    memory : str
        Memory per job (``"16GB"``), shared evenly by its worker processes.
    walltime : str
        Time limit of each job, ``[D-]HH:MM:SS`` (PBS: ``HH:MM:SS``).
    queue, account : str, optional
        Partition (SLURM) or queue (PBS), and the account charged.
    job_extra_directives : tuple of str
        Extra ``#SBATCH`` / ``#PBS`` directives, without the prefix (``"--exclusive"``).
    job_script_prologue : tuple of str
        Shell lines run before the worker starts (modules, a virtual environment).
    worker_extra_args : tuple of str
        Extra ``dask worker`` arguments.
    lifetime, lifetime_stagger : str, optional
        Worker lifetime (``"55m"``) and its random stagger: workers leave gracefully before the
        wall time and the cluster submits fresh jobs in their place.
    interface : str, optional
        Network interface of the scheduler and workers (``"ib0"``; ``"lo"`` for the local SLURM).
    local_directory, log_directory : str, optional
        Workers' scratch space and the directory of the job logs.
    python : str, optional
        Python executable of the workers (default: the current one).
    resource_spec : str, optional
        PBS ``-l`` resource string (default: built from cores and memory).
    wait_timeout_s : float
        How long to wait for the first worker before failing with the jobs' state.
    """

    name: str
    kind: Kind
    jobs: int = 1
    cores: int = 1
    memory: str = "4GB"
    processes: int = 1
    walltime: str = "01:00:00"
    queue: str | None = None
    account: str | None = None
    job_extra_directives: tuple[str, ...] = ()
    job_script_prologue: tuple[str, ...] = ()
    worker_extra_args: tuple[str, ...] = ()
    lifetime: str | None = None
    lifetime_stagger: str | None = None
    interface: str | None = None
    local_directory: str | None = None
    log_directory: str | None = None
    python: str | None = None
    resource_spec: str | None = None
    wait_timeout_s: float = 300.0

    def __post_init__(self) -> None:
        if not self.name:
            self._fail("name", "must be a non-empty string")
        if self.kind not in get_args(Kind):
            self._fail("kind", f"is {self.kind!r}; use one of {list(get_args(Kind))}")
        for name in ("jobs", "cores", "processes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                self._fail(name, f"is {value!r}; it must be a whole number of at least 1")
        if self.processes > self.cores:
            self._fail("processes", f"({self.processes}) exceeds cores ({self.cores})")
        self._check_memory()
        self._check_walltime()
        for name in ("job_extra_directives", "job_script_prologue", "worker_extra_args"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
                self._fail(name, f"is {value!r}; it must be a list of strings")
        self._check_lifetime()
        if self.wait_timeout_s <= 0:
            self._fail("wait_timeout_s", f"is {self.wait_timeout_s}; it must be positive")

    def _fail(self, name: str, what: str) -> None:
        raise ClusterProfileError(f"cluster profile {self.name!r}: field {name!r} {what}")

    def _check_memory(self) -> None:
        from dask.utils import parse_bytes

        try:
            parse_bytes(self.memory)
        except (ValueError, TypeError):
            self._fail("memory", f"is {self.memory!r}; write a size such as '16GB' or '512MiB'")

    def _check_walltime(self) -> None:
        match = _WALLTIME.match(str(self.walltime))
        if not match:
            self._fail("walltime", f"is {self.walltime!r}; write it as [D-]HH:MM:SS")
        elif self.kind in SCHEDULERS:
            problem = SCHEDULERS[self.kind].check_walltime(str(self.walltime))
            if problem:
                self._fail("walltime", problem)

    def _check_lifetime(self) -> None:
        from dask.utils import parse_timedelta

        seconds = {}
        for name in ("lifetime", "lifetime_stagger"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                seconds[name] = float(parse_timedelta(value, default="s"))
            except (ValueError, TypeError, KeyError):
                self._fail(name, f"is {value!r}; write a duration such as '55m' or '3600s'")
        if "lifetime_stagger" in seconds and "lifetime" not in seconds:
            self._fail("lifetime_stagger", "is set without 'lifetime'")
        if "lifetime" in seconds and self.kind != "local":
            margin = seconds["lifetime"] + seconds.get("lifetime_stagger", 0.0)
            if margin >= self.walltime_seconds:
                self._fail(
                    "lifetime",
                    f"plus its stagger ({margin:.0f} s) is not below the walltime "
                    f"({self.walltime}); workers must leave before the scheduler kills them",
                )

    @property
    def walltime_seconds(self) -> int:
        """The wall time in seconds."""
        match = _WALLTIME.match(self.walltime)
        assert match is not None  # checked in __post_init__
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return ((days * 24 + hours) * 60 + minutes) * 60 + seconds

    @property
    def workers(self) -> int:
        """Dask worker processes when scaled to :attr:`jobs`."""
        return self.jobs * self.processes

    @property
    def threads_per_worker(self) -> int:
        """Threads of each worker process."""
        return max(1, self.cores // self.processes)

    @property
    def memory_per_worker(self) -> int:
        """Memory limit of each worker process, in bytes."""
        from dask.utils import parse_bytes

        return int(parse_bytes(self.memory)) // self.processes

    def worker_args(self) -> list[str]:
        """The ``dask worker`` arguments: the extra ones, then the lifetime options."""
        args = list(self.worker_extra_args)
        if self.lifetime:
            args += ["--lifetime", self.lifetime]
            if self.lifetime_stagger:
                args += ["--lifetime-stagger", self.lifetime_stagger]
        return args

    def jobqueue_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``dask_jobqueue.SLURMCluster`` or ``PBSCluster``."""
        if self.kind == "local":
            raise ClusterProfileError(
                f"cluster profile {self.name!r} is local: it has no dask-jobqueue settings"
            )
        kwargs: dict[str, Any] = {
            "cores": self.cores,
            "memory": self.memory,
            "processes": self.processes,
            "walltime": self.walltime,
            "queue": self.queue,
            "account": self.account,
            "job_extra_directives": list(self.job_extra_directives),
            "job_script_prologue": list(self.job_script_prologue),
            "worker_extra_args": self.worker_args(),
            "interface": self.interface,
            "local_directory": self.local_directory,
            "log_directory": self.log_directory,
            "python": self.python,
            "job_name": f"dask-{self.name}",
        }
        if self.kind == "pbs" and self.resource_spec:
            kwargs["resource_spec"] = self.resource_spec
        return {k: v for k, v in kwargs.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> ClusterProfile:
        """Build a profile from a mapping (keys with ``-`` or ``_``); ``name`` is the default."""
        label = data.get("name", name) or "?"
        values = {str(k).replace("-", "_"): v for k, v in data.items()}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ClusterProfileError(
                f"cluster profile {label!r}: unknown fields {unknown}; the fields are "
                f"{sorted(known)}"
            )
        if name is not None:
            values.setdefault("name", name)
        for required in ("name", "kind"):
            if values.get(required) is None:
                raise ClusterProfileError(
                    f"cluster profile {label!r}: field {required!r} is missing"
                )
        for key in ("job_extra_directives", "job_script_prologue", "worker_extra_args"):
            if key in values:
                values[key] = _strings(label, key, values[key])
        for key in ("memory", "walltime", "lifetime", "lifetime_stagger"):
            if isinstance(values.get(key), int | float) and not isinstance(values[key], bool):
                values[key] = str(values[key])
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The profile as a YAML-ready mapping."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


def _strings(label: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ClusterProfileError(
            f"cluster profile {label!r}: field {key!r} is {value!r}; it must be a list of strings"
        )
    return tuple(str(v) for v in value)


def shipped_profiles() -> list[str]:
    """Names of the profiles shipped in :data:`PROFILES_DIR`."""
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def load_profile(spec: str | Path) -> ClusterProfile:
    """Load a cluster profile from a YAML file, or by the name of a shipped profile.

    Parameters
    ----------
    spec : str or Path
        A path to a YAML file, or a name of :func:`shipped_profiles` (``"local-slurm"``).

    Raises
    ------
    ClusterProfileNotFoundError
        Neither a file nor a shipped profile.
    ClusterProfileError
        The YAML is not a mapping, or a field is missing, unknown or wrong.
    """
    path = Path(spec)
    if not path.is_file():
        if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
            raise ClusterProfileNotFoundError(f"cluster profile file not found: {path}")
        shipped = PROFILES_DIR / f"{spec}.yaml"
        if not shipped.is_file():
            raise ClusterProfileNotFoundError(
                f"no cluster profile named {str(spec)!r}: give a YAML file or one of "
                f"{shipped_profiles()}"
            )
        path = shipped
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ClusterProfileError(f"cluster profile {path} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ClusterProfileError(
            f"cluster profile {path} must be a YAML mapping of fields, not {type(data).__name__}"
        )
    return ClusterProfile.from_dict(data, name=path.stem)
