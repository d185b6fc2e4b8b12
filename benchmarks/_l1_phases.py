"""The two timed phases of :mod:`benchmarks.l1_bytes`, each on a fresh LocalCluster.

:func:`on_cluster` runs one piece of work on a new cluster and measures it the same way for both
builds: wall time (the cluster's start-up apart), the bytes the S3 server sent meanwhile (its
access log), the peak resident memory of each worker and the load averages around it.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from benchmarks._context import PeakRss
from benchmarks._peer import peer_cube
from cubestream.endpoints import Endpoints
from cubestream.l1 import L1Config, build_l1
from cubestream.replica.spec import ReplicaSpec

__all__ = ["Cluster", "fetched", "gdal_env", "on_cluster", "run_build", "run_peer"]

CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """Size of the LocalCluster each phase gets, and the served replica it reads.

    ``memory_limit`` is each worker's (Dask's ``memory_limit``: ``"0"`` for none);
    ``server_pid`` the replica server's process, whose CPU time (its children's too) each
    phase reports apart from the workers'.
    """

    workers: int
    threads: int
    endpoints: Endpoints
    gdal_extra: dict[str, str]
    memory_limit: str = "4GB"
    server_pid: int | None = None


def gdal_env(endpoints: Endpoints, extra: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The endpoint's GDAL settings plus ``extra``, without the credentials; the credentials."""
    env = {**endpoints.gdal_env(), **extra}
    credentials = {name: env.pop(name) for name in CREDENTIALS}
    return env, credentials


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables (workers started inside inherit them), then restore."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _log_lines(path: str) -> list[str]:
    return [line for line in Path(path).read_text().splitlines() if line.strip()]


def _log_since(path: str, mark: int) -> pd.DataFrame:
    columns = ["method", "key", "range", "status", "bytes"]
    records = [json.loads(line) for line in _log_lines(path)[mark:]]
    return pd.DataFrame(records, columns=columns) if records else pd.DataFrame(columns=columns)


def fetched(log: pd.DataFrame, cubes: int) -> dict[str, Any]:
    """Bytes and requests of a phase: all, COGs only, header reads, per COG and per cube."""
    cog = log[log["key"].astype(str).str.endswith(".tif")]
    gets = cog[cog["method"] == "GET"]
    header = gets[gets["range"].fillna("").astype(str).str.startswith("bytes=0-")]
    per_cog = cog.groupby("key")["bytes"].sum()
    return {
        "bytes": int(log["bytes"].sum()),
        "requests": len(log),
        "cog_bytes": int(cog["bytes"].sum()),
        "cog_get_requests": len(gets),
        "cog_head_requests": int((cog["method"] == "HEAD").sum()),
        "header_get_requests": len(header),
        "header_bytes": int(header["bytes"].sum()),
        "block_bytes": int(gets["bytes"].sum() - header["bytes"].sum()),
        "errors": int((log["status"] >= 400).sum()),
        "cogs_read": int(per_cog.size),
        "per_cog_bytes_mean": round(float(per_cog.mean()), 1) if per_cog.size else 0.0,
        "per_cog_bytes_max": int(per_cog.max()) if per_cog.size else 0,
        "per_cube_bytes": round(float(cog["bytes"].sum()) / max(cubes, 1), 1),
    }


def _cpu_seconds(pids: list[int], children: bool = False) -> float:
    """User + system CPU seconds of the processes ``pids`` (and their children) so far."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            process = psutil.Process(pid)
            family = [process, *(process.children(recursive=True) if children else [])]
            for member in family:
                times = member.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _import_readers() -> None:
    """Import, in a fresh worker, what every phase's tasks import: their CPU is start-up."""
    import pyproj  # noqa: F401
    import rasterio  # noqa: F401
    import stackstac  # noqa: F401
    import zarr  # noqa: F401

    import benchmarks._peer  # noqa: F401
    import cubestream.l1.build  # noqa: F401


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def on_cluster(
    cluster: Cluster, cubes: int, work: Callable[[Any, dict[str, str]], T]
) -> tuple[T, dict[str, Any]]:
    """Run ``work(client, gdal_env)`` on a fresh LocalCluster; return its result and figures.

    The workers import the readers' modules before the clock starts (counted in the cluster's
    start-up, not in the phase's wall or CPU seconds).
    """
    from distributed import Client, LocalCluster

    env, credentials = gdal_env(cluster.endpoints, cluster.gdal_extra)
    log = cluster.endpoints.access_log
    started = time.perf_counter()
    with (
        _environment(credentials),
        LocalCluster(
            n_workers=cluster.workers,
            threads_per_worker=cluster.threads,
            memory_limit=cluster.memory_limit,
            dashboard_address=":0",
        ) as local,
        Client(local) as client,
    ):
        client.wait_for_workers(cluster.workers)
        client.run(_import_readers)
        start_seconds = time.perf_counter() - started
        pids = client.run(os.getpid)
        mark, load_before = len(_log_lines(log)), _load()
        server = [cluster.server_pid] if cluster.server_pid else []
        cpu_before = _cpu_seconds(list(pids.values())), _cpu_seconds(server, children=True)
        with PeakRss(pids.values()) as rss:
            started = time.perf_counter()
            result = work(client, env)
            seconds = time.perf_counter() - started
        workers_cpu = _cpu_seconds(list(pids.values())) - cpu_before[0]
        server_cpu = _cpu_seconds(server, children=True) - cpu_before[1]
    return result, {
        "seconds": round(seconds, 2),
        "workers_cpu_seconds": round(workers_cpu, 2),
        "s3_server_cpu_seconds": round(server_cpu, 2) if server else None,
        "cluster_start_seconds": round(start_seconds, 2),
        "peak_rss_mb_per_worker": rss.megabytes(),
        "load_average_before": load_before,
        "load_average_after": _load(),
        "fetched": fetched(_log_since(log, mark), cubes),
    }


def run_build(cluster: Cluster, config: L1Config, cubes: int) -> dict[str, Any]:
    """Phase (a): :func:`cubestream.l1.build_l1` with ``config`` (its GDAL env set here)."""
    from dataclasses import replace

    def work(client: Any, env: dict[str, str]) -> dict[str, Any]:
        return build_l1(replace(config, gdal_env=env), client=client)

    report, figures = on_cluster(cluster, cubes, work)
    tiles = report["tiles"]
    failed = {t: e.get("reason") for t, e in tiles.items() if e.get("status") != "built"}
    if failed:
        raise RuntimeError(f"the level-1 build did not build every tile: {failed}")
    return {
        **figures,
        "chunks_written": int(sum(e["chunks_written"] for e in tiles.values())),
        "days": {t: e["days"] for t, e in tiles.items()},
        "items": {t: e["items"] for t, e in tiles.items()},
        "s2_chunks": _s2_chunks(config.out, tiles),
    }


def _s2_chunks(out: str, tiles: dict[str, Any]) -> dict[str, list[int]]:
    """The chunk shape of each tile's ``s2`` in the built store (its time chunks evened out)."""
    import zarr

    return {tile: list(zarr.open_array(out, path=f"{tile}/s2", mode="r").chunks) for tile in tiles}


def run_peer(
    cluster: Cluster,
    cubes: pd.DataFrame,
    spec: ReplicaSpec,
    store: Path,
    items_file: Path | None = None,
) -> dict[str, Any]:
    """Phase (c): a fresh stackstac stack per cube (:func:`benchmarks._peer.peer_cube`).

    From the served STAC API and S3; or, given the replica's ``items_file``, from local paths.
    """
    import zarr

    zarr.open_group(str(store), mode="w", zarr_format=3)
    rows = cubes.to_dict("records")

    def work(client: Any, env: dict[str, str]) -> list[dict[str, Any]]:
        futures = client.map(
            peer_cube,
            rows,
            pure=False,
            stac=str(items_file) if items_file else cluster.endpoints.stac_api,
            collection=L1Config.collection if items_file else cluster.endpoints.collection,
            period=f"{spec.start}/{spec.end}",
            gdal_env=env,
            store=str(store),
        )
        results: list[dict[str, Any]] = client.gather(futures)
        return results

    results, figures = on_cluster(cluster, len(cubes), work)
    return {
        **figures,
        "writes": "raw stacks, a Zarr group per cube (zarr v3, xarray defaults)",
        "items_per_cube": sorted({r["items"] for r in results}),
    }
