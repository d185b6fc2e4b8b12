"""Scaling check of the strata step: time per tile of :func:`cubestream.sample.strata.box_strata`.

Writes the replica's strata COGs (EPSG:4326, 0.001 degree, as ``cubestream replica create``
does) for a block of neighbouring tiles, builds 26 x 26 = 676 boxes per tile and times
``box_strata`` with 1 and 2 workers (once over the tiles, then over ``--repeat`` copies of them
so that the pool's start-up is spread), then extrapolates to all of Africa (about 3000 tiles,
two million boxes). Prints one JSON document with the whole context::

    python -m benchmarks.strata_scaling [--tiles 9] [--workers 1 2] [--repeat 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import rasterio

from cubestream import __version__
from cubestream.grid import tile
from cubestream.options import add_flags, from_args, option
from cubestream.replica.spec import ReplicaSpec
from cubestream.replica.strata import write_strata
from cubestream.replica.world import World
from cubestream.sample.strata import StrataSources, box_strata

__all__ = ["Settings", "main", "measure"]

TILES = tuple(f"37M{column}{row}" for row in "UTS" for column in "BCD")
"""A block of 3 x 3 neighbouring tiles of UTM zone 37 (Kenya)."""
AFRICA_TILES = 3000
BOX_M = 3840
BOXES_A_SIDE = 26


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One run of the check: its flags (see the module's description)."""

    tiles: int = option(
        len(TILES), choices=lambda: range(1, len(TILES) + 1), help="tiles of the block to write"
    )
    workers: tuple[int, ...] = option((1, 2), nargs="+", help="worker counts to time")
    repeat: int = option(10, help="tile copies of the 2nd run")
    out: Path | None = option(None, help="also write the JSON here")


def boxes_of(tile_ids: Sequence[str]) -> pd.DataFrame:
    """26 x 26 boxes of each tile, laid out from its upper-left corner."""
    rows = []
    for tile_id in tile_ids:
        grid_tile = tile(tile_id)
        for row in range(BOXES_A_SIDE):
            for col in range(BOXES_A_SIDE):
                x_min, y_max = grid_tile.x0 + col * BOX_M, grid_tile.y0 - row * BOX_M
                rows.append(
                    {
                        "cube_id": f"{tile_id}{row:02d}{col:02d}",
                        "tile": tile_id,
                        "epsg": grid_tile.epsg,
                        "row": row,
                        "col": col,
                        "x_min": x_min,
                        "y_min": y_max - BOX_M,
                        "x_max": x_min + BOX_M,
                        "y_max": y_max,
                    }
                )
    return pd.DataFrame(rows)


def _write_strata(tile_ids: Sequence[str], directory: Path) -> float:
    start = time.perf_counter()
    write_strata(World(ReplicaSpec(tiles=tuple(tile_ids))), directory)
    return time.perf_counter() - start


def _run(boxes: pd.DataFrame, sources: StrataSources, workers: int, tiles: int) -> dict[str, Any]:
    start = time.perf_counter()
    strata = box_strata(boxes, sources, workers=workers)
    seconds = time.perf_counter() - start
    per_tile = seconds / tiles
    return {
        "workers": workers,
        "tiles": tiles,
        "seconds": round(seconds, 3),
        "seconds_per_tile": round(per_tile, 4),
        "boxes_per_second": round(len(boxes) / seconds),
        "africa_minutes": round(AFRICA_TILES * per_tile / 60, 1),
        "eligible_share": round(float(strata["eligible"].mean()), 3),
    }


def measure(
    tile_ids: Sequence[str], workers: Sequence[int], directory: Path, repeat: int = 1
) -> dict[str, Any]:
    """Write the strata of the tiles' world and time ``box_strata`` with each worker count.

    The first run of each worker count reads the tiles once (cold GDAL block cache in each
    process); with ``repeat > 1`` a second run reads them ``repeat`` times under distinct tile
    labels, so that the pool's start-up is spread over more tiles.
    """
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:  # keeps its memory out of ours
        written = pool.submit(_write_strata, tile_ids, directory).result()
    strata_dir = directory / "strata"
    sources = StrataSources(
        climate=str(strata_dir / "climate.tif"),
        landcover=str(strata_dir / "landcover.tif"),
        geomorphons=str(strata_dir / "geomorphons.tif"),
    )
    with rasterio.open(sources.landcover) as dataset:
        raster = {"width": dataset.width, "height": dataset.height, "res": dataset.res[0]}
    boxes = boxes_of(tile_ids)
    repeated = pd.concat(
        [boxes.assign(tile=boxes["tile"] + f"/{copy}") for copy in range(repeat)],
        ignore_index=True,
    )
    runs = []
    for count in workers:
        runs.append(_run(boxes, sources, count, len(tile_ids)))
        if repeat > 1:
            runs.append(_run(repeated, sources, count, len(tile_ids) * repeat))
    return {
        "boxes_per_tile": BOXES_A_SIDE**2,
        "tile_ids": list(tile_ids),
        "raster": raster,
        "resolution_m": sources.resolution,
        "strata_write_seconds": round(written, 1),
        "runs": runs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        "context": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "gdal": rasterio.__gdal_version__,
            "rasterio": rasterio.__version__,
            "cubestream": __version__,
            "machine": platform.machine(),
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: run :func:`measure` and print (and optionally write) its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_flags(parser, Settings)
    settings: Settings = from_args(Settings, parser.parse_args(argv))
    with tempfile.TemporaryDirectory() as directory:
        tiles = TILES[: settings.tiles]
        report = measure(tiles, settings.workers, Path(directory), settings.repeat)
    text = json.dumps(report, indent=2)
    print(text)
    if settings.out:
        settings.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
