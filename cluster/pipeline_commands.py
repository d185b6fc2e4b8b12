"""The exact command line of every stage of a pipeline, and the outputs each leaves.

Pure: from a :class:`~cluster.pipeline_config.PipelineSpec` (and, for ``l1`` on a served
replica, its :class:`Sources`) to ``[python, -m, cubestream.cli, <stage>, ...]``. Every option
set in the YAML becomes the flag of the same name; the inputs and outputs are fixed by the
workdir layout (:class:`Layout`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from cluster.pipeline_config import COMMAND_CONFIGS, LOCAL, CommandOptions, PipelineSpec
from cluster.pipeline_train import TrainLayout, train_layout
from cubestream.options import command_flags, key

__all__ = [
    "Layout",
    "Sources",
    "cubestream",
    "flags",
    "l1_command",
    "l2_command",
    "outputs",
    "replica_command",
    "sample_command",
    "served_sources",
    "test_command",
    "train_args",
    "train_command",
    "train_layout_of",
]

_REPLICA_SMAP = "smap/SPL4SMGP.007"
_REPLICA_ERA5 = "era5/era5.zarr"


@dataclass(frozen=True)
class Layout:
    """Where a pipeline's files lie in its workdir."""

    workdir: Path

    @property
    def state(self) -> Path:
        """``pipeline-state.json``."""
        return self.workdir / "pipeline-state.json"

    @property
    def locations(self) -> Path:
        """The sampler's locations table."""
        return self.workdir / "locations.parquet"

    @property
    def l1(self) -> Path:
        """The L1 store."""
        return self.workdir / "l1.zarr"

    @property
    def l2(self) -> Path:
        """The L2 store."""
        return self.workdir / "l2.zarr"

    @property
    def endpoints(self) -> Path:
        """The served replica's endpoints line."""
        return self.workdir / "endpoints.json"

    def log(self, stage: str) -> Path:
        """The whole output of a stage's command."""
        return self.workdir / "logs" / f"{stage}.log"

    def train_root(self, name: str) -> Path:
        """``trainer.default_root_dir`` of the training run ``name``."""
        return self.workdir / "train" / name


@dataclass(frozen=True)
class Sources:
    """The L1 sources and period of a replica (served, as plain files, or placeholders)."""

    stac: str
    smap: str
    era5: str
    dem: str
    landcover: str
    geomorphons: str
    start: str
    end: str
    endpoints: str | None = None


def served_sources(
    root: Path,
    period: tuple[str, str],
    *,
    stac: str | None = None,
    bucket: str | None = None,
    endpoints: Path | None = None,
) -> Sources:
    """The L1 sources of the replica in ``root``.

    Parameters
    ----------
    root : Path
        The replica directory.
    period : tuple of str
        Its first and last day (``YYYY-MM-DD``).
    stac, bucket : str, optional
        The served STAC API and S3 bucket; both None to read the replica as plain files.
    endpoints : Path, optional
        The endpoints file of the served replica (``--endpoints``).
    """
    from cubestream import layout

    prefix = f"s3://{bucket}" if bucket else str(root / layout.OBJECTS_DIR)
    return Sources(
        stac=stac or str(root / layout.ITEMS_FILE),
        smap=f"{prefix}/{_REPLICA_SMAP}",
        era5=f"{prefix}/{_REPLICA_ERA5}",
        dem=prefix,
        landcover=f"{prefix}/{layout.strata_key('landcover')}",
        geomorphons=f"{prefix}/{layout.strata_key('geomorphons')}",
        start=period[0],
        end=period[1],
        endpoints=str(endpoints) if bucket and endpoints else None,
    )


def cubestream(*args: str) -> list[str]:
    """``cubestream ARGS`` as run by this very Python."""
    return [sys.executable, "-m", "cubestream.cli", *args]


def flags(options: Any, *, skip: tuple[str, ...] = ()) -> list[str]:
    """``--name value`` for every option set (None and False are left out).

    ``options`` is the :class:`~cluster.pipeline_config.CommandOptions` of ``l1`` or ``l2`` (the
    flags derived from the stage's config dataclasses, :func:`cubestream.options.command_flags`)
    or a plain options dataclass (``sample``): lists become several values (``--tiles A B``),
    True a bare flag.
    """
    if isinstance(options, CommandOptions):
        values = {k: v for k, v in options.values.items() if k not in skip}
        return [arg for cls in COMMAND_CONFIGS[options.stage] for arg in command_flags(values, cls)]
    out: list[str] = []
    for f in fields(options):
        value = getattr(options, f.name)
        if f.name in skip or value is None or value is False:
            continue
        flag = "--" + key(f.name)
        if value is True:
            out.append(flag)
        elif isinstance(value, tuple):
            out += [flag, *(str(v) for v in value)]
        else:
            out += [flag, str(value)]
    return out


def _cluster_flag(name: str) -> list[str]:
    return [] if name == LOCAL else ["--cluster", name]


def replica_command(spec: PipelineSpec) -> list[str]:
    """``cubestream replica create DIR --preset P [--seed N]`` (a no-op when DIR holds it)."""
    options = spec.options("replica")
    command = cubestream("replica", "create", str(spec.replica_dir), "--preset", options.preset)
    return command + (["--seed", str(options.seed)] if options.seed is not None else [])


def sample_command(spec: PipelineSpec) -> list[str]:
    """``cubestream sample ... --out <workdir>/locations.parquet``."""
    options = spec.sample
    own = (options.get("climate"), options.get("landcover"), options.get("geomorphons"))
    replica = ["--replica", str(spec.replica_dir)] if spec.replica and not all(own) else []
    return cubestream(
        "sample", *replica, *flags(options), "--out", str(Layout(spec.workdir).locations)
    )


def l1_command(spec: PipelineSpec, sources: Sources | None) -> list[str]:
    """``cubestream l1 --locations ... --out <workdir>/l1.zarr ...`` on the stage's profile.

    Options of the YAML win over the replica's ``sources``.
    """
    layout = Layout(spec.workdir)
    options = spec.l1
    given: dict[str, Any] = {}
    if sources is not None:
        given = {f.name: getattr(sources, f.name) for f in fields(sources)}
    for name in list(given):
        if options.get(name) is not None:
            given.pop(name)
    extra = [x for name, v in given.items() if v is not None for x in (f"--{name}", str(v))]
    return cubestream(
        "l1",
        "--locations",
        str(layout.locations),
        "--out",
        str(layout.l1),
        *extra,
        *flags(options, skip=("cluster",)),
        *_cluster_flag(options.cluster),
    )


def l2_command(spec: PipelineSpec) -> list[str]:
    """``cubestream l2 --l1 <workdir>/l1.zarr --out <workdir>/l2.zarr ...``."""
    layout = Layout(spec.workdir)
    return cubestream(
        "l2",
        "--l1",
        str(layout.l1),
        "--locations",
        str(layout.locations),
        "--out",
        str(layout.l2),
        *flags(spec.l2, skip=("cluster",)),
        *_cluster_flag(spec.l2.cluster),
    )


def train_layout_of(spec: PipelineSpec) -> TrainLayout:
    """Where the pipeline's training run writes (``<workdir>/train/<name>``)."""
    root = Layout(spec.workdir).train_root(spec.train_name)
    return train_layout(Path(spec.train.config).absolute(), root)


def train_args(spec: PipelineSpec) -> list[str]:
    """The LightningCLI arguments every training command of the pipeline shares."""
    layout = Layout(spec.workdir)
    return [
        "--config",
        str(Path(spec.train.config).absolute()),
        "--data.store",
        str(layout.l2),
        "--trainer.default_root_dir",
        str(layout.train_root(spec.train_name)),
        *spec.train.args,
    ]


def train_command(spec: PipelineSpec, *, resume: bool) -> list[str]:
    """``cubestream train fit --config C --data.store L2 --trainer.default_root_dir D ...``.

    With ``resume``, training goes on from ``D/checkpoints/last.ckpt`` when it exists.
    """
    command = cubestream("train", "fit", *train_args(spec))
    last = train_layout_of(spec).checkpoints / "last.ckpt"
    return command + (["--ckpt_path", str(last)] if resume and last.is_file() else [])


def test_command(spec: PipelineSpec) -> list[str]:
    """``cubestream train test ... --ckpt_path D/checkpoints/<checkpoint>``."""
    options = spec.options("test")
    checkpoint = train_layout_of(spec).checkpoints / options.checkpoint
    return cubestream(
        "train", "test", *train_args(spec), *options.args, "--ckpt_path", str(checkpoint)
    )


def outputs(spec: PipelineSpec, stage: str) -> list[Path]:
    """The files a stage leaves when it succeeded."""
    layout = Layout(spec.workdir)
    if stage == "replica":
        assert spec.replica_dir is not None
        return [spec.replica_dir / "replica.json"]
    if stage == "sample":
        return [layout.locations, layout.locations.with_name("locations.report.json")]
    if stage == "l1":
        return [layout.l1, Path(f"{layout.l1}.report.json")]
    if stage == "l2":
        return [layout.l2, Path(f"{layout.l2}.report.json")]
    train = train_layout_of(spec)
    if stage == "train":
        return [train.checkpoints / "last.ckpt"]
    return [train.scores]
