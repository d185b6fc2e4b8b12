"""Level-1 benchmark: bytes fetched from the object store, and time against a per-cube build.

In one run on this machine, on a replica served over S3 (``cubestream replica serve``)::

    python -m benchmarks.l1_bytes [--preset tiny] [--cubes N] [--out FILE] [--repeat K]
                                  [--gdal KEY=VALUE ...] [--read-block PX] [--whole-tile]
                                  [--resolution 30m|native] [--reader rasterio|warp|stackstac]
                                  [--end YYYY-MM-DD]
                                  [--no-local] [--no-ceiling] [--no-peer] [--no-s3-peer]

1. Create the replica (or reuse it from ``--cache``), serve it, and take ``--cubes`` boxes
   wholly inside its imaged window (seeded; all of them by default) as the locations table.
2. cubestream: :func:`cubestream.l1.build_l1` on a fresh LocalCluster (``--workers`` x
   ``--threads``) with the endpoint's GDAL settings: the wall time, the bytes the S3 server
   sent meanwhile (from its access log, per COG and per cube) and the peak resident memory of
   each worker (sampled every 50 ms).
3. The floor: for every COG the build reads, its header (the bytes before the first block of
   pixels of any level) and its full-resolution blocks that intersect the cubes' windows, from
   the TIFF block offsets and sizes (:mod:`benchmarks._cog_blocks`), and the whole files.
4. The peer: a fresh ``stackstac.stack`` per cube (:mod:`benchmarks._peer`), one Dask task per
   cube, on another fresh LocalCluster of the same size with the same GDAL options.
   With ``--whole-tile``, the second peer too: whole tiles read into memory, then sliced
   (:mod:`benchmarks.whole_tile`), once.
5. From local paths: the same build reading the replica's files (its ``stac/items.ndjson``),
   the per-cube peer on the same files (with the peer on), and the decode ceiling of the very
   blocks the build reads (:mod:`benchmarks._decode_ceiling`: rasterio on one thread and on all
   cores, and the build's own libdeflate decode), with each build's share of the all-core
   rasterio ceiling. Over S3 the CPU seconds of the workers and of the replica server (S3 and
   STAC, same machine) are reported apart.
6. One JSON line with the whole context appended to ``--out`` (default
   ``benchmarks/results/l1.jsonl``), and a table on stdout.

With ``--repeat K`` the two builds run K times, alternately, each into a new store on a new
cluster; a record keeps each phase's fastest run and lists all the times (the bytes do not
change between runs). The clusters' start-up is timed apart and left out of the wall times.
``--read-block`` sets cubestream's read chunk (px at 30 m; by default whole COG blocks: 1024 for
30 m COGs, 2048 for 10 / 20 m ones; 128 reads each box on its own, as cubestream did before).
AWS credentials reach the workers through their environment; the other GDAL settings travel as
cubestream's ``gdal_env``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from benchmarks import _context
from benchmarks._cog_blocks import CogBytes, cog_bytes, data_blocks, total
from benchmarks._decode_ceiling import CogBlocks, decode_ceiling
from benchmarks._l1_phases import Cluster, gdal_env, run_build, run_peer
from cubestream.endpoints import Endpoints
from cubestream.execution import ClientOptions
from cubestream.l1 import L1Config
from cubestream.l1.config import Reader
from cubestream.l1.sentinel2 import BANDS, SCL
from cubestream.options import add_flags, from_args, option, params
from cubestream.replica import layout
from cubestream.replica.spec import PresetName, ReplicaSpec, load_spec
from cubestream.replica.world import World
from cubestream.sample.boxes import BOX_PIXELS, tile_boxes
from cubestream.sources.cogread import read_threads
from cubestream.sources.config import gdal_options
from cubestream.sources.stac import search_items

__all__ = ["Settings", "imaged_cubes", "main", "measure", "table"]

RESULTS = Path(__file__).resolve().parent / "results" / "l1.jsonl"
CACHE = Path(os.environ.get("CUBESTREAM_BENCH_CACHE", Path.home() / ".cache" / "cubestream"))
PACKAGES = (
    "cubestream", "dask", "distributed", "stackstac", "rasterio", "gdal", "zarr", "xarray",
    "numpy", "pystac-client", "moto", "werkzeug",
)  # fmt: skip
_L1 = {p.name: p.flag for p in params(L1Config)}
"""The options of ``cubestream l1``, whose help the options the benchmark shares with it reuse."""
_CLUSTER = {p.name: p.flag for p in params(ClientOptions)}
"""The options of the stages' LocalCluster, likewise."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One run of the benchmark.

    Attributes
    ----------
    preset : {"tiny", "small", "pipeline", "tile"}
        Replica preset (:data:`cubestream.replica.spec.PRESETS`).
    cubes : int, optional
        Cubes to build, drawn (seeded) from the imaged boxes; all of them by default.
    out : Path
        JSON-lines file the record is appended to.
    cache : Path
        Where replicas are created once and reused (``<cache>/replica-<preset>``).
    replica : Path, optional
        An existing replica to use instead.
    workdir : Path, optional
        Where the locations table, the stores and the access log go (a temporary directory).
    workers, threads : int
        Size of each LocalCluster.
    days_per_chunk : int
        Acquisition days per time chunk of the L1 store.
    gdal : dict
        Extra GDAL options for both builds (on top of ``cubestream.sources.config``'s); the
        flag ``--gdal KEY=VALUE``, repeated, is plain argparse (see :func:`_arguments`).
    peer : bool
        Also run the per-cube peer (over S3 and, with ``local``, from local paths).
    s3_peer : bool
        The peer over S3 too (it is bound by the replica's S3 server, and slow on many cubes).
    whole_tile : bool
        Also run the whole-tile peer (:mod:`benchmarks.whole_tile`), once.
    repeat : int
        Runs of each build (alternating); the fastest is kept.
    read_block : int, optional
        cubestream's read chunk side, px at 30 m (default: whole COG blocks of the assets,
        :meth:`cubestream.l1.plan.TilePlan.read_block`).
    seed : int
        Seed of the choice of cubes.
    resolution : {"30m", "native"}, optional
        Resolution of the replica's COGs; by default native 10 / 20 m for the ``tile`` preset,
        the preset's own (30 m) otherwise. Native replicas are cached apart.
    local : bool
        Also build from the replica's local paths (its ``stac/items.ndjson``).
    ceiling : bool
        Also measure the decode ceiling of the blocks the build reads
        (:mod:`benchmarks._decode_ceiling`).
    reader : {"rasterio", "warp", "stackstac"}
        cubestream's reader (:class:`cubestream.l1.L1Config`).
    end : date, optional
        Last day of the replica, before the preset's own: fewer dates, so a native replica is
        created in minutes (cached apart).
    """

    preset: PresetName = option("tiny", help="replica preset")
    cubes: int | None = option(None, help="cubes to build (default: all)")
    out: Path = option(RESULTS, help="JSON-lines file to append to")
    cache: Path = option(CACHE, help="where replicas are kept")
    replica: Path | None = option(None, help="use this replica directory")
    workdir: Path | None = option(None, help="keep stores and logs here")
    workers: int = option(2, help=_CLUSTER["workers"].help)
    threads: int = option(1, help=_CLUSTER["threads"].help)
    days_per_chunk: int = option(16, help=_L1["days_per_chunk"].help)
    gdal: dict[str, str] = field(default_factory=dict)
    peer: bool = option(True, help="skip the per-cube peer")
    s3_peer: bool = option(
        True, help="skip the per-cube peer over S3 (the one from local paths still runs)"
    )
    whole_tile: bool = option(False, help="also run the whole-tile peer")
    repeat: int = option(1, help="runs of each build; keeps the best")
    read_block: int | None = option(None, help=_L1["read_block"].help)
    seed: int = option(0, help="seed of the choice of cubes")
    resolution: Literal["30m", "native"] | None = option(
        None,
        help="the replica's COGs: 30 m, or native 10/20 m (default: native for tile, else 30m)",
    )
    local: bool = option(True, help="skip the build from local paths")
    ceiling: bool = option(True, help="skip the decode ceiling")
    reader: Reader = option("rasterio", help=_L1["reader"].help)
    end: dt.date | None = option(
        None, help="last day of the replica (YYYY-MM-DD), before the preset's: fewer dates"
    )

    def replica_resolution(self) -> Literal["30m", "native"]:
        """The resolution of the replica's COGs (see ``resolution``)."""
        if self.resolution is not None:
            return self.resolution
        return "native" if self.preset == "tile" else "30m"


def imaged_cubes(spec: ReplicaSpec, count: int | None, seed: int = 0) -> pd.DataFrame:
    """A locations table of boxes wholly inside the imaged windows (dummy strata, all "train")."""
    world = World(spec)
    tables = []
    for tile_id in spec.tiles:
        win = world.window(tile_id)
        boxes = tile_boxes(tile_id)
        top, left = boxes["row"] * BOX_PIXELS, boxes["col"] * BOX_PIXELS
        inside = (
            (top >= win.row)
            & (left >= win.col)
            & (top + BOX_PIXELS <= win.row + win.height)
            & (left + BOX_PIXELS <= win.col + win.width)
        )
        tables.append(boxes[inside & boxes["core"]])
    boxes = pd.concat(tables, ignore_index=True)
    if count is not None and count < len(boxes):
        chosen = np.random.default_rng(seed).choice(len(boxes), size=count, replace=False)
        boxes = boxes.iloc[np.sort(chosen)]
    strata = {"climate": 0, "landcover": 0, "heterogeneity": 0, "topography": 0}
    return boxes.assign(**strata, split="train").reset_index(drop=True)


def _replica(settings: Settings) -> Path:
    if settings.replica is not None:
        return settings.replica
    from cubestream.replica.create import create_replica
    from cubestream.replica.spec import preset

    spec, name = preset(settings.preset), f"replica-{settings.preset}"
    if settings.replica_resolution() != spec.resolution:
        spec = replace(spec, resolution=settings.replica_resolution())
        name += f"-{spec.resolution}"
    if settings.end is not None and settings.end < spec.end:
        spec = replace(spec, end=settings.end)
        name += f"-to{settings.end.isoformat()}"
    return create_replica(settings.cache / name, spec)


@contextlib.contextmanager
def _served(root: Path, workdir: Path) -> Iterator[tuple[Endpoints, int]]:
    """The replica served; its endpoints and the server's process id."""
    from cubestream.replica.process import start_replica_server, stop_replica_server

    process, endpoints = start_replica_server(root, access_log=workdir / "s3-access.ndjson")
    try:
        yield endpoints, process.pid
    finally:
        stop_replica_server(process)


def _key(href: str, bucket: str) -> str:
    return href.split(f"/{bucket}/", 1)[1]


def _floor(
    cubes: pd.DataFrame, endpoints: Endpoints, spec: ReplicaSpec, root: Path
) -> tuple[dict[str, Any], list[CogBlocks]]:
    """Phase (b): headers, blocks under the cubes' windows and whole files of the COGs read.

    Also the blocks themselves, local paths, for the decode ceiling.
    """
    cogs: list[CogBytes] = []
    blocks: list[CogBlocks] = []
    for tile_id, tile_cubes in cubes.groupby("tile"):
        bbox = (
            float(tile_cubes["min_lon"].min()),
            float(tile_cubes["min_lat"].min()),
            float(tile_cubes["max_lon"].max()),
            float(tile_cubes["max_lat"].max()),
        )
        items = search_items(endpoints.stac_api, str(tile_id), bbox, spec.start, spec.end)
        windows = list(
            tile_cubes[["x_min", "y_min", "x_max", "y_max"]].itertuples(index=False, name=None)
        )
        for item in items:
            for band in (*BANDS, SCL):
                path = root / layout.OBJECTS_DIR / _key(item.hrefs[band], endpoints.bucket)
                cogs.append(cog_bytes(path, windows))
                blocks.append(CogBlocks(path=path, blocks=data_blocks(path, windows)))
    return total(cogs), blocks


def _ratios(build: dict[str, Any], floor: dict[str, int], peer: dict[str, Any] | None) -> Any:
    fetched = build["fetched"]["cog_bytes"]
    ratios = {
        "fetched_over_blocks": round(fetched / max(floor["blocks"], 1), 3),
        "fetched_over_blocks_and_headers": round(
            fetched / max(floor["blocks"] + floor["header"], 1), 3
        ),
        "fetched_over_whole": round(fetched / max(floor["file"], 1), 3),
        "block_bytes_fetched_over_blocks": round(
            build["fetched"]["block_bytes"] / max(floor["blocks"], 1), 3
        ),
        "header_bytes_fetched_over_headers": round(
            build["fetched"]["header_bytes"] / max(floor["header"], 1), 3
        ),
    }
    if peer is not None:
        ratios["peer_seconds_over_cubestream"] = round(peer["seconds"] / build["seconds"], 2)
        ratios["peer_fetched_over_blocks"] = round(
            peer["fetched"]["cog_bytes"] / max(floor["blocks"], 1), 3
        )
    return ratios


def _replica_context(spec: ReplicaSpec, root: Path) -> dict[str, Any]:
    manifest = json.loads((root / "replica.json").read_text())
    return {
        "path": str(root),
        "tiles": list(spec.tiles),
        "start": spec.start.isoformat(),
        "end": spec.end.isoformat(),
        "resolution": spec.resolution,
        "cog_blocksize": spec.blocksize,
        "data_windows": {t: asdict(w) for t, w in spec.data_windows.items()},
        "counts": manifest.get("counts"),
        "megabytes": round(manifest.get("bytes", 0) / 1e6, 1),
    }


def _fastest(runs: list[dict[str, Any]]) -> dict[str, Any]:
    best = min(runs, key=lambda run: float(run["seconds"]))
    return {**best, "seconds_runs": [run["seconds"] for run in runs]}


def _builds(
    settings: Settings, cubes: pd.DataFrame, spec: ReplicaSpec, served: Served, workdir: Path
) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None, dict[str, Any] | None]:
    """Run the builds ``settings.repeat`` times, alternately; keep each one's fastest run.

    Returns the build over S3, the peer's over S3, the build from local paths and the peer's
    from local paths.
    """
    endpoints, root = served.endpoints, served.root
    cluster = Cluster(
        workers=settings.workers,
        threads=settings.threads,
        endpoints=endpoints,
        gdal_extra=settings.gdal,
        server_pid=served.pid,
    )
    locations = workdir / "locations.parquet"
    cubes.to_parquet(locations)
    ours, peers, local, local_peers = [], [], [], []
    for run in range(settings.repeat):
        config = L1Config(
            locations=str(locations),
            stac=endpoints.stac_api,
            out=str(workdir / f"l1-{run}.zarr"),
            start=spec.start,
            end=spec.end,
            collection=endpoints.collection,
            days_per_chunk=settings.days_per_chunk,
            read_block=settings.read_block,
            reader=settings.reader,
        )
        ours.append(run_build(cluster, config, len(cubes)))
        if settings.local:
            paths = replace(
                config,
                stac=str(root / layout.ITEMS_FILE),
                collection=L1Config.collection,
                out=str(workdir / f"l1-local-{run}.zarr"),
            )
            local.append(run_build(cluster, paths, len(cubes)))
        if settings.peer and settings.s3_peer:
            peers.append(run_peer(cluster, cubes, spec, workdir / f"peer-{run}.zarr"))
        if settings.peer and settings.local:
            store = workdir / f"peer-local-{run}.zarr"
            local_peers.append(run_peer(cluster, cubes, spec, store, root / layout.ITEMS_FILE))
    return (
        _fastest(ours),
        (_fastest(peers) if peers else None),
        (_fastest(local) if local else None),
        (_fastest(local_peers) if local_peers else None),
    )


@dataclass(frozen=True)
class Served:
    """The served replica: its directory, endpoints and server process."""

    root: Path
    endpoints: Endpoints
    pid: int


def _whole_tile(
    settings: Settings, cubes: pd.DataFrame, spec: ReplicaSpec, endpoints: Endpoints, workdir: Path
) -> dict[str, Any] | None:
    if not settings.whole_tile:
        return None
    from benchmarks.whole_tile import run_whole_tile

    cluster = Cluster(
        workers=settings.workers,
        threads=settings.threads,
        endpoints=endpoints,
        gdal_extra=settings.gdal,
    )
    return run_whole_tile(cluster, cubes, spec, workdir / "whole-tile.zarr")


def _whole_ratios(build: dict[str, Any], whole: dict[str, Any] | None) -> dict[str, float]:
    if whole is None:
        return {}
    return {
        "whole_tile_seconds_over_cubestream": round(whole["seconds"] / build["seconds"], 2),
        "whole_tile_fetched_over_cubestream": round(
            whole["fetched"]["cog_bytes"] / max(build["fetched"]["cog_bytes"], 1), 3
        ),
    }


def measure(settings: Settings) -> dict[str, Any]:
    """Run the benchmark; return its record (see the module's description)."""
    root = _replica(settings)
    spec = load_spec(root)
    cubes = imaged_cubes(spec, settings.cubes, settings.seed)
    with contextlib.ExitStack() as stack:
        workdir = settings.workdir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="l1-bytes-"))
        )
        workdir.mkdir(parents=True, exist_ok=True)
        endpoints, pid = stack.enter_context(_served(root, workdir))
        floor, blocks = _floor(cubes, endpoints, spec, root)
        before = decode_ceiling(blocks) if settings.ceiling else None
        served = Served(root, endpoints, pid)
        build, peer, local, peer_local = _builds(settings, cubes, spec, served, workdir)
        whole = _whole_tile(settings, cubes, spec, endpoints, workdir)
    ceiling = _best(before, decode_ceiling(blocks) if settings.ceiling else None)
    return {
        "benchmark": "l1_bytes",
        "time": _context.now(),
        "git": _context.git(),
        "machine": _context.machine(),
        "versions": _context.versions(PACKAGES),
        "settings": _settings(settings, endpoints),
        "replica": _replica_context(spec, root),
        "sizes": {
            "cubes": len(cubes),
            "tiles": sorted(cubes["tile"].unique().tolist()),
            "cubes_per_tile": {str(t): int(n) for t, n in cubes.groupby("tile").size().items()},
        },
        "cubestream": build,
        "cubestream_local": local,
        "cog_floor": {**floor, "per_cube_blocks": round(floor["blocks"] / len(cubes), 1)},
        "decode_ceiling": ceiling,
        "peer": peer,
        "peer_local": peer_local,
        "whole_tile": whole,
        "ratios": {
            **_ratios(build, floor, peer),
            **_whole_ratios(build, whole),
            **_ceiling_ratios(build, local, peer, ceiling, peer_local),
        },
    }


def _best(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any] | None:
    """The faster of the ceilings measured before and after the builds, both runs listed.

    On a loaded machine the ceiling moves; the builds' shares are taken against the faster one.
    """
    if before is None or after is None:
        return None
    best = min((before, after), key=lambda c: float(c["rasterio_all"]["seconds"]))
    runs = {"rasterio_all_seconds_runs": [c["rasterio_all"]["seconds"] for c in (before, after)]}
    return {**best, **runs}


def _ceiling_ratios(
    build: dict[str, Any],
    local: dict[str, Any] | None,
    peer: dict[str, Any] | None,
    ceiling: dict[str, Any] | None,
    peer_local: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Each build's share of the all-core rasterio decode ceiling of its blocks, and more.

    ``peer_seconds_over_local``: the peer over S3 against the build from local paths (not like
    for like); ``peer_local_seconds_over_local``: both from local paths.
    """
    if ceiling is None:
        return {}
    floor = float(ceiling["rasterio_all"]["seconds"])
    out = {
        "ceiling_all_over_one_core": round(
            float(ceiling["rasterio_1"]["seconds"]) / max(floor, 1e-9), 2
        )
    }
    cpu = float(ceiling["rasterio_1"]["cpu_seconds"])
    runs = (("s3", build), ("local", local), ("peer", peer), ("peer_local", peer_local))
    for name, run in runs:
        if run is not None:
            out[f"{name}_share_of_ceiling"] = round(floor / float(run["seconds"]), 3)
            # load-robust: decode CPU of the blocks over the CPU the build's workers spent
            out[f"{name}_cpu_share_of_ceiling"] = round(
                cpu / max(float(run["workers_cpu_seconds"]), 1e-9), 3
            )
    if local is not None and peer is not None:
        out["peer_seconds_over_local"] = round(float(peer["seconds"]) / float(local["seconds"]), 2)
    if local is not None and peer_local is not None:
        out["peer_local_seconds_over_local"] = round(
            float(peer_local["seconds"]) / float(local["seconds"]), 2
        )
    return out


def _settings(settings: Settings, endpoints: Endpoints) -> dict[str, Any]:
    env, _ = gdal_env(endpoints, settings.gdal)
    return {
        "preset": settings.preset if settings.replica is None else None,
        "cubes": settings.cubes,
        "workers": settings.workers,
        "threads_per_worker": settings.threads,
        "days_per_chunk": settings.days_per_chunk,  # at most: the chunks the store got are
        # the builds' s2_chunks (cubestream.l1.plan.even_chunk)
        "read_block": settings.read_block,
        "reader": settings.reader,
        "read_threads": read_threads(),
        "resolution": settings.replica_resolution(),
        "end": settings.end.isoformat() if settings.end else None,
        "repeat": settings.repeat,
        "gdal_extra": settings.gdal,
        "gdal": gdal_options(env),
        "seed": settings.seed,
    }


def _mb(value: float) -> str:
    return f"{value / 1e6:,.2f} MB"


def table(record: dict[str, Any]) -> str:
    """A short human-readable summary of a record."""
    build, floor, ratios = record["cubestream"], record["cog_floor"], record["ratios"]
    fetched, cubes = build["fetched"], record["sizes"]["cubes"]
    rows = [
        ("cubestream build over S3", f"{build['seconds']:.2f} s", _mb(fetched["cog_bytes"])),
        ("  per cube", "", _mb(fetched["per_cube_bytes"])),
    ]
    if record.get("cubestream_local") is not None:
        rows.append(
            ("cubestream from local paths", f"{record['cubestream_local']['seconds']:.2f} s", "")
        )
    if record["peer"] is not None:
        peer = record["peer"]
        rows.append(
            ("per-cube stackstac", f"{peer['seconds']:.2f} s", _mb(peer["fetched"]["cog_bytes"]))
        )
    if record.get("peer_local") is not None:
        rows.append(
            ("per-cube stackstac, local paths", f"{record['peer_local']['seconds']:.2f} s", "")
        )
    if record.get("whole_tile") is not None:
        whole = record["whole_tile"]
        rows.append(
            ("whole tiles", f"{whole['seconds']:.2f} s", _mb(whole["fetched"]["cog_bytes"]))
        )
    rows += [
        ("COG blocks under the windows", "", _mb(floor["blocks"])),
        ("COG headers", "", _mb(floor["header"])),
        ("whole COGs", "", _mb(floor["file"])),
    ]
    lines = [
        f"level-1 bytes: {cubes} cubes, {floor['cogs']} COGs, {record['machine']['cpus']} CPUs, "
        f"commit {record['git']['commit']}",
        *(f"  {name:<30} {seconds:>10} {size:>14}" for name, seconds, size in rows),
        f"  fetched / blocks {ratios['fetched_over_blocks']}  "
        f"/ (blocks + headers) {ratios['fetched_over_blocks_and_headers']}  "
        f"/ whole {ratios['fetched_over_whole']}",
        f"  peak RSS per worker (MB) {build['peak_rss_mb_per_worker']}",
    ]
    if "peer_seconds_over_cubestream" in ratios:
        lines.append(f"  peer time / cubestream time {ratios['peer_seconds_over_cubestream']}")
    if "peer_local_seconds_over_local" in ratios:
        lines.append(
            "  from local paths: peer time / cubestream time "
            f"{ratios['peer_local_seconds_over_local']}"
        )
    lines += _ceiling_lines(record)
    return "\n".join(lines)


def _ceiling_lines(record: dict[str, Any]) -> list[str]:
    """The decode ceiling of the build's blocks, and each build's share of it."""
    ceiling, ratios = record.get("decode_ceiling"), record["ratios"]
    if ceiling is None:
        return []
    lines = [
        f"  decode ceiling of the {ceiling['blocks']} blocks read "
        f"({ceiling['threads_all']} threads = all cores):"
    ]
    for name in ("rasterio_1", "rasterio_all", "libdeflate_1", "libdeflate_all"):
        if name in ceiling:
            run = ceiling[name]
            lines.append(
                f"    {name:<16} {run['seconds']:>8.3f} s {run['cpu_seconds']:>8.3f} CPU-s "
                f"{run['decoded_mb']:>8.1f} MB {run['decoded_mb_per_s']:>8.1f} MB/s"
            )
    shares = ", ".join(
        f"{name} {ratios[f'{name}_share_of_ceiling']}"
        for name in ("local", "s3", "peer", "peer_local")
        if f"{name}_share_of_ceiling" in ratios
    )
    lines.append(f"  share of the all-core rasterio ceiling (wall): {shares}")
    cpu_shares = ", ".join(
        f"{name} {ratios[f'{name}_cpu_share_of_ceiling']}"
        for name in ("local", "s3", "peer", "peer_local")
        if f"{name}_cpu_share_of_ceiling" in ratios
    )
    lines.append(f"  decode CPU of the blocks / workers' CPU: {cpu_shares}")
    server = record["cubestream"].get("s3_server_cpu_seconds")
    if server is not None:
        lines.append(
            f"  CPU seconds over S3: workers {record['cubestream']['workers_cpu_seconds']}, "
            f"S3 + STAC server {server}"
        )
    return lines


def _parse_gdal(values: Sequence[str]) -> dict[str, str]:
    pairs = [value.split("=", 1) for value in values]
    bad = [value for value, pair in zip(values, pairs, strict=True) if len(pair) != 2]
    if bad:
        raise SystemExit(f"--gdal takes KEY=VALUE, not {bad}")
    return {key: value for key, value in pairs}


def _arguments(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.l1_bytes", description=__doc__)
    add_flags(parser, Settings)
    parser.add_argument(
        "--gdal",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra GDAL option for both builds (repeat the flag for more)",
    )
    args = parser.parse_args(argv)
    settings: Settings = from_args(Settings, args, gdal=_parse_gdal(args.gdal))
    return settings


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; append the record and print the table."""
    settings = _arguments(argv)
    return _context.keep_and_print(settings.out, measure(settings), table)


if __name__ == "__main__":
    main(sys.argv[1:])
