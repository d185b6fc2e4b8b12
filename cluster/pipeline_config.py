"""The pipeline YAML of ``cubestream run``: one frozen spec per stage, validated on load.

A pipeline file names a ``workdir`` and one section per stage; each section's keys mirror the
flags of that stage's command (``windows-per-cube`` is ``cubestream l2 --windows-per-cube``;
``-`` or ``_`` both work). A key left out takes the command's own default. See
``cluster/recipes/replica.yaml`` (every stage on a local replica) and
``cluster/recipes/africa.yaml`` (the full-size round on SLURM)::

    name: africa-round-1
    workdir: /scratch/africa-r1       # locations.parquet, l1.zarr, l2.zarr, train/ go here
    replica: {preset: small}          # optional: create and serve a local replica world
    sample: {target: 24000, ...}
    l1: {cluster: slurm-cpu, stac: https://..., start: 2017-01-01, end: 2022-12-31, ...}
    l2: {cluster: slurm-cpu, windows-per-cube: 2, ...}
    train: {config: trainers/configs/rnn.yaml, cluster: gpu.yaml, nodes: 2, ...}
    test: {checkpoint: last.ckpt}     # optional

Relative paths are taken from the current directory. :func:`load_pipeline` reports every
problem with the file and the key path (``l2.windows-per-cube``) and what to write instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import (
    Any,
    ClassVar,
    Literal,
    NoReturn,
    get_args,
    get_type_hints,
)

import yaml

from cluster.errors import PipelineConfigError, PipelineConfigNotFoundError
from cluster.pipeline_train import train_layout
from cubestream.execution import ClientOptions
from cubestream.l1.config import L1Config
from cubestream.l2.config import L2Config
from cubestream.options import Flag, Param, check_section, params, unknown
from cubestream.options import key as flag_key
from cubestream.sample.options import SampleOptions
from cubestream.storage import StorageFlags

__all__ = [
    "STAGES",
    "COMMAND_CONFIGS",
    "SET_BY_PIPELINE",
    "CommandOptions",
    "command_params",
    "PipelineSpec",
    "ReplicaOptions",
    "SUPPLIED_BY_REPLICA",
    "required_keys",
    "Stage",
    "StageOptions",
    "ModelTestOptions",
    "TrainOptions",
    "load_pipeline",
    "option_values",
]

Stage = Literal["replica", "sample", "l1", "l2", "train", "test"]
STAGES: tuple[Stage, ...] = get_args(Stage)
"""Every stage, in the order they run."""
CommandStage = Literal["sample", "l1", "l2"]
"""The stages run by a ``cubestream`` command with options from the pipeline YAML."""

LOCAL = "local"
"""The default cluster profile: the stage's own LocalCluster on this machine."""


@dataclass(frozen=True, kw_only=True)
class ReplicaOptions:
    """``cubestream replica create DIR --preset P``, then serve it while ``l1`` runs.

    With a replica, the sample's strata and area, and the L1 sources and period, default to the
    replica's own. ``serve: false`` reads the replica as plain files (as on an HPC file system)
    instead of over its loopback S3 and STAC APIs.
    """

    EXECUTION: ClassVar[frozenset[str]] = frozenset({"serve"})
    dir: str | None = None
    preset: str = "small"
    seed: int | None = None
    serve: bool = True


@dataclass(frozen=True)
class CommandOptions:
    """The options of a stage command (``sample``, ``l1``, ``l2``) that a pipeline YAML gives.

    The keys a section admits are derived from the stage's config dataclasses
    (:data:`COMMAND_CONFIGS`: :class:`~cubestream.l1.config.L1Config`, the storage flags and
    :class:`~cubestream.execution.ClientOptions`), less the inputs and outputs the pipeline sets
    itself (:data:`SET_BY_PIPELINE`); a key left out takes the command's own default.

    Attributes
    ----------
    stage : str
        ``sample``, ``l1`` or ``l2``.
    values : mapping of str to object
        The options given, by flag name with underscores (``windows_per_cube``), checked.
    """

    stage: CommandStage
    values: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """The value given for the option ``name``, or None."""
        return self.values.get(name)

    @property
    def cluster(self) -> str:
        """The cluster profile the stage runs on (``local``: its own LocalCluster)."""
        return str(self.values.get("cluster") or LOCAL)


COMMAND_CONFIGS: dict[CommandStage, tuple[type[Any], ...]] = {
    "sample": (SampleOptions,),
    "l1": (L1Config, StorageFlags, ClientOptions),
    "l2": (L2Config, StorageFlags, ClientOptions),
}
"""The config dataclasses whose options are the flags of each stage command."""
SET_BY_PIPELINE: dict[str, frozenset[str]] = {
    "sample": frozenset({"out", "replica"}),
    "l1": frozenset({"locations", "out"}),
    "l2": frozenset({"l1", "locations", "out"}),
}
"""The options the pipeline sets from its workdir layout: no keys of the YAML."""
SUPPLIED_BY_REPLICA: dict[str, frozenset[str]] = {
    "sample": frozenset(),
    "l1": frozenset({"stac", "start", "end"}),
    "l2": frozenset(),
}
"""Options a command needs that a replica section supplies (checked after loading otherwise)."""


def required_keys(stage: CommandStage) -> frozenset[str]:
    """The keys a stage command's YAML section must give (nothing else supplies them)."""
    return frozenset(
        name
        for name, p in command_params(stage).items()
        if p.required and name not in SUPPLIED_BY_REPLICA[stage]
    )


def command_params(stage: CommandStage) -> dict[str, Param]:
    """The keys of a stage command's YAML section, with their option declarations."""
    return {
        p.name: p
        for cls in COMMAND_CONFIGS[stage]
        for p in params(cls)
        if p.flag.pipeline and p.name not in SET_BY_PIPELINE[stage]
    }


@dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """``cubestream train fit`` with a trainer YAML, its outputs moved under the workdir.

    ``args`` are further LightningCLI flags (``["--trainer.max_epochs", "2"]``). On a ``slurm``
    or ``pbs`` profile the fit is submitted as a batch job (:class:`cluster.launch.TrainJob`) of
    ``nodes`` nodes with ``gpus_per_node`` GPUs (one task each; ``tasks_per_node`` CPU tasks
    when 0) and ``cpus_per_task`` CPUs per task, for ``time`` (``[D-]HH:MM:SS``); the profile
    gives the partition, account, extra directives and prologue. How a stage runs (cluster,
    nodes, GPUs, time) is not part of its fingerprint: changing it does not retrain.
    """

    EXECUTION: ClassVar[frozenset[str]] = frozenset(
        {"cluster", "nodes", "gpus_per_node", "tasks_per_node", "cpus_per_task", "time"}
    )
    config: str
    name: str | None = None
    args: tuple[str, ...] = ()
    cluster: str = LOCAL
    nodes: int = 1
    gpus_per_node: int = 0
    tasks_per_node: int | None = None
    cpus_per_task: int = 1
    time: str = "04:00:00"


@dataclass(frozen=True, kw_only=True)
class ModelTestOptions:
    """``cubestream train test`` of the trained model from ``checkpoint`` (a file name).

    The checkpoint is looked up in the checkpoint directory of the trainer config
    (``last.ckpt``, or ``best.ckpt`` when the config saves one).
    """

    EXECUTION: ClassVar[frozenset[str]] = frozenset()
    checkpoint: str = "last.ckpt"
    args: tuple[str, ...] = ()


StageOptions = ReplicaOptions | CommandOptions | TrainOptions | ModelTestOptions
_SECTIONS: dict[Stage, type[Any]] = {
    "replica": ReplicaOptions,
    "train": TrainOptions,
    "test": ModelTestOptions,
}
_OPTIONAL: frozenset[Stage] = frozenset({"replica", "test"})
_RESERVED_TRAIN_ARGS = ("--config", "--data.store", "--trainer.default_root_dir", "--ckpt_path")


@dataclass(frozen=True, kw_only=True)
class PipelineSpec:
    """A whole pipeline: where its outputs go and every stage's options.

    Attributes
    ----------
    name : str
        A label of the run (printed, recorded in the state file).
    workdir : Path
        Absolute directory of every output and of ``pipeline-state.json``.
    source : Path
        The YAML file it was read from.
    replica, test : options, optional
        The optional stages.
    sample, l1, l2, train : options
        The stages every pipeline has.
    """

    name: str
    workdir: Path
    source: Path
    sample: CommandOptions
    l1: CommandOptions
    l2: CommandOptions
    train: TrainOptions
    replica: ReplicaOptions | None = None
    test: ModelTestOptions | None = None

    @property
    def stages(self) -> tuple[Stage, ...]:
        """The stages of this pipeline, in the order they run."""
        return tuple(s for s in STAGES if getattr(self, s) is not None)

    def options(self, stage: Stage) -> Any:
        """The options of ``stage``."""
        value = getattr(self, stage)
        if value is None:
            raise PipelineConfigError(f"{self.source}: the pipeline has no {stage!r} stage")
        return value

    @property
    def replica_dir(self) -> Path | None:
        """The replica directory (``<workdir>/replica`` unless ``replica.dir`` says)."""
        if self.replica is None:
            return None
        return _absolute(self.replica.dir) if self.replica.dir else self.workdir / "replica"

    @property
    def train_name(self) -> str:
        """The training run's name: ``train.name``, or the trainer config's file stem."""
        return self.train.name or Path(self.train.config).stem


def option_values(options: Any, *, outputs_only: bool = False) -> dict[str, Any]:
    """The options set to other than their default, keyed as in the YAML (``windows-per-cube``).

    Parameters
    ----------
    options : stage options
        One of the ``*Options`` classes, or the :class:`CommandOptions` of ``l1`` or ``l2``.
    outputs_only : bool
        Leave out the options that change only how a stage runs (its cluster, workers, memory),
        not what it writes: those are not part of the stage's fingerprint.
    """
    if isinstance(options, CommandOptions):
        declared = command_params(options.stage)
        return {
            flag_key(name): list(value) if isinstance(value, tuple) else value
            for name, value in options.values.items()
            if value is not None
            and value is not False
            and not (name == "cluster" and value == LOCAL)
            and not (outputs_only and declared[name].flag.execution)
        }
    out: dict[str, Any] = {}
    for f in fields(options):
        value = getattr(options, f.name)
        default = f.default if f.default is not MISSING else MISSING
        if outputs_only and f.name in options.EXECUTION:
            continue
        if value != default:
            out[flag_key(f.name)] = list(value) if isinstance(value, tuple) else value
    return out


def load_pipeline(path: str | Path, *, workdir: str | Path | None = None) -> PipelineSpec:
    """Read and check a pipeline YAML.

    Parameters
    ----------
    path : str or Path
        The pipeline file.
    workdir : str or Path, optional
        Put the outputs here instead of the file's ``workdir``.

    Raises
    ------
    PipelineConfigNotFoundError
        The file, or the trainer config it names, does not exist.
    PipelineConfigError
        A key is missing, unknown or of the wrong type, or stages disagree; the message names
        the file and the key.
    """
    source = _absolute(path)
    if not source.is_file():
        raise PipelineConfigNotFoundError(f"pipeline file not found: {source}")
    try:
        data = yaml.safe_load(source.read_text())
    except yaml.YAMLError as exc:
        raise PipelineConfigError(f"{source} is not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise PipelineConfigError(
            f"{source}: a pipeline file is a mapping with workdir, sample, l1, l2 and train; "
            f"it holds {type(data).__name__}"
        )
    spec = _spec(source, data, workdir)
    _check_sources(spec)
    _check_train(spec)
    _check_profiles(spec)
    return spec


def _spec(source: Path, data: Mapping[str, Any], workdir: str | Path | None) -> PipelineSpec:
    where = _Where(source)
    top = {str(k).replace("-", "_"): v for k, v in data.items()}
    known = {"name", "workdir", *STAGES}
    unknown(where.fail, "", top, known)
    if workdir is None:
        workdir = top.get("workdir")
        if workdir is None:
            where.fail("workdir", "is missing: the directory every output goes to")
        if not isinstance(workdir, str):
            where.fail("workdir", f"is {workdir!r}; it must be a path")
    sections: dict[str, Any] = {}
    for stage in STAGES:
        raw = top.get(stage)
        if raw is None:
            if stage not in _OPTIONAL:
                where.fail(stage, f"is missing: every pipeline has the stages {_REQUIRED}")
            continue
        if stage in COMMAND_CONFIGS:
            values = check_section(
                where.fail, stage, raw, command_params(stage), required=required_keys(stage)
            )
            sections[stage] = CommandOptions(stage, values)
        else:
            sections[stage] = _section(where, stage, _SECTIONS[stage], raw)
    name = top.get("name", source.stem)
    if not isinstance(name, str) or not name:
        where.fail("name", f"is {name!r}; it must be a non-empty string")
    return PipelineSpec(name=name, workdir=_absolute(workdir), source=source, **sections)


_REQUIRED = [s for s in STAGES if s not in _OPTIONAL]


class _Where:
    """Where a key lies, for the messages."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def fail(self, key: str, what: str) -> NoReturn:
        raise PipelineConfigError(f"{self.source}: {key} {what}")


def _section(where: _Where, stage: str, cls: type[Any], raw: Any) -> Any:
    """A section of plain dataclass options (``replica``, ``sample``, ``train``, ``test``)."""
    declared = {p.name: p for p in _plain_params(cls)}
    required = frozenset(p.name for p in declared.values() if p.required)
    return cls(**check_section(where.fail, stage, raw, declared, required=required))


def _plain_params(cls: type[Any]) -> list[Param]:
    hints = get_type_hints(cls)
    return [
        Param(
            name=f.name,
            path=(f.name,),
            kind=hints[f.name],
            optional=False,
            default=f.default if f.default is not MISSING else MISSING,
            flag=Flag(help=""),
        )
        for f in fields(cls)
    ]


def _absolute(path: str | Path) -> Path:
    return Path(path).expanduser().absolute()


def _check_sources(spec: PipelineSpec) -> None:
    """Without a replica, the sample's strata and the L1 sources must be given."""
    if spec.replica is not None:
        return
    where = _Where(spec.source)
    for key in ("climate", "landcover", "geomorphons"):
        if spec.sample.get(key) is None:
            where.fail(
                f"sample.{key}",
                "is missing: without a replica section the sampler needs the strata rasters "
                "climate, landcover and geomorphons (paths or URLs)",
            )
    for key in ("stac", "start", "end"):
        if spec.l1.get(key) is None:
            where.fail(
                f"l1.{key}",
                "is missing: without a replica section L1 needs stac, start and end "
                "(and its auxiliary sources smap, era5, dem, landcover, geomorphons)",
            )


def _check_train(spec: PipelineSpec) -> None:
    where = _Where(spec.source)
    config = _absolute(spec.train.config)
    if not config.is_file():
        raise PipelineConfigNotFoundError(
            f"{spec.source}: train.config names {spec.train.config}, which does not exist "
            f"(relative paths are taken from the current directory, {Path.cwd()})"
        )
    train_layout(config, spec.workdir / "train" / spec.train_name)
    train = spec.train
    for name in ("nodes", "tasks_per_node", "cpus_per_task"):
        value = getattr(train, name)
        if value is not None and value < 1:
            where.fail(f"train.{flag_key(name)}", f"is {value}; it must be at least 1")
    if train.gpus_per_node < 0:
        where.fail("train.gpus-per-node", f"is {train.gpus_per_node}; it must be 0 or more")
    for stage, args in (("train", train.args), ("test", spec.test.args if spec.test else ())):
        for arg in args:
            if arg.split("=", 1)[0] in _RESERVED_TRAIN_ARGS:
                where.fail(
                    f"{stage}.args",
                    f"holds {arg!r}; the pipeline sets {list(_RESERVED_TRAIN_ARGS)} itself "
                    "(the store and the outputs lie in the workdir)",
                )


def _check_profiles(spec: PipelineSpec) -> None:
    """Every cluster profile named must load (when :mod:`cluster.profiles` is there)."""
    try:
        from cluster.profiles import load_profile
    except ImportError:  # the profiles are another part's; without them, names are not checked
        return
    from cubestream.errors import CubestreamError

    for stage in ("l1", "l2", "train"):
        name = getattr(spec, stage).cluster
        if name == LOCAL:
            continue
        try:
            load_profile(name)
        except CubestreamError as exc:
            _Where(spec.source).fail(f"{stage}.cluster", f"is {name!r}: {exc}")
