"""X1 at Africa scale: the whole location-sampling stage, timed step by step, with peak memory.

1. Strata rasters: Africa-wide synthetic climate, land-cover and geomorphon rasters (EPSG:4326,
   uint8, no-data 0; sea outside :data:`cubestream.sample.area.AFRICA` is water) at
   ``--resolution`` degrees, written in row blocks into ``--cache`` and reused by later runs
   (:mod:`benchmarks._africa_strata`).
2. The stage, in a fresh process so that its peak memory is its own: :func:`sample_locations
   <cubestream.sample.locations.sample_locations>` with the original study's settings (Africa,
   23,864 boxes, the 200 top tiles, 0.75 / 0.05 / 0.2 splits), run once end to end. Each step it
   calls (``parse_area``, ``candidate_boxes``, ``box_strata``, ``stratum_keys``, ``draw`` twice:
   the top-tiles pass and the final draw, ``assign_tracks``, ``bias_report``) is timed where the
   stage calls it; ``other`` is the rest (table building, filters). ``write_locations`` (Parquet
   and the bias report's JSON and PNG, into a temporary directory) is timed after it.
3. Memory: peak RSS of the stage's process (also after each step) and of its largest child (a
   ``box_strata`` worker), from the kernel's high-water marks (:mod:`benchmarks._memory`), next
   to ``getrusage``'s ``RUSAGE_SELF`` and ``RUSAGE_CHILDREN``, which for spawned processes
   start from their parent's peak and so overstate them. CPU seconds of both, to compare with
   the wall time (other work on the machine shows as a gap, and in the load averages).
4. One JSON line with the whole context (machine, versions, commit, sizes, settings, seconds per
   step, boxes per second, memory, split shares) is printed and appended to ``--results``.

``--quick`` runs the same on a small bbox (:data:`QUICK_AREA`) with a small target, in seconds::

    python -m benchmarks.sample_africa [--resolution 0.01] [--workers 2] [--cache DIR]
        [--results FILE] [--quick] [--target N] [--top-tiles N] [--seed N]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import _context as context
from benchmarks._africa_strata import World, ensure_strata
from benchmarks._memory import MemoryWatch, high_water_mb
from cubestream.options import add_flags, from_args, option, params
from cubestream.sample import locations
from cubestream.sample.area import parse_area, tiles_in_area
from cubestream.sample.locations import SampleConfig, write_locations
from cubestream.sample.options import SampleOptions
from cubestream.sample.splits import SplitRule
from cubestream.sample.strata import StrataSources

__all__ = [
    "AFRICA_TARGET",
    "DEFAULTS",
    "QUICK_AREA",
    "RESULTS",
    "Settings",
    "main",
    "measure",
    "run",
]

AFRICA_TARGET = 23864
"""Boxes drawn by the original study."""
QUICK_AREA = "36,-2,38,0"
"""The ``--quick`` area: a bbox of about 12 tiles in Kenya."""
DEFAULTS = {"africa": (AFRICA_TARGET, 200), "quick": (300, 4)}
"""Target and top tiles of each mode, unless given."""
RESULTS = Path(__file__).resolve().parent / "results" / "sample_africa.jsonl"
"""Default ``--results`` file."""
_STAGE = {p.name: p.flag for p in params(SampleOptions)}
"""The flags of ``cubestream sample``, whose help the options the benchmark shares with it reuse."""


def _by_mode(index: int) -> str:
    """The defaults of one of :data:`DEFAULTS`' numbers, said in a flag's help."""
    return f" (default {DEFAULTS['africa'][index]:,}; --quick: {DEFAULTS['quick'][index]})"


_Describe = Callable[[Any], dict[str, int]]
_STEPS: dict[str, _Describe | None] = {
    "parse_area": None,
    "candidate_boxes": lambda boxes: {
        "candidate_boxes": len(boxes),
        "tiles_with_boxes": int(boxes["tile"].nunique()),
    },
    "box_strata": lambda boxes: {"eligible_boxes": int(boxes["eligible"].sum())},
    "stratum_keys": None,
    "draw": None,
    "assign_tracks": None,
    "bias_report": None,
}
"""The functions :func:`sample_locations` calls, timed in place, and the sizes read off them."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What one benchmark run does.

    Attributes
    ----------
    quick : bool
        Run on :data:`QUICK_AREA` with a small target instead of Africa.
    resolution : float
        Pixel size of the strata rasters in degrees.
    workers : int
        Processes reading strata.
    target, top_tiles : int, optional
        Boxes to draw and tiles kept; by default 23,864 and 200 (quick: 300 and 4).
    seed : int
        Seed of the draw and the splits.
    val : float
        Validation share (taken from train: 0.75 / 0.05 / 0.2).
    cache : Path, optional
        Directory of the strata rasters; by default
        ``~/.cache/cubestream/bench-{africa,quick}-strata-<resolution>``.
    results : Path
        JSON-lines file the run's record is appended to.
    """

    quick: bool = option(False, help=f"area {QUICK_AREA}, small target")
    resolution: float = option(0.01, help="strata pixel (degrees)")
    workers: int = option(2, help=_STAGE["workers"].help)
    target: int | None = option(None, help=_STAGE["target"].help + _by_mode(0))
    top_tiles: int | None = option(None, help=_STAGE["top_tiles"].help + _by_mode(1))
    seed: int = option(0, help=_STAGE["seed"].help)
    val: float = 0.05
    cache: Path | None = option(None, help="strata raster directory")
    results: Path = option(RESULTS, help="JSON-lines file")

    @property
    def mode(self) -> str:
        """``quick`` or ``africa``."""
        return "quick" if self.quick else "africa"

    @property
    def area(self) -> str:
        """The ``--area`` of the stage."""
        return QUICK_AREA if self.quick else "africa"

    def cache_dir(self) -> Path:
        """Where the strata rasters are cached."""
        if self.cache is not None:
            return Path(self.cache).expanduser()
        name = f"bench-{self.mode}-strata-{self.resolution:g}"
        return Path("~/.cache/cubestream").expanduser() / name

    def config(self, sources: StrataSources) -> SampleConfig:
        """The stage's configuration with the strata ``sources``."""
        target, top = DEFAULTS[self.mode]
        return SampleConfig(
            area=self.area,
            strata=sources,
            target=target if self.target is None else self.target,
            top_tiles=top if self.top_tiles is None else self.top_tiles,
            splits=SplitRule.with_validation(self.val),
            seed=self.seed,
            workers=self.workers,
        )


# --- the stage, in a fresh process ----------------------------------------------------------


def _cpu_seconds() -> dict[str, float]:
    """User + system seconds of this process and of its children that have ended."""
    used = {}
    for name, who in (("self", resource.RUSAGE_SELF), ("children", resource.RUSAGE_CHILDREN)):
        usage = resource.getrusage(who)
        used[name] = usage.ru_utime + usage.ru_stime
    return used


@dataclass
class _Steps:
    """Per call of each timed step: wall and CPU seconds; sizes; the peak RSS after it."""

    calls: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    peak_after: dict[str, float | None] = field(default_factory=dict)

    def wrap(self, name: str, func: Callable[..., Any], describe: _Describe | None) -> Any:
        """``func`` timed under ``name``."""

        @functools.wraps(func)
        def timed(*args: Any, **kwargs: Any) -> Any:
            cpu, start = _cpu_seconds(), time.perf_counter()
            out = func(*args, **kwargs)
            wall, used = time.perf_counter() - start, _cpu_seconds()
            spent = {f"cpu_{who}": used[who] - cpu[who] for who in used}
            self.calls.setdefault(name, []).append({"wall": wall, **spent})
            self.peak_after[name] = high_water_mb()
            if describe is not None:
                self.sizes.update(describe(out))
            return out

        return timed

    @contextmanager
    def timing(self, module: ModuleType) -> Iterator[None]:
        """Time the :data:`_STEPS` that ``module`` calls, restoring them afterwards."""
        saved = {name: getattr(module, name) for name in _STEPS}
        for name, describe in _STEPS.items():
            setattr(module, name, self.wrap(name, saved[name], describe))
        try:
            yield
        finally:
            for name, func in saved.items():
                setattr(module, name, func)

    def table(self) -> dict[str, dict[str, Any]]:
        """Per step: wall seconds, calls, wall seconds per call and CPU seconds (all calls).

        ``cpu_children`` counts children that ended during the step: the ``box_strata``
        workers, whose pool closes before it returns.
        """
        table = {}
        for name, calls in self.calls.items():
            total = {key: sum(call[key] for call in calls) for key in calls[0]}
            table[name] = {
                "seconds": round(total.pop("wall"), 3),
                "calls": len(calls),
                "per_call": [round(call["wall"], 3) for call in calls],
                **{key: round(value, 2) for key, value in total.items()},
            }
        return table


def measure(config: SampleConfig) -> dict[str, Any]:
    """Run the stage once end to end, timing each step; then time writing its outputs.

    Meant for a fresh process (:func:`run` starts one), whose peak RSS is then the stage's.

    Parameters
    ----------
    config : SampleConfig
        The stage's configuration.

    Returns
    -------
    dict
        ``seconds`` (``stage``, ``steps``, ``other``, ``write_locations``), ``sizes``,
        ``cpu_seconds`` and ``memory_mb`` (of the stage, before the writing) and ``splits``.
    """
    steps = _Steps()
    with MemoryWatch() as watch, steps.timing(locations):
        start = time.perf_counter()
        result = locations.sample_locations(config)
        stage = time.perf_counter() - start
    memory = watch.summary() | {"self_peak_rss_after_step": steps.peak_after}
    cpu = {who: round(used, 1) for who, used in _cpu_seconds().items()}
    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        write_locations(result, Path(directory) / "locations.parquet")
        write = time.perf_counter() - start
    counts = result.report["counts"]
    sizes = steps.sizes | {
        "top_tiles_eligible_boxes": len(result.eligible),
        "sampled_boxes": len(result.table),
        "sampled_tiles": counts["tiles"],
        "strata_populated": counts["strata_populated"],
        "strata_sampled": counts["strata_sampled"],
    }
    table = steps.table()
    return {
        "seconds": {
            "stage": round(stage, 3),
            "steps": table,
            "other": round(stage - sum(step["seconds"] for step in table.values()), 3),
            "write_locations": round(write, 3),
        },
        "sizes": sizes,
        "cpu_seconds": cpu,
        "memory_mb": memory,
        "splits": {
            "requested": config.splits.shares,
            "achieved": result.report["splits"],
            "warnings": result.report["warnings"],
        },
    }


def _in_fresh_process(config: SampleConfig) -> dict[str, Any]:
    """:func:`measure` in a new ('spawn') process, so that its rusage is the stage's alone."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(measure, config).result()


# --- the record -----------------------------------------------------------------------------


_PACKAGES = (
    "cubestream",
    "numpy",
    "pandas",
    "pyarrow",
    "rasterio",
    "gdal",
    "pyproj",
    "shapely",
    "scipy",
)


def _settings(settings: Settings, config: SampleConfig) -> dict[str, Any]:
    return {
        "area": config.area,
        "strata_resolution_deg": settings.resolution,
        "box_strata_resolution_m": config.strata.resolution,
        "max_water_fraction": config.strata.max_water_fraction,
        "workers": config.workers,
        "target": config.target,
        "top_tiles": config.top_tiles,
        "cap_per_tile": config.cap_per_tile,
        "seed": config.seed,
        "allocation": {**config.allocation.__dict__, "columns": list(config.allocation.columns)},
        "splits": config.splits.__dict__,
    }


def _rates(stage: dict[str, Any]) -> dict[str, float]:
    """Candidate boxes per second: wall seconds of ``box_strata`` and of the stage.

    Also per CPU second of the ``box_strata`` workers: what one free core does, whatever else
    the machine runs.
    """
    boxes = stage["sizes"].get("candidate_boxes", 0)
    strata = stage["seconds"]["steps"].get("box_strata", {})
    rates = {
        "box_strata": (boxes, strata.get("seconds", 0.0)),
        "stage": (boxes, stage["seconds"]["stage"]),
        "box_strata_per_worker_cpu_second": (boxes, strata.get("cpu_children", 0.0)),
    }
    return {name: round(n / seconds, 1) if seconds else 0.0 for name, (n, seconds) in rates.items()}


def run(settings: Settings) -> dict[str, Any]:
    """Write (or reuse) the strata rasters, measure the stage and append its record.

    Parameters
    ----------
    settings : Settings
        What to run.

    Returns
    -------
    dict
        The record appended to :attr:`Settings.results`.
    """
    area = parse_area(settings.area)
    world = World()
    sources, rasters = ensure_strata(settings.cache_dir(), area, settings.resolution, world)
    config = settings.config(sources)
    before = context.machine()
    stage = _in_fresh_process(config)
    rates = _rates(stage)
    after = context.machine()["load_average"]
    record = {
        "benchmark": "sample_africa",
        "mode": settings.mode,
        "time": context.now(),
        "git": context.git(),
        "machine": before | {"load_average_after": after},
        "versions": context.versions(_PACKAGES),
        "settings": _settings(settings, config),
        "strata_rasters": {**rasters, "directory": str(settings.cache_dir())},
        "sizes": {"tiles_in_area": len(tiles_in_area(area)), **stage.pop("sizes")},
        **stage,
        "boxes_per_second": rates,
    }
    settings.results.parent.mkdir(parents=True, exist_ok=True)
    with settings.results.open("a") as out:
        out.write(json.dumps(record) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: :func:`run` with the options, printing the record."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_flags(parser, Settings)
    settings: Settings = from_args(Settings, parser.parse_args(argv))
    print(json.dumps(run(settings), indent=1))


if __name__ == "__main__":
    main()
