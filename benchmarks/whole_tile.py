"""The second peer of the level-1 build: materialise whole tiles, then slice the cubes out.

The original pipeline of the 12 TB study read each Sentinel-2 tile whole into memory, an array
``[days, bands, 3660, 3660]``, and cut every minicube of the tile out of it. :func:`tile_cubes`
does that for one tile in one Dask task: it reads every band asset and the SCL of every item
whole (``rasterio`` over ``/vsis3/``, with cubestream's GDAL options), slices each cube's
128 x 128 window and writes the raw cube (items not fused by day) to a throwaway Zarr group.

Where the machine cannot hold a whole tile (``days_in_memory``), the tile is read in groups of
that many days and the record says so: the figures are then those of a smaller resident array.
:func:`run_whole_tile` times the tasks on a fresh LocalCluster, like the other two builds
(:func:`benchmarks._l1_phases.on_cluster`), with no memory limit on its workers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._l1_phases import Cluster, on_cluster
from cubestream.l1.sentinel2 import BANDS, BOX, SCL, TILE_PIXELS
from cubestream.replica.spec import ReplicaSpec
from cubestream.sources.config import gdal_options
from cubestream.sources.sentinel2 import S2Item
from cubestream.sources.stac import search_items

__all__ = ["day_bytes", "days_in_memory", "run_whole_tile", "tile_cubes"]


def day_bytes() -> int:
    """Bytes of one day of a whole tile held in memory: the bands (uint16) and the SCL (uint8)."""
    return TILE_PIXELS * TILE_PIXELS * (2 * len(BANDS) + 1)


def days_in_memory(days: int, available: int, share: float = 0.5) -> int:
    """Days of a tile held at once: all of them when they fit in ``share`` of ``available``."""
    fits = int(share * available // day_bytes())
    return max(1, min(days, fits))


def _path(href: str, bucket: str) -> str:
    return f"/vsis3/{bucket}/{href.split(f'/{bucket}/', 1)[1]}"


def _read(paths: list[list[str]], dtype: np.dtype[Any]) -> np.ndarray:
    """Read every asset of every item whole: ``[items, assets, 3660, 3660]``."""
    import rasterio

    out = np.empty((len(paths), len(paths[0]), TILE_PIXELS, TILE_PIXELS), dtype)
    for day, assets in enumerate(paths):
        for band, path in enumerate(assets):
            with rasterio.open(path) as src:
                src.read(1, out=out[day, band])
    return out


def tile_cubes(
    tile: str,
    items: list[S2Item],
    cubes: list[dict[str, Any]],
    *,
    bucket: str,
    gdal_env: dict[str, str],
    store: str,
    days: int,
) -> dict[str, Any]:
    """Read one tile whole, ``days`` items at a time, and write its cubes to ``store``.

    Parameters
    ----------
    tile : str
        The tile's MGRS id.
    items : list of dict
        The tile's STAC items, in date order.
    cubes : list of dict
        Rows of the locations table on this tile (``cube_id``, ``row``, ``col`` in boxes).
    bucket : str
        The served bucket (hrefs become ``/vsis3/`` paths).
    gdal_env : dict
        GDAL options on top of cubestream's defaults (credentials come from the environment).
    store : str
        Zarr store; each cube becomes its group ``cube_id``.
    days : int
        Items held in memory at once (all of them: the original pipeline).

    Returns
    -------
    dict
        The tile, its items, the days held at once and the bytes of that resident array.
    """
    import rasterio
    import zarr

    root = zarr.open_group(store, mode="a", zarr_format=3)
    bands = [[_path(i.hrefs[band], bucket) for band in BANDS] for i in items]
    scl = [[_path(i.hrefs[SCL], bucket)] for i in items]
    groups = {}
    for cube in cubes:
        group = root.create_group(str(cube["cube_id"]), overwrite=True)
        groups[str(cube["cube_id"])] = (
            group.create_array("s2", shape=(len(items), len(bands[0]), BOX, BOX), dtype="uint16"),
            group.create_array("scl", shape=(len(items), BOX, BOX), dtype="uint8"),
        )
    resident = 0
    options = {k: int(v) if v.isdigit() else v for k, v in gdal_options(gdal_env).items()}
    with rasterio.Env(**options):
        for start in range(0, len(items), days):
            reflectance = _read(bands[start : start + days], np.dtype("uint16"))
            classes = _read(scl[start : start + days], np.dtype("uint8"))
            resident = max(resident, reflectance.nbytes + classes.nbytes)
            stop = start + len(reflectance)
            for cube in cubes:
                top, left = int(cube["row"]) * BOX, int(cube["col"]) * BOX
                s2, cl = groups[str(cube["cube_id"])]
                s2[start:stop] = reflectance[:, :, top : top + BOX, left : left + BOX]
                cl[start:stop] = classes[:, 0, top : top + BOX, left : left + BOX]
            del reflectance, classes
    return {"tile": tile, "items": len(items), "days_in_memory": days, "resident_bytes": resident}


def _tile_items(cubes: pd.DataFrame, stac: str, spec: ReplicaSpec) -> dict[str, list[S2Item]]:
    items = {}
    for tile, rows in cubes.groupby("tile"):
        bbox = (
            float(rows["min_lon"].min()),
            float(rows["min_lat"].min()),
            float(rows["max_lon"].max()),
            float(rows["max_lat"].max()),
        )
        items[str(tile)] = search_items(stac, str(tile), bbox, spec.start, spec.end)
    return items


def run_whole_tile(
    cluster: Cluster, cubes: pd.DataFrame, spec: ReplicaSpec, store: Path
) -> dict[str, Any]:
    """Time the whole-tile build of ``cubes``: one task per tile on a fresh LocalCluster.

    The cluster's workers get no memory limit (a whole tile is larger than the other builds'
    limit); the days held at once are all of a tile's items unless they do not fit in half of
    the memory available now (see :func:`days_in_memory`).
    """
    import psutil
    import zarr

    zarr.open_group(str(store), mode="w", zarr_format=3)
    items = _tile_items(cubes, cluster.endpoints.stac_api, spec)
    longest = max(len(found) for found in items.values())
    available = int(psutil.virtual_memory().available)
    days = days_in_memory(longest, available)
    by_tile = {str(t): rows.to_dict("records") for t, rows in cubes.groupby("tile")}

    def work(client: Any, env: dict[str, str]) -> list[dict[str, Any]]:
        futures = [
            client.submit(
                tile_cubes,
                tile,
                items[tile],
                rows,
                bucket=cluster.endpoints.bucket,
                gdal_env=env,
                store=str(store),
                days=days,
                pure=False,
            )
            for tile, rows in by_tile.items()
        ]
        results: list[dict[str, Any]] = client.gather(futures)
        return results

    results, figures = on_cluster(replace(cluster, memory_limit="0"), len(cubes), work)
    return {
        **figures,
        "writes": "raw cubes sliced from the resident tile, a Zarr group per cube",
        "tiles": results,
        "whole_tile_days": longest,
        "days_in_memory": days,
        "whole_tile_in_memory": days >= longest,
        "memory_available_mb_before": round(available / 1e6, 1),
        "resident_mb": round(max(r["resident_bytes"] for r in results) / 1e6, 1),
    }
