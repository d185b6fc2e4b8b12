"""The bytes a window read of a COG cannot avoid: its header and the blocks under the windows.

GDAL reports where each block of a tiled GeoTIFF lies in the ``TIFF`` metadata domain of a band:
``BLOCK_OFFSET_{col}_{row}`` and ``BLOCK_SIZE_{col}_{row}`` (block column first; a block left out
of a sparse file has neither). A COG keeps its image file directories and their tile offset and
size arrays before the first block of pixels, so the header a reader needs is everything before
the smallest block offset of any level (full resolution and overviews).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.windows import from_bounds

__all__ = ["Bounds", "CogBytes", "cog_bytes", "data_blocks", "total"]

Bounds = tuple[float, float, float, float]
"""``(left, bottom, right, top)`` in the COG's CRS."""


@dataclass(frozen=True, kw_only=True)
class CogBytes:
    """What one COG holds, and what reading some windows of it needs at least.

    Attributes
    ----------
    file : int
        Size of the file.
    header : int
        Bytes before the first block of pixels of any level (the IFDs and their arrays).
    blocks : int
        Bytes of the full-resolution blocks that intersect at least one window (each block once).
    blocks_per_window : int
        Sum over the windows of the bytes of the blocks each intersects (a block shared by two
        windows counts twice: what reading each window on its own needs).
    block_count : int
        Number of blocks, with data, counted in ``blocks``.
    """

    file: int
    header: int
    blocks: int
    blocks_per_window: int
    block_count: int


def _block_size(src: Any, col: int, row: int) -> int:
    size = src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1)
    return int(size) if size else 0


def _first_block_offset(src: Any) -> int | None:
    rows, cols = _block_counts(src)
    offsets = (
        src.get_tag_item(f"BLOCK_OFFSET_{col}_{row}", "TIFF", bidx=1)
        for row in range(rows)
        for col in range(cols)
    )
    found = [int(offset) for offset in offsets if offset and int(offset) > 0]
    return min(found) if found else None


def _block_counts(src: Any) -> tuple[int, int]:
    height, width = src.block_shapes[0]
    return math.ceil(src.height / height), math.ceil(src.width / width)


def _header(path: Path, levels: int, file_size: int) -> int:
    """Smallest block offset over the full-resolution level and every overview."""
    firsts = []
    for level in range(-1, levels):
        options = {} if level < 0 else {"overview_level": level}
        with rasterio.open(path, **options) as src:
            first = _first_block_offset(src)
        if first is not None:
            firsts.append(first)
    return min(firsts, default=file_size)


def _blocks_under(src: Any, bounds: Bounds) -> set[tuple[int, int]]:
    """``(row, col)`` of the blocks a window of ``bounds`` intersects."""
    window = from_bounds(*bounds, transform=src.transform)
    height, width = src.block_shapes[0]
    rows, cols = _block_counts(src)
    row0 = max(0, math.floor(window.row_off / height))
    row1 = min(rows, math.ceil((window.row_off + window.height) / height))
    col0 = max(0, math.floor(window.col_off / width))
    col1 = min(cols, math.ceil((window.col_off + window.width) / width))
    return {(r, c) for r in range(row0, row1) for c in range(col0, col1)}


def cog_bytes(path: Path, windows: Sequence[Bounds]) -> CogBytes:
    """Header and block bytes of the COG at ``path`` for windows given by their bounds.

    Parameters
    ----------
    path : Path
        A local tiled GeoTIFF.
    windows : sequence of Bounds
        The windows read, in the COG's CRS.
    """
    with rasterio.open(path) as src:
        per_window = [_blocks_under(src, bounds) for bounds in windows]
        union: set[tuple[int, int]] = set().union(*per_window)
        sizes = {block: _block_size(src, block[1], block[0]) for block in union}
        levels = len(src.overviews(1))
    file_size = path.stat().st_size
    return CogBytes(
        file=file_size,
        header=_header(path, levels, file_size),
        blocks=sum(sizes.values()),
        blocks_per_window=sum(sizes[block] for blocks in per_window for block in blocks),
        block_count=sum(1 for size in sizes.values() if size),
    )


def data_blocks(path: Path, windows: Sequence[Bounds]) -> tuple[tuple[int, int], ...]:
    """``(row, col)`` of the full-resolution blocks with data under any of ``windows``."""
    with rasterio.open(path) as src:
        union: set[tuple[int, int]] = set().union(*(_blocks_under(src, b) for b in windows))
        return tuple(sorted(b for b in union if _block_size(src, b[1], b[0])))


def total(cogs: Iterable[CogBytes]) -> dict[str, int]:
    """Sum of each field over COGs, and their count."""
    listed = list(cogs)
    fields = ("file", "header", "blocks", "blocks_per_window", "block_count")
    return {"cogs": len(listed), **{f: sum(getattr(c, f) for c in listed) for f in fields}}
