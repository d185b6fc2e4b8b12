"""The decode ceiling of the very COG blocks a level-1 build reads, on this machine, now.

:func:`decode_ceiling` decodes every listed block (full-resolution, block-aligned windows of
local COGs) in three ways and times each, once, the files read beforehand into the page cache
(untimed) and every block decoded once (GDAL's block cache never serves a block):

- ``rasterio_1``: rasterio on one thread, every dataset open beforehand (GDAL's TIFF driver:
  the read, the inflate and the predictor undone; what the build's reads cost at best);
- ``rasterio_all``: the same blocks over a pool of one thread per core, each thread with its
  own open datasets (GDAL releases the GIL): the ceiling the build is compared with;
- ``libdeflate_1`` / ``libdeflate_all``: the raw block bytes (TIFF offsets and sizes), read
  beforehand (untimed), inflated and the horizontal predictor undone by the build's own decode
  (:meth:`cubestream.sources.tiffraw.RawTiles.inflate`); absent where the COGs are not DEFLATE
  tiles that the build decodes so.

Each gives wall seconds, CPU seconds (which a loaded machine inflates far less than wall time)
and decoded MB/s (the blocks' pixels, ``block x block x itemsize``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import Window

from cubestream.sources.tiffraw import RawTiles, raw_tiles

__all__ = ["CogBlocks", "decode_ceiling"]


@dataclass(frozen=True, kw_only=True)
class CogBlocks:
    """The blocks of one local COG that a build reads: ``(row, col)`` on its block grid."""

    path: Path
    blocks: tuple[tuple[int, int], ...]


def _jobs(cogs: Sequence[CogBlocks]) -> list[tuple[Path, int, int]]:
    return [(cog.path, row, col) for cog in cogs for row, col in cog.blocks]


def _window(src: Any, row: int, col: int) -> Window:
    height, width = src.block_shapes[0]
    y, x = row * height, col * width
    return Window(x, y, min(width, src.width - x), min(height, src.height - y))


def _open_all(jobs: list[tuple[Path, int, int]]) -> dict[Path, Any]:
    return {path: rasterio.open(path, sharing=False) for path in {job[0] for job in jobs}}


def _read_group(datasets: dict[Path, Any], jobs: list[tuple[Path, int, int]]) -> int:
    decoded = 0
    for path, row, col in jobs:
        src = datasets[path]
        decoded += int(src.read(1, window=_window(src, row, col)).nbytes)
    return decoded


def _timed(fn: Callable[[], int]) -> dict[str, float]:
    """Wall and CPU seconds (this process, every thread) of ``fn``, and the bytes it decoded."""
    started, cpu = time.perf_counter(), time.process_time()
    decoded = fn()
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(time.process_time() - cpu, 3),
        "decoded_mb": round(decoded / 1e6, 1),
        "decoded_mb_per_s": round(decoded / 1e6 / max(seconds, 1e-9), 1),
    }


def _rasterio(jobs: list[tuple[Path, int, int]], threads: int) -> dict[str, float]:
    """One group of blocks per thread, each group with its own datasets, open beforehand."""
    groups = [jobs[i::threads] for i in range(threads)]
    for path in {job[0] for job in jobs}:
        path.read_bytes()  # untimed: the files in the page cache (GDAL's block cache stays cold)
    datasets = [_open_all(group) for group in groups]
    try:
        with ThreadPoolExecutor(threads) as pool:
            return _timed(lambda: sum(pool.map(_read_group, datasets, groups)))
    finally:
        for opened in datasets:
            for src in opened.values():
                src.close()


def _libdeflate(jobs: list[tuple[Path, int, int]], threads: int) -> dict[str, float] | None:
    """The build's tile decode of the blocks' bytes, read beforehand, on ``threads``."""
    datasets = _open_all(jobs)
    try:
        found = {path: raw_tiles(src) for path, src in datasets.items()}
        tiles = {path: t for path, t in found.items() if t is not None}
        if len(tiles) < len(found):
            return None
        raws = [(tiles[path], tiles[path].read(row, col), row, col) for path, row, col in jobs]

        def decode(raw: tuple[RawTiles, bytes | None, int, int]) -> int:
            tile, data, row, col = raw
            return int(tile.inflate(data, row, col).nbytes)

        with ThreadPoolExecutor(threads) as pool:
            return _timed(lambda: sum(pool.map(decode, raws)))
    finally:
        for src in datasets.values():
            src.close()


def decode_ceiling(cogs: Sequence[CogBlocks], threads: int | None = None) -> dict[str, Any]:
    """Decode the blocks of ``cogs`` on one thread and on ``threads`` (the cores); time each."""
    jobs = _jobs(cogs)
    cores = threads or os.cpu_count() or 1
    out: dict[str, Any] = {
        "blocks": len(jobs),
        "cogs": len(cogs),
        "threads_all": cores,
        "rasterio_1": _rasterio(jobs, 1),
        "rasterio_all": _rasterio(jobs, cores),
    }
    for name, count in (("libdeflate_1", 1), ("libdeflate_all", cores)):
        figures = _libdeflate(jobs, count)
        if figures is not None:
            out[name] = figures
    return out
