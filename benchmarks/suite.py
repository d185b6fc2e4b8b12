"""The benchmark suite: every stage at a preset size, summarised, projected, kept in the history.

``cubestream bench`` runs, for each stage asked for, its benchmark on this machine with the
sizes of a :data:`PRESETS` entry (the ceiling and the peers of each stage run side by side in
that benchmark), then turns its record into summary rows (:mod:`benchmarks._summary`) with the
projected hours of the stage for :data:`~benchmarks.workload.AFRICA_12TB` on the given cluster
(:mod:`benchmarks.projection`), and appends one JSON line per stage to the history::

    {"suite": {"run", "preset", "stages"}, "stage", "time", "git", "machine", "versions",
     "settings", "sizes", "figures": <the stage benchmark's whole record>,
     "rows": [<summary rows>], "projection": {"workload", "replica", "cluster", "stages"}}
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmarks import _context, _summary, encoding, l1_bytes, loader, startup, train_step
from benchmarks._suite_settings import SuiteSettings
from benchmarks.projection import ClusterSpec
from benchmarks.workload import AFRICA_12TB

__all__ = [
    "PRESETS",
    "StageFailedError",
    "StageSizes",
    "SuiteSettings",
    "run_stage",
    "run_suite",
    "stage_record",
]


@dataclass(frozen=True, kw_only=True)
class StageSizes:
    """The settings of each stage's benchmark at one preset."""

    l1: l1_bytes.Settings
    loader: loader.Settings
    train: train_step.Settings
    encoding: encoding.Settings = field(default_factory=encoding.Settings)


PRESETS: dict[str, StageSizes] = {
    # the default: it must stay within 15 minutes on 2 cores
    "tiny": StageSizes(
        l1=l1_bytes.Settings(preset="tiny", whole_tile=True),
        loader=loader.Settings(samples=16, samples_per_chunk=(1, 4), workers=(0, 1, 2)),
        train=train_step.Settings(size=32, batch_size=4, steps=10, warmup=2, workers=1),
        encoding=encoding.Settings(samples=4, passes=1, candidates=encoding.TINY_CANDIDATES),
    ),
    # the demo's two tiles over two years; bigger loader and training samples
    "small": StageSizes(
        l1=l1_bytes.Settings(preset="small", whole_tile=True),
        loader=loader.Settings(samples=128, samples_per_chunk=(1, 4), workers=(0, 1, 2, 4)),
        train=train_step.Settings(size=64, batch_size=4, steps=20, warmup=3, workers=2),
        encoding=encoding.Settings(samples=16),
    ),
    # one tile fully imaged (the 12 TB workload's tile, three months); full-size samples
    "tile": StageSizes(
        l1=l1_bytes.Settings(preset="tile", whole_tile=True),
        loader=loader.Settings(samples=256, samples_per_chunk=(1, 4, 8), workers=(0, 1, 2, 4)),
        train=train_step.Settings(size=128, batch_size=4, steps=20, warmup=3, workers=2),
        encoding=encoding.Settings(samples=32),
    ),
}


def _run_l1(sizes: StageSizes, workdir: Path) -> dict[str, Any]:
    settings = replace(sizes.l1, workdir=workdir / "l1")
    return l1_bytes.measure(settings)


def _run_loader(sizes: StageSizes, workdir: Path) -> dict[str, Any]:
    record = loader.measure(sizes.loader)
    scale = startup.Settings(samples=(10_000, 100_000), ranks=(1, 64))
    record["startup"] = startup.measure(scale)["rows"]  # seconds: metadata-only stores
    return record


def _run_train(sizes: StageSizes, workdir: Path) -> dict[str, Any]:
    return train_step.measure(replace(sizes.train, workdir=workdir / "train"))


def _run_encoding(sizes: StageSizes, workdir: Path) -> dict[str, Any]:
    return encoding.measure(sizes.encoding)


RUNNERS: dict[str, Callable[[StageSizes, Path], dict[str, Any]]] = {
    "l1": _run_l1,
    "loader": _run_loader,
    "train": _run_train,
    "encoding": _run_encoding,
}


def stage_record(
    stage: str, figures: dict[str, Any], cluster: ClusterSpec, suite: dict[str, Any]
) -> dict[str, Any]:
    """The history record of one stage: its context, figures, summary rows and projection."""
    rows, projection = _summary.summarise(stage, figures, AFRICA_12TB, cluster)
    return {
        "suite": suite,
        "stage": stage,
        "time": figures["time"],
        "git": figures["git"],
        "machine": figures["machine"],
        "versions": figures["versions"],
        "settings": figures["settings"],
        "sizes": _summary.sizes(stage, figures),
        "figures": figures,
        "rows": rows,
        "projection": projection,
    }


class StageFailedError(RuntimeError):
    """A stage's benchmark did not finish."""


def run_stage(stage: str, preset: str, workdir: Path) -> dict[str, Any]:
    """Run one stage's benchmark in a fresh Python process; return its record.

    Each stage starts from a clean process (no memory or threads left by the one before), and a
    stage that dies (killed for memory, say) leaves the others to run.
    """
    out = workdir / f"{stage}.json"
    command = [sys.executable, "-m", "benchmarks.suite", stage, preset, str(workdir), str(out)]
    done = subprocess.run(command, check=False)
    if done.returncode != 0:
        why = " (killed: out of memory?)" if done.returncode == -signal.SIGKILL else ""
        raise StageFailedError(
            f"the {stage} benchmark exited with status {done.returncode}{why}; its output is "
            f"above; rerun it alone with `cubestream bench --stages {stage}`"
        )
    figures: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return figures


def run_suite(settings: SuiteSettings, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run the stages; append one record per stage to the history; return the records.

    A stage that fails is reported and the others still run; :class:`StageFailedError` names
    the failed stages at the end.
    """
    if settings.preset not in PRESETS:
        raise ValueError(f"unknown preset {settings.preset!r}; choose one of {sorted(PRESETS)}")
    suite = {
        "run": f"{_context.now()}-{uuid.uuid4().hex[:6]}",
        "preset": settings.preset,
        "stages": list(settings.stages),
    }
    records, failed = [], []
    with contextlib.ExitStack() as stack:
        workdir = settings.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="cubestream-bench-"))
        )
        for stage in settings.stages:
            started = time.perf_counter()
            log(f"bench: {stage} ({settings.preset}) ...")
            try:
                figures = run_stage(stage, settings.preset, workdir)
            except StageFailedError as error:
                log(f"bench: {error}")
                failed.append(stage)
                continue
            record = stage_record(stage, figures, settings.cluster, suite)
            record["suite"] = {**suite, "stage_seconds": round(time.perf_counter() - started, 1)}
            _context.append_record(settings.history, record)
            records.append(record)
            log(_summary.text(record))
    if failed:
        raise StageFailedError(f"stages that did not finish: {failed} (see above)")
    return records


def _stage_main(argv: list[str]) -> None:
    """``python -m benchmarks.suite STAGE PRESET WORKDIR OUT``: one stage's record to OUT."""
    stage, preset, workdir, out = argv
    figures = RUNNERS[stage](PRESETS[preset], Path(workdir))
    Path(out).write_text(json.dumps(figures), encoding="utf-8")


if __name__ == "__main__":
    _stage_main(sys.argv[1:])
