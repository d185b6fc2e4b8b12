"""X2 + X3: the level-1 build, tile by tile, on a Dask cluster.

:func:`build_l1` reads like the stage: read the locations table; per tile, search the catalogue
(any supported provider, :mod:`cubestream.sources`), plan, create the group's template; probe the
pixels of the items of the tiles still to build to verify their reflectance offsets
(:mod:`cubestream.sources.offsets`); build the graph of chunk writes that are still missing; run
every tile's writes on the cluster with a progress bar; mark a tile complete only when all its
writes succeeded; write the build report listing every tile built, skipped, excluded or failed,
and every item whose offset metadata the pixels contradicted, with the reason. A tile that fails
(a corrupt or missing COG, say) does not stop the others, and a rerun finishes only what is
missing. ``dry_run`` stops after planning and reports what the build would read.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from typing import Any

import dask
import numpy as np
import pandas as pd

from cubestream import grid
from cubestream._consolidated import consolidate
from cubestream._dask import run_jobs
from cubestream.errors import CubestreamError, L1Error
from cubestream.execution import ClientOptions, given_or_local
from cubestream.l1.auxiliary import (
    CLASS_LAYERS,
    aux_done,
    write_classes,
    write_dem,
    write_era5,
    write_smap,
)
from cubestream.l1.blocks import (
    chunk_items,
    plan_blocks,
    read_and_write,
    time_chunk,
    write_reflectance,
    write_scl,
)
from cubestream.l1.config import L1Config, Reader
from cubestream.l1.dryrun import dry_run_entry
from cubestream.l1.plan import CUBE_COLUMNS, TilePlan, plan_tile
from cubestream.l1.sentinel2 import BANDS, SCL, block_read, check_read_block, tile_stacks
from cubestream.l1.store import create_template, existing_chunks, open_root, remove_partials
from cubestream.sources.cogread import WindowRead
from cubestream.sources.config import RetryPolicy, gdal_options, layered_env
from cubestream.sources.offsets import OffsetDecision, decide, probe_item
from cubestream.sources.sentinel2 import S2Item
from cubestream.sources.stac import search_items
from cubestream.storage import open_file

__all__ = ["L1Config", "Reader", "build_l1", "tile_writes"]

REPORT_SUFFIX = ".report.json"
"""The build report lies next to the store: ``l1.zarr`` -> ``l1.zarr.report.json``."""


def _read_locations(path: str, tiles: tuple[str, ...] | None) -> pd.DataFrame:
    table = pd.read_parquet(path)
    missing = [c for c in ("tile", "epsg", *CUBE_COLUMNS) if c not in table.columns]
    if missing:
        raise L1Error(
            f"the locations table {path} lacks the columns {missing}; make it with "
            "`cubestream sample`"
        )
    if tiles:
        unknown = sorted(set(tiles) - set(table["tile"]))
        if unknown:
            raise L1Error(f"tiles {unknown} are not in the locations table {path}")
        table = table[table["tile"].isin(tiles)]
    return table


def _bbox(cubes: pd.DataFrame) -> tuple[float, float, float, float]:
    return (
        float(cubes["min_lon"].min()),
        float(cubes["min_lat"].min()),
        float(cubes["max_lon"].max()),
        float(cubes["max_lat"].max()),
    )


def _pending(items: list[S2Item]) -> list[OffsetDecision]:
    """The metadata's offsets, before the pixels are probed (the template does not use them)."""
    return [
        OffsetDecision(
            item=i.id,
            dn=i.offset.dn or 0,
            metadata=i.offset.dn,
            reason=i.offset.reason,
            status="pending",
        )
        for i in items
    ]


def _plan(config: L1Config, tile_id: str, cubes: pd.DataFrame) -> TilePlan:
    """Search the tile's items and plan it; offsets are decided later (:func:`_decide`)."""
    items = search_items(
        config.stac,
        tile_id,
        _bbox(cubes),
        config.start,
        config.end,
        collection=config.collection,
        provider=config.provider,
        max_cloud_cover=config.max_cloud_cover,
        policy=RetryPolicy.from_env(),
    )
    tile = grid.tile(tile_id)
    return plan_tile(
        tile, cubes, items, days_per_chunk=config.days_per_chunk, decisions=_pending(items)
    )


def _probes(plan: TilePlan, config: L1Config) -> list[Any]:
    """Delayed pixel probes of every item of ``plan`` (none under the ``trust`` policy)."""
    if config.offset == "trust":
        return []
    options = gdal_options(config.gdal_env)
    probe = dask.delayed(probe_item, pure=True)
    return [probe(item, plan.epsg, plan.cubes_bounds, options) for item in plan.items]


def _decide(plan: TilePlan, config: L1Config, evidence: list[Any]) -> TilePlan:
    """``plan`` with each item's offset decided under the policy, on the probes' evidence."""
    found = evidence or [None] * len(plan.items)
    decisions = [
        decide(item.id, item.offset, seen, config.offset)
        for item, seen in zip(plan.items, found, strict=True)
    ]
    return replace(plan, decisions=tuple(decisions))


def _offset_summary(plan: TilePlan) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for d in plan.decisions:
        counts[d.status] = counts.get(d.status, 0) + 1
    return {
        "offset_decisions": counts,
        "offset_disagreements": [d.to_dict() for d in plan.decisions if d.status == "corrected"],
        "offset_unverified": [d.item for d in plan.decisions if d.status == "unverified"],
    }


def _missing(plan: TilePlan, group: Any, names: tuple[str, ...]) -> set[tuple[int, int]]:
    """``(cube, time chunk)`` pairs with a chunk of some of ``names`` not yet in the store."""
    every = {(c, t) for c in range(len(plan.cubes)) for t in range(len(plan.day_chunks))}
    missing: set[tuple[int, int]] = set()
    for name in names:
        done = {index[:2] for index in existing_chunks(group, name)}
        missing |= every - done
    return missing


def tile_writes(plan: TilePlan, group: Any, config: L1Config) -> list[Any]:
    """Delayed tasks writing the chunks of ``s2``, ``scl`` and ``data_fraction`` still missing.

    One task per read chunk and variable (:mod:`cubestream.l1.blocks`): it reads the items of
    one time chunk over the window of the boxes of one COG block whose chunks are missing, and
    writes them; the tasks reading more start first. Each task returns the number of chunks it
    wrote. Building them reads no pixel.
    """
    if config.reader == "stackstac":
        return _stackstac_writes(plan, group, config)
    block = check_read_block(plan.read_block(config.read_block))
    so = config.storage_options or None
    task_of = dask.delayed(read_and_write, pure=False)
    writes = []
    for assets, names, offsets in (
        (BANDS, ("s2",), True),
        ((SCL,), ("scl", "data_fraction"), False),
    ):
        for task in plan_blocks(plan, block, _missing(plan, group, names)):
            items = chunk_items(plan, task.t)
            read = block_read(
                plan,
                items,
                task.by,
                task.bx,
                assets,
                block,
                task.span(),
                config.reader == "warp",
                task.regions(),
            )
            times = time_chunk(plan, task.t, offsets)
            with dask.annotate(priority=_megapixels(read)):
                writes.append(
                    task_of(
                        read,
                        task,
                        times,
                        config.out,
                        so,
                        plan.tile,
                        config.gdal_env,
                        config.read_threads,
                    )
                )
    return writes


def _megapixels(read: WindowRead) -> int:
    """Megapixels a read decodes: the larger reads start first, so no short one is left last."""
    items, assets = read.shape[:2]
    return items * assets * read.pixels // 1_000_000


def _stackstac_writes(plan: TilePlan, group: Any, config: L1Config) -> list[Any]:
    """:func:`tile_writes` with stackstac reading the chunks (the former path)."""
    block = plan.read_block(config.read_block)
    reflectance, scl = tile_stacks(plan, layered_env(config.gdal_env), block)
    so = config.storage_options or None
    writes = []
    for stack, names, offsets, write in (
        (reflectance, ("s2",), True, write_reflectance),
        (scl, ("scl", "data_fraction"), False, write_scl),
    ):
        chunks = stack.to_delayed()
        task_of = dask.delayed(write, pure=False)
        for task in plan_blocks(plan, block, _missing(plan, group, names)):
            times = time_chunk(plan, task.t, offsets)
            chunk = chunks[task.t, 0, task.by, task.bx]
            writes.append(task_of(chunk, task, times, config.out, so, plan.tile))
    return writes


def aux_writes(plan: TilePlan, group: Any, config: L1Config) -> tuple[list[Any], dict[str, str]]:
    """Delayed writes of the auxiliary variables not yet complete, and what happens to each."""
    aux, so = config.auxiliary, config.storage_options or None
    cubes = plan.cubes.assign(tile=plan.tile, epsg=plan.epsg)
    bbox = _bbox(cubes)
    env = config.gdal_env
    calls = {
        "dem": (aux.srtm, write_dem, (cubes, aux.srtm, config.gdal_env, aux.dem_source)),
        **{
            name: (getattr(aux, name), write_classes, (cubes, name, getattr(aux, name), env))
            for name in CLASS_LAYERS
        },
        "smap": (aux.smap, write_smap, (cubes, aux, config.start, config.end)),
        "era5": (aux.era5, write_era5, (bbox, aux, config.start, config.end)),
    }
    writes, states = [], {}
    for name, (source, fn, args) in calls.items():
        if source is None:
            states[name] = "not requested"
        elif aux_done(group, name):
            states[name] = "already complete"
        else:
            states[name] = "written"
            writes.append(dask.delayed(fn, pure=False)(config.out, so, plan.tile, *args))
    return writes, states


def _prepare(root: Any, plan: TilePlan, config: L1Config) -> tuple[Any, str]:
    """Open the tile's group, or (re)create its template; say which, and why it was rebuilt.

    A group is reused only if it was built with the same settings, days and cubes; a locations
    table with cubes added to or removed from the tile rebuilds the tile's group.
    """
    if plan.tile not in root:
        return create_template(root, plan, config.signature()), "new"
    group = root[plan.tile]
    days = [str(d) for d in np.asarray(group["time"][...]).astype("datetime64[D]")]
    cubes = [str(c) for c in group["cube"][...]]
    wanted = [str(c) for c in plan.cubes["cube_id"]]
    changes = [
        what
        for what, changed in (
            ("settings", group.attrs.get("build") != config.signature()),
            ("days", days != [d.isoformat() for d in plan.days]),
            ("time chunks", group["s2"].chunks[1] != plan.days_per_chunk),
            (_cube_change(cubes, wanted), cubes != wanted),
        )
        if changed
    ]
    if not changes:
        if group.attrs.get("complete"):
            return group, "complete"
        remove_partials(group)  # before the resume lists the chunks that exist
        return group, "resumed"
    return create_template(root, plan, config.signature()), f"rebuilt: {', '.join(changes)} changed"


def _cube_change(built: list[str], wanted: list[str]) -> str:
    added, removed = len(set(wanted) - set(built)), len(set(built) - set(wanted))
    return f"cubes ({added} added, {removed} removed)"


def _plan_tiles(
    config: L1Config, table: pd.DataFrame, report: dict[str, Any]
) -> dict[str, TilePlan]:
    """Plan every tile; a tile that cannot be planned or is excluded is reported, not planned."""
    plans = {}
    for tile_id, cubes in table.groupby("tile", sort=True):
        entry: dict[str, Any] = {"cubes": len(cubes)}
        report["tiles"][str(tile_id)] = entry
        try:
            plan = _plan(config, str(tile_id), cubes)
        except CubestreamError as exc:
            entry.update(status="failed", reason=str(exc))
            continue
        entry.update(
            days=len(plan.days),
            items=len(plan.items),
            missing_dates=[d.isoformat() for d in plan.missing_dates],
        )
        if (
            len(plan.missing_dates) > config.integrity.max_missing_dates
            and config.integrity.on_missing == "exclude"
        ):
            entry.update(status="excluded", reason=f"{len(plan.missing_dates)} missing dates")
            continue
        plans[plan.tile] = plan
    return plans


def _decide_tiles(
    client: Any, config: L1Config, plans: dict[str, TilePlan], report: dict[str, Any]
) -> dict[str, TilePlan]:
    """Probe the items' pixels where the policy asks, decide every offset; drop failed tiles."""
    errors, evidence = run_jobs(
        client,
        {tile: _probes(plan, config) for tile, plan in plans.items()},
        desc="offset probes",
        unit="item",
    )
    decided = {}
    for tile, plan in plans.items():
        entry = report["tiles"][tile]
        try:
            if errors.get(tile):
                raise L1Error(f"the offset probe of tile {tile} failed: {errors[tile]}")
            decided[tile] = _decide(plan, config, evidence.get(tile, []))
        except CubestreamError as exc:
            entry.update(status="failed", reason=str(exc))
            continue
        entry.update(_offset_summary(decided[tile]))
    return decided


def build_l1(
    config: L1Config, *, client: Any | ClientOptions | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Build (or finish) the L1 store of ``config``; return the build report.

    Parameters
    ----------
    config : L1Config
        What to build.
    client : distributed.Client or ClientOptions, optional
        Where to compute: a client (left open), or the options of the client to open once the
        build has planned (:func:`cubestream.execution.given_or_local`). By default a
        LocalCluster of 2 workers of 2 threads is started for the build.
    dry_run : bool
        Nothing is read or written but the catalogue: the report gives, per tile, the items,
        days, read blocks and the bytes the build expects to fetch.
    """
    started = time.perf_counter()
    table = _read_locations(config.locations, config.tiles)
    report: dict[str, Any] = {"config": _jsonable(config), "tiles": {}}
    plans = _plan_tiles(config, table, report)
    if dry_run:
        for tile, plan in plans.items():
            report["tiles"][tile].update(dry_run_entry(plan, plan.read_block(config.read_block)))
        report["dry_run"] = True
        report["seconds"] = round(time.perf_counter() - started, 2)
        return report
    root = open_root(config.out, config.storage_options or None)
    with given_or_local(client, threads=2) as client:
        groups, todo = {}, {}
        for tile, plan in plans.items():
            group, state = _prepare(root, plan, config)
            report["tiles"][tile]["state_before"] = state
            groups[tile] = group
            if state != "complete":
                todo[tile] = plan
        decided = _decide_tiles(client, config, todo, report)
        jobs: dict[str, list[Any]] = {tile: [] for tile in groups if tile not in todo}
        for tile, plan in decided.items():
            entry = report["tiles"][tile]
            extra, entry["auxiliary"] = aux_writes(plan, groups[tile], config)
            reads = tile_writes(plan, groups[tile], config)
            entry["read_tasks"] = len(reads)
            jobs[tile] = reads + extra
        errors, results = run_jobs(
            client, {t: w for t, w in jobs.items() if w}, desc="l1 tasks", unit="task"
        )
    for tile, work in jobs.items():
        _finish(groups[tile], report["tiles"][tile], work, errors.get(tile), results.get(tile))
    report["offset_disagreements"] = [
        d for entry in report["tiles"].values() for d in entry.get("offset_disagreements", [])
    ]
    consolidate(config.out, config.storage_options or None)  # the store as this build left it
    report["seconds"] = round(time.perf_counter() - started, 2)
    _write_report(config, report)
    return report


def _finish(
    group: Any, entry: dict[str, Any], work: list[Any], error: str | None, results: Any
) -> None:
    """Mark a tile complete when all its writes succeeded, and report it."""
    if error:
        entry.update(status="failed", reason=error)
        return
    if "offset_decisions" in entry:
        group.attrs["offset_corrections"] = entry.get("offset_disagreements", [])
    group.attrs["complete"] = True
    entry.update(
        status="built" if work else "skipped (already complete)",
        chunks_written=int(sum((results or [])[: entry.get("read_tasks", 0)], 0)),
    )


def _jsonable(config: L1Config) -> dict[str, Any]:
    out = asdict(config)
    out["start"], out["end"] = config.start.isoformat(), config.end.isoformat()
    out["gdal_env"] = {k: ("***" if "SECRET" in k else v) for k, v in config.gdal_env.items()}
    out["storage_options"] = "<given>" if config.storage_options else {}
    aux = out["auxiliary"]
    aux["storage_options"] = "<given>" if aux["storage_options"] else {}
    return out


def _write_report(config: L1Config, report: dict[str, Any]) -> None:
    url = f"{config.out.rstrip('/')}{REPORT_SUFFIX}"
    with open_file(url, config.storage_options, mode="w") as handle:
        handle.write(json.dumps(report, indent=1) + "\n")
