"""Windows of one open COG read block by block: each block under them fetched and decoded once.

:func:`read_blockwise` reads a list of windows of one open raster (the boxes of a level-1 read
chunk, at the raster's own resolution). Only the blocks under some window are read, in runs of
neighbouring blocks of one block row (one GDAL read per run, so its byte ranges are fetched
together; a local DEFLATE COG's tiles are decoded from their bytes with libdeflate instead,
:mod:`cubestream.sources.tiffraw`), and each block is held only until the last window that
needs it has been read:

- every block under the windows is fetched and decoded once, and a block under none never;
- the memory held is the blocks of the windows in flight: with windows sorted by row, at most
  two block rows of their span (12 blocks, 24 MB, for a 2048 px read chunk at 10 m);
- none of this depends on GDAL's block cache (``GDAL_CACHEMAX``), which every reading thread
  of a process shares and which evicts blocks a later window needs when many threads read.

Pixels of a window outside the raster are its no-data value (0 where it has none). Reading the
windows through the blocks gives the same pixels as reading each window on its own.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rasterio.windows import Window

from cubestream.sources.tiffraw import RawTiles, raw_tiles

__all__ = ["read_blockwise"]

Block = tuple[int, int]
"""``(row, col)`` on the raster's block grid."""


@dataclass(frozen=True)
class _Layout:
    """A raster's size and block shape, and the blocks under a window."""

    height: int
    width: int
    block_height: int
    block_width: int

    def blocks(self, window: Window) -> list[Block]:
        """Blocks of the raster that ``window`` overlaps (none where it lies outside)."""
        row0, col0 = max(int(window.row_off), 0), max(int(window.col_off), 0)
        row1 = min(int(window.row_off + window.height), self.height)
        col1 = min(int(window.col_off + window.width), self.width)
        if row1 <= row0 or col1 <= col0:
            return []
        rows = range(row0 // self.block_height, (row1 - 1) // self.block_height + 1)
        cols = range(col0 // self.block_width, (col1 - 1) // self.block_width + 1)
        return [(r, c) for r in rows for c in cols]

    def bounds(self, block: Block) -> tuple[int, int, int, int]:
        """``(row0, col0, row1, col1)`` of ``block``, clipped to the raster."""
        row0, col0 = block[0] * self.block_height, block[1] * self.block_width
        return (
            row0,
            col0,
            min(row0 + self.block_height, self.height),
            min(col0 + self.block_width, self.width),
        )


def _runs(blocks: set[Block]) -> dict[Block, tuple[Block, int]]:
    """The run of neighbouring blocks of one row that each block belongs to: ``(first, length)``."""
    runs: dict[Block, tuple[Block, int]] = {}
    ordered = sorted(blocks)
    start = 0
    for i in range(1, len(ordered) + 1):
        at_end = i == len(ordered)
        if at_end or ordered[i] != (ordered[i - 1][0], ordered[i - 1][1] + 1):
            run = ordered[start:i]
            for block in run:
                runs[block] = (run[0], len(run))
            start = i
    return runs


def _decode_run(
    src: Any, layout: _Layout, first: Block, length: int, tiles: RawTiles | None
) -> dict[Block, np.ndarray]:
    """Decode a run of blocks: each from its bytes (``tiles``), else with one GDAL read."""
    if tiles is not None:
        return {
            (first[0], first[1] + k): tiles.decode(first[0], first[1] + k) for k in range(length)
        }
    row0, col0, row1, _ = layout.bounds(first)
    _, _, _, col1 = layout.bounds((first[0], first[1] + length - 1))
    values = src.read(1, window=Window(col0, row0, col1 - col0, row1 - row0))
    width = layout.block_width
    return {(first[0], first[1] + k): values[:, k * width : (k + 1) * width] for k in range(length)}


def read_blockwise(
    src: Any, windows: Sequence[Window], *, raw: bool = True
) -> Iterator[np.ndarray]:
    """The pixels of band 1 of ``src`` under each of ``windows``, in their order.

    Parameters
    ----------
    src : rasterio dataset
        The open raster (tiled or striped).
    windows : sequence of Window
        Whole-pixel windows of its grid; sorted by row, they hold the fewest blocks at once.
    raw : bool
        Decode the tiles of a local DEFLATE COG from their bytes
        (:func:`~cubestream.sources.tiffraw.raw_tiles`); False: always through GDAL.

    Yields
    ------
    ndarray
        Each window's pixels, ``(height, width)`` of the raster's dtype; a window inside one
        block is a read-only view of it (copy it to keep or change it).
    """
    block_height, block_width = src.block_shapes[0]
    layout = _Layout(src.height, src.width, block_height, block_width)
    last: dict[Block, int] = {}
    for index, window in enumerate(windows):
        for block in layout.blocks(window):
            last[block] = index
    runs = _runs(set(last))
    held: dict[Block, np.ndarray] = {}
    fill = 0 if src.nodata is None else src.nodata
    dtype = np.dtype(src.dtypes[0])
    tiles = raw_tiles(src) if raw else None
    for index, window in enumerate(windows):
        row, col = int(window.row_off), int(window.col_off)
        shape = (int(window.height), int(window.width))
        inside = row >= 0 and col >= 0 and row + shape[0] <= src.height
        inside = inside and col + shape[1] <= src.width  # then the blocks cover every pixel
        blocks = layout.blocks(window)
        for block in blocks:
            if block not in held:
                held.update(_decode_run(src, layout, *runs[block], tiles))
        if inside and len(blocks) == 1:  # within one block: a read-only view of it, no copy
            out = _cut(held[blocks[0]], layout.bounds(blocks[0]), row, col, shape)
        else:
            out = np.empty(shape, dtype=dtype) if inside else np.full(shape, fill, dtype=dtype)
            for block in blocks:
                _place(out, held[block], layout.bounds(block), row, col)
        for block in blocks:
            if last[block] == index:
                del held[block]
        yield out


def _cut(
    values: np.ndarray,
    bounds: tuple[int, int, int, int],
    row: int,
    col: int,
    shape: tuple[int, int],
) -> np.ndarray:
    """The window ``(row, col)`` of ``shape`` inside one block, as a read-only view."""
    r0, c0 = bounds[0], bounds[1]
    view = values[row - r0 : row - r0 + shape[0], col - c0 : col - c0 + shape[1]].view()
    view.flags.writeable = False
    return view


def _place(
    out: np.ndarray, values: np.ndarray, bounds: tuple[int, int, int, int], row: int, col: int
) -> None:
    """Copy the part of a block (``values`` at ``bounds``) under the window at ``(row, col)``."""
    r0, c0, r1, c1 = bounds
    top, left = max(r0, row), max(c0, col)
    bottom, right = min(r1, row + out.shape[0]), min(c1, col + out.shape[1])
    out[top - row : bottom - row, left - col : right - col] = values[
        top - r0 : bottom - r0, left - c0 : right - c0
    ]
