"""Sentinel-2's 10 m and 20 m pixels onto a coarser grid of the same tile, without a warp.

A Sentinel-2 tile's 10, 20 and 60 m rasters share their upper-left corner and CRS, and so does
the 30 m grid cubestream builds on. A 30 m pixel then covers exactly 3 x 3 pixels at 10 m, or
1.5 x 1.5 at 20 m (areas 1, 1/2, 1/2, 1/4). :func:`aggregate` takes a window's native
pixels, read plainly (decode only: :mod:`cubestream.sources.cogread`), and averages them in
integer arithmetic, each native pixel weighted by the area it shares with the coarse pixel,
no-data pixels left out, the mean rounded half up; ``nearest`` takes the native pixel under the
coarse pixel's centre. This is what GDAL's warper computes with ``average`` / ``nearest``
resampling (:class:`WarpedVRT`, the path stackstac takes), without its per-pixel coordinate
transforms, which cost about twice the decode of the same blocks.

The one difference: GDAL computes the area weights in floating point from transformed
coordinates, so where the mean is exactly a half (possible only at a no-data edge, where an even
number of native pixels is valid) it may round down where this rounds up: one digital number,
on such pixels only (tested against the warp on the replica's tiles).

:func:`plan_aggregation` says whether a source raster and target grid are so aligned; any other
pair (another CRS, a shifted or rotated grid, an upsampling) goes through the warp.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.transform import Affine
from rasterio.windows import Window

__all__ = ["Aggregation", "aggregate", "plan_aggregation"]

_TOLERANCE = 1e-6
"""Relative tolerance on pixel sizes and corner offsets (metres are given to the micrometre)."""


@dataclass(frozen=True)
class Aggregation:
    """How a source raster's pixels fall into a target grid's.

    Attributes
    ----------
    repeat : int
        Source pixel side in common cells (1 for 10 m into 30 m, 2 for 20 m).
    block : int
        Target pixel side in common cells (3 for 30 m).
    """

    repeat: int
    block: int

    def source_window(self, row: int, col: int, height: int, width: int) -> Window:
        """The source pixels under a target window ``(row, col, height, width)``.

        Rounded outwards to whole source pixels; :func:`aggregate` trims the extra cells.
        """
        r0, c0 = (row * self.block) // self.repeat, (col * self.block) // self.repeat
        r1 = -(-((row + height) * self.block) // self.repeat)
        c1 = -(-((col + width) * self.block) // self.repeat)
        return Window(c0, r0, c1 - c0, r1 - r0)

    def offset(self, row: int, col: int, source: Window) -> tuple[int, int]:
        """Where target pixel ``(row, col)`` starts in ``source``'s pixels, in common cells.

        The ``offset`` :func:`aggregate` takes for the values of :meth:`source_window`.
        """
        return (
            row * self.block - int(source.row_off) * self.repeat,
            col * self.block - int(source.col_off) * self.repeat,
        )


def _multiple(value: float, unit: float) -> int | None:
    """``value / unit`` if it is a whole number (within :data:`_TOLERANCE`), else None."""
    ratio = value / unit
    nearest = round(ratio)
    return int(nearest) if abs(ratio - nearest) <= _TOLERANCE * max(1.0, abs(ratio)) else None


def plan_aggregation(source: Affine, target: Affine) -> Aggregation | None:
    """The :class:`Aggregation` of ``source`` pixels into ``target`` pixels, or None.

    Both transforms must be north-up with square pixels, the target's pixels larger, both
    sizes whole multiples of a common cell (10 m for Sentinel-2), and the corners a whole number
    of target pixels apart. The CRS is the caller's to compare.
    """
    if source.b or source.d or target.b or target.d:
        return None
    if not (source.a > 0 and target.a > source.a and source.e == -source.a):
        return None
    if target.e != -target.a:
        return None
    cell = _cell(source.a, target.a)
    if cell is None:
        return None
    cols = _multiple(target.c - source.c, target.a)
    rows = _multiple(source.f - target.f, target.a)
    if cols is None or rows is None or cols or rows:
        return None
    repeat, block = _multiple(source.a, cell), _multiple(target.a, cell)
    if repeat is None or block is None:
        return None
    return Aggregation(repeat=repeat, block=block)


def _cell(source: float, target: float) -> float | None:
    """The largest common cell of two pixel sizes given in whole centimetres, else None."""
    a, b = _multiple(source, 0.01), _multiple(target, 0.01)
    if not a or not b:
        return None
    return math.gcd(a, b) * 0.01


def aggregate(
    values: np.ndarray,
    plan: Aggregation,
    offset: tuple[int, int],
    shape: tuple[int, int],
    resampling: str,
    nodata: float,
) -> np.ndarray:
    """Aggregate source pixels ``values`` into a target window of ``shape``.

    Parameters
    ----------
    values : ndarray, 2-D
        Source pixels from :meth:`Aggregation.source_window` of the target window.
    plan : Aggregation
        How the pixels nest.
    offset : tuple of int
        ``(row, col)`` of the target window's corner in common cells, counted from the source
        window's corner (non-zero where that window was rounded outwards).
    shape : tuple of int
        ``(height, width)`` of the target window.
    resampling : {"average", "nearest"}
        Area-weighted mean of the valid pixels, rounded half up (no data where none is valid);
        or the pixel under the centre.
    nodata : number
        The source's no-data value (left out of means, and the result where nothing is valid).

    Returns
    -------
    ndarray
        ``shape``, the dtype of ``values``.
    """
    height, width = shape
    b, centre = plan.block, plan.block // 2
    if resampling == "nearest":
        rows = _cells(values, plan.repeat, offset[0], height * b, axis=0)[centre::b]
        return np.ascontiguousarray(
            _cells(rows, plan.repeat, offset[1], width * b, axis=1)[:, centre::b]
        )
    if resampling != "average":
        raise ValueError(f"no aggregation for {resampling!r} resampling; use the warp")
    valid = None if nodata == 0 else values != nodata
    data = values if valid is None else np.where(valid, values, 0)
    total = _block_sums(data, plan, offset, shape)
    if values.all() if valid is None else valid.all():  # no no-data: b * b cells each
        cells = b * b
        return ((2 * total + cells) // (2 * cells)).astype(values.dtype)
    flags = values != 0 if valid is None else valid
    count = _block_sums(flags.view(np.uint8), plan, offset, shape)
    mean = (2 * total + count) // np.maximum(2 * count, 1)
    return np.where(count > 0, mean, nodata).astype(values.dtype)


def _cells(values: np.ndarray, repeat: int, start: int, length: int, axis: int) -> np.ndarray:
    """``values`` cut into common cells along ``axis`` (each pixel ``repeat`` times), trimmed."""
    cells = np.repeat(values, repeat, axis=axis) if repeat > 1 else values
    index = [slice(None), slice(None)]
    index[axis] = slice(start, start + length)
    return cells[tuple(index)]


def _block_sums(
    values: np.ndarray, plan: Aggregation, offset: tuple[int, int], shape: tuple[int, int]
) -> np.ndarray:
    """Sums of the common cells of each target pixel: one axis, then the other."""
    b = plan.block
    rows = _cells(values, plan.repeat, offset[0], shape[0] * b, axis=0)
    summed = rows[0::b].astype(np.uint32)
    for k in range(1, b):
        summed += rows[k::b]
    cols = _cells(summed, plan.repeat, offset[1], shape[1] * b, axis=1)
    out = cols[:, 0::b].copy()
    for k in range(1, b):
        out += cols[:, k::b]
    return out
