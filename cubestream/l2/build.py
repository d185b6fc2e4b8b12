"""X4: the level-2 build, from the L1 store to one L2 store of samples, on a Dask cluster.

:func:`build_l2` reads like the stage:

1. plan (metadata only): check the L1 store, match its cubes with the locations table (the
   splits), draw each cube's windows (:mod:`.plan`, :mod:`.windows`);
2. if the store holds no template of this very build: screen every cube's windows on the
   cluster (SCL, weather and DEM only; :func:`.sample.screen`), drop the unusable ones with
   their reason, and write the template (:func:`.store.create_template`);
3. make and write every block of samples not yet in the store, one Dask task per block
   (:func:`.sample.read_window`, :func:`.sample.make_sample`, :func:`.store.write_block`),
   with a progress bar;
4. when every block is written: the normalisation statistics over the train samples, then
   ``complete``;
5. the build report ``<store>.report.json``: every tile, cube and window left out and why,
   every block that failed, the samples per split.

A rerun with the same inputs and settings finishes only what is missing (killed at any point,
it ends equal to a clean build, chunk for chunk); other settings or another L1 rebuild the
store from scratch.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict
from typing import Any

import dask
import numpy as np

from cubestream._dask import run_jobs
from cubestream.errors import L2Error, L2InputError, UnusableSampleError
from cubestream.execution import ClientOptions, given_or_local
from cubestream.l2.config import L2Config
from cubestream.l2.plan import L2Plan, SampleSpec, open_l1, plan_samples, read_locations
from cubestream.l2.sample import Recipe, make_sample, read_window, screen
from cubestream.l2.schema import STEP_DAYS, STEPS
from cubestream.l2.store import (
    create_template,
    done_blocks,
    finalise,
    open_store,
    read_samples,
    store_state,
    sums,
    write_block,
)
from cubestream.l2.weather import statistic_of
from cubestream.storage import open_file

__all__ = ["REPORT_SUFFIX", "L2Config", "build_l2"]

REPORT_SUFFIX = ".report.json"
"""The build report lies next to the store: ``l2.zarr`` -> ``l2.zarr.report.json``."""
_STATS_SAMPLES = 64
"""Samples per task of the statistics pass."""


def _screen_cube(
    url: str, options: dict[str, Any] | None, specs: list[SampleSpec], recipe: Recipe
) -> list[str | None]:
    """Per window of one cube: None if usable, else the reason (a Dask task)."""
    out: list[str | None] = []
    for spec in specs:
        try:
            screen(read_window(url, options, spec, recipe, pixels=False), spec, recipe)
            out.append(None)
        except UnusableSampleError as exc:
            out.append(str(exc))
    return out


def _make_block(
    l1: str,
    l1_options: dict[str, Any] | None,
    out: str,
    out_options: dict[str, Any] | None,
    first: int,
    specs: list[SampleSpec],
    recipe: Recipe,
) -> int:
    """Make the samples of one block and write them (a Dask task); return the bytes written."""
    made = [make_sample(read_window(l1, l1_options, s, recipe), s, recipe) for s in specs]
    values = {name: np.stack([m[name] for m in made]) for name in made[0]}
    return write_block(out, out_options, first, values)


def _screen(
    client: Any, config: L2Config, plan: L2Plan, recipe: Recipe
) -> tuple[list[SampleSpec], list[dict[str, Any]]]:
    """Screen every cube's windows on the cluster: the usable ones, and the others with why."""
    by_cube: dict[str, list[SampleSpec]] = {}
    for spec in plan.samples:
        by_cube.setdefault(spec.cube_id, []).append(spec)
    task = dask.delayed(_screen_cube, pure=False)
    options = config.l1_storage_options or None
    jobs = {cube: [task(config.l1, options, specs, recipe)] for cube, specs in by_cube.items()}
    errors, results = run_jobs(client, jobs, desc="l2 screen", unit="cube")
    failed = {cube: error for cube, error in errors.items() if error}
    if failed:
        cube, error = next(iter(failed.items()))
        raise L2Error(
            f"screening failed for {len(failed)} cubes, e.g. {cube}: {error}; nothing was "
            "written: fix the cause and run again"
        )
    kept, skipped = [], []
    for cube, specs in by_cube.items():
        for spec, reason in zip(specs, results[cube][0], strict=True):
            if reason is None:
                kept.append(spec)
            else:
                skipped.append({**spec.describe(), "reason": reason})
    if not kept:
        reasons = Counter(s["reason"].split(":")[0] for s in plan.skipped + skipped)
        raise L2InputError(f"no usable window in the L1 store; left out: {dict(reasons)}")
    return sorted(kept, key=lambda s: (s.tile, s.cube_id, s.start)), skipped


def _attrs(plan: L2Plan, recipe: Recipe, l1: str, skipped: list[Any]) -> dict[str, Any]:
    return {
        "title": "cubestream L2: gap-filled 10-daily minicube samples",
        "l1": l1,
        "steps": STEPS,
        "step_days": STEP_DAYS,
        "invalid_scl": list(recipe.invalid_scl),
        "reach_days": recipe.reach_days,
        "kndvi_normalised": recipe.kndvi_normalise,
        "era5_point": recipe.era5_point,
        "weather_sources": dict(plan.weather),
        "weather_statistics": {name: statistic_of(name) for name in plan.weather},
        "skipped": skipped,
    }


def _samples(
    client: Any, config: L2Config, plan: L2Plan, recipe: Recipe, state: str
) -> list[SampleSpec]:
    """The store's samples: screened and a new template written, or read from the template."""
    options = config.storage_options or None
    if state != "new":
        by_key = {s.key: s for s in plan.samples}
        return [by_key[key] for key in read_samples(config.out, options)]
    samples, unusable = _screen(client, config, plan, recipe)
    create_template(
        config.out,
        options,
        samples,
        weather=list(plan.weather),
        size=plan.size,
        samples_per_chunk=config.samples_per_chunk,
        attrs=_attrs(plan, recipe, config.l1, plan.skipped + unusable),
        signature=config.signature(plan),
    )
    return samples


def _write_blocks(
    client: Any, config: L2Config, samples: list[SampleSpec], recipe: Recipe
) -> tuple[int, list[dict[str, Any]]]:
    """Make and write every block not yet in the store; the blocks written, the failures."""
    per_chunk = config.samples_per_chunk
    blocks = {
        b: samples[b * per_chunk : (b + 1) * per_chunk]
        for b in range(-(-len(samples) // per_chunk))
    }
    done = done_blocks(config.out, config.storage_options or None)
    task = dask.delayed(_make_block, pure=False)
    sources = (config.l1, config.l1_storage_options or None)
    target = (config.out, config.storage_options or None)
    jobs = {
        str(b): [task(*sources, *target, b * per_chunk, specs, recipe)]
        for b, specs in blocks.items()
        if b not in done
    }
    errors, _ = run_jobs(client, jobs, desc="l2 samples", unit="block")
    failed = [
        {"block": int(b), "samples": [s.describe() for s in blocks[int(b)]], "error": e}
        for b, e in errors.items()
        if e
    ]
    return len(jobs) - len(failed), failed


def build_l2(config: L2Config, *, client: Any | ClientOptions | None = None) -> dict[str, Any]:
    """Build (or finish) the L2 store of ``config``; return the build report.

    Parameters
    ----------
    config : L2Config
        What to build.
    client : distributed.Client or ClientOptions, optional
        Where to compute: a client (left open), or the options of the client to open once the
        build has planned (:func:`cubestream.execution.given_or_local`). By default a
        LocalCluster of 2 single-threaded workers is started for the build.

    Raises
    ------
    L2InputError
        If the L1 store or the locations table cannot give any sample (the reason is named).
    L2Error
        If screening fails on the cluster (nothing is written then), or ``out`` holds
        something other than an L2 store.
    """
    started = time.perf_counter()
    plan = plan_samples(
        open_l1(config.l1, config.l1_storage_options or None),
        read_locations(config.locations),
        windows_per_cube=config.windows_per_cube,
        seed=config.seed,
        start=config.start,
        end=config.end,
        tiles=config.tiles,
        weather=config.weather,
        ood_time_from=config.ood_time_from,
    )
    recipe = config.recipe(plan.weather)
    state = store_state(config.out, config.storage_options or None, config.signature(plan))
    report: dict[str, Any] = {"config": _jsonable(config), "state_before": state}
    with given_or_local(client, threads=1) as client:
        samples = _samples(client, config, plan, recipe, state)
        written, failed = _write_blocks(client, config, samples, recipe)
        if not failed and state != "complete":
            report["statistics"] = _finalise(client, config, samples)
    attrs = open_store(config.out, config.storage_options or None).attrs
    report.update(
        complete=bool(attrs.get("complete")),
        samples=len(samples),
        blocks_written=written,
        splits=dict(Counter(s.split for s in samples)),
        tracks=dict(Counter(s.track for s in samples if s.track)),
        tiles=plan.tiles,
        skipped=attrs.get("skipped", []),
        failed_blocks=failed,
        seconds=round(time.perf_counter() - started, 2),
    )
    _write_report(config, report)
    return report


def _finalise(client: Any, config: L2Config, samples: list[SampleSpec]) -> dict[str, Any]:
    over = "train" if any(s.split == "train" for s in samples) else "all"
    task = dask.delayed(sums, pure=False)
    options = config.storage_options or None
    ranges = list(range(0, len(samples), _STATS_SAMPLES))
    jobs = {
        str(lo): [
            task(config.out, options, lo, min(lo + _STATS_SAMPLES, len(samples)), over == "all")
        ]
        for lo in ranges
    }
    errors, results = run_jobs(client, jobs, desc="l2 statistics", unit="task")
    if any(errors.values()):
        raise L2Error(f"the statistics pass failed: {next(e for e in errors.values() if e)}")
    parts = [results[str(lo)][0] for lo in ranges]
    return finalise(config.out, options, parts, over)


def _jsonable(config: L2Config) -> dict[str, Any]:
    out = asdict(config)
    out["start"] = config.start.isoformat() if config.start else None
    out["end"] = config.end.isoformat() if config.end else None
    out["storage_options"] = "<given>" if config.storage_options else {}
    out["l1_storage_options"] = "<given>" if config.l1_storage_options else {}
    return out


def _write_report(config: L2Config, report: dict[str, Any]) -> None:
    url = f"{config.out.rstrip('/')}{REPORT_SUFFIX}"
    with open_file(url, config.storage_options, "w") as handle:
        handle.write(json.dumps(report, indent=1, default=str) + "\n")
