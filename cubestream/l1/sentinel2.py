"""Sentinel-2 of one tile read in COG-block chunks, and the fusion of days.

:func:`block_read` plans (purely) the read of one chunk for the default reader,
:func:`cubestream.sources.cogread.read_windows`: the same window, grid and resampling as the
chunk of :func:`tile_stacks`, which the former ``stackstac`` reader still uses.

:func:`tile_stacks` stacks (stackstac) every item on the tile's own 30 m grid, the full 3660 px
from its upper-left corner, in read chunks of the items of one time chunk (the items of
``days_per_chunk`` days) x all assets x ``read_block`` px a side. The chunk grid starts at the
tile corner like the COG block grid, so at 30 m a 1024 px chunk is exactly one COG block (and
covers 8 x 8 boxes), and a 30 m source matching the grid is read as it is, without a warped VRT.
Reflectance is stacked with average resampling (it aggregates the 10 m / 20 m layout of the AWS
archive), SCL with nearest. Datasets are closed after each read (:mod:`._reader`).

:func:`fuse_days` subtracts each item's DN offset and fuses the items of one day (split
datatakes) by taking, per pixel, the first item with data. The items come from any catalogue
(:mod:`cubestream.sources.sentinel2`); their assets are stacked by ESA band name. Cutting the
boxes out of a read chunk and writing them is :mod:`cubestream.l1.blocks`;
:func:`remove_offset` subtracts an offset in place (the default reader does it per read).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cubestream.errors import L1Error
from cubestream.l1._reader import ClosingRioReader
from cubestream.l1.config import READ_BLOCK
from cubestream.l1.plan import TilePlan
from cubestream.sources.cogread import TargetGrid, WindowRead
from cubestream.sources.sentinel2 import BANDS, SCL

__all__ = [
    "BANDS",
    "BOX",
    "READ_BLOCK",
    "SCL",
    "block_read",
    "check_read_block",
    "fuse_days",
    "remove_offset",
    "tile_grid",
    "tile_stack",
    "tile_stacks",
]

BOX = 128
TILE_PIXELS = 3660
"""A Sentinel-2 tile is 109.8 km a side: 3660 px at 30 m."""


def tile_stack(
    plan: TilePlan, assets: tuple[str, ...], resampling: str, gdal_env: Any, block: int
) -> Any:
    """Lazy ``(item, asset, y, x)`` array of the whole tile: one time chunk and block per chunk."""
    import stackstac
    from rasterio.enums import Resampling

    dtype = np.dtype("uint8") if assets == (SCL,) else np.dtype("uint16")
    side = TILE_PIXELS * 30.0
    return stackstac.stack(
        [item.stac() for item in plan.items],
        assets=list(assets),
        epsg=plan.epsg,
        resolution=30,
        bounds=(plan.x0, plan.y0 - side, plan.x0 + side, plan.y0),
        snap_bounds=False,
        resampling=Resampling[resampling],
        chunksize=(plan.item_chunks, -1, block, block),
        dtype=dtype,
        fill_value=dtype.type(0),
        rescale=False,
        sortby_date=False,
        errors_as_nodata=(),
        gdal_env=gdal_env,
        properties=False,
        band_coords=False,
        xy_coords="topleft",
        reader=ClosingRioReader,
    ).data


def fuse_days(
    block: np.ndarray, item_day: np.ndarray, offsets: np.ndarray, n_days: int
) -> np.ndarray:
    """Fuse the items of each day: subtract the DN offset, then the first item with data wins.

    Parameters
    ----------
    block : ndarray, shape (item, asset, y, x)
        Digital numbers, 0 = no-data.
    item_day : ndarray of int
        Day (0-based, within the block) of each item.
    offsets : ndarray of int
        DN offset of each item (1000 from baseline 04.00 on, else 0).
    n_days : int
        Days in the block.
    """
    out = np.zeros((n_days, *block.shape[1:]), dtype=block.dtype)
    filled = np.zeros(n_days, dtype=bool)
    for item in range(block.shape[0]):
        values = block[item]
        if offsets[item]:
            values = values.copy()
            remove_offset(values, int(offsets[item]))
        day = out[item_day[item]]
        if not filled[item_day[item]]:
            day[...] = values
            filled[item_day[item]] = True
            continue
        empty = day == 0
        day[empty] = values[empty]
    return out


def remove_offset(values: np.ndarray, dn: int) -> None:
    """Subtract the DN offset ``dn`` in place: data stays >= 1, no-data (0) stays 0."""
    if dn == 0:
        return
    data = values > 0
    if 0 < dn < np.iinfo(values.dtype).max:
        np.maximum(values, dn + 1, out=values, where=data)
        np.subtract(values, values.dtype.type(dn), out=values, where=data)
        return
    shifted = np.maximum(values.astype(np.int64) - dn, 1)
    values[...] = np.where(data, shifted, 0).astype(values.dtype)


def tile_grid(plan: TilePlan) -> TargetGrid:
    """The tile's own 30 m grid, 3660 px a side from its upper-left corner."""
    return TargetGrid(
        epsg=plan.epsg,
        transform=(30.0, 0.0, float(plan.x0), 0.0, -30.0, float(plan.y0)),
        width=TILE_PIXELS,
        height=TILE_PIXELS,
    )


def block_read(
    plan: TilePlan,
    items: slice,
    by: int,
    bx: int,
    assets: tuple[str, ...],
    block: int,
    span: tuple[int, int, int, int] | None = None,
    warp: bool = False,
    parts: tuple[tuple[int, int, int, int], ...] = (),
) -> WindowRead:
    """The read of ``assets`` of ``plan.items[items]`` over read block ``(by, bx)`` (pure).

    The same grid and resampling as :func:`tile_stack`'s chunk ``(t, by, bx)``; its window is
    the whole block, or ``span`` ``(y0, x0, height, width)`` inside it (the window of the boxes
    a task writes). ``parts`` ``(y0, x0, height, width)`` inside the window (its boxes) are
    then all that is read: the blocks under no box are neither fetched nor decoded, and the
    result is 0 outside the parts. ``warp`` reads every off-grid asset through GDAL's warper,
    the whole window (:class:`~cubestream.sources.cogread.WindowRead`).
    """
    row, col = by * block, bx * block
    height, width = min(block, TILE_PIXELS - row), min(block, TILE_PIXELS - col)
    if span is not None:
        y0, x0, h, w = span
        row, col = row + y0, col + x0
        height, width = min(h, height - y0), min(w, width - x0)
    scl = assets == (SCL,)
    return WindowRead(
        hrefs=tuple(tuple(item.hrefs[a] for a in assets) for item in plan.items[items]),
        grid=tile_grid(plan),
        window=(row, col, height, width),
        resampling="nearest" if scl else "average",
        dtype="uint8" if scl else "uint16",
        warp=warp,
        parts=parts,
    )


def check_read_block(block: int) -> int:
    """``block`` if it is a read chunk side both readers can cut boxes from, else an L1Error."""
    if block <= 0 or block % BOX:
        raise L1Error(
            f"read block {block} px is not a positive multiple of the box side ({BOX} px); "
            f"use {READ_BLOCK} (the COG block at 30 m) or another multiple of {BOX}"
        )
    return block


def tile_stacks(plan: TilePlan, gdal_env: Any, block: int = READ_BLOCK) -> tuple[Any, Any]:
    """Lazy reflectance ``(item, band, y, x)`` uint16 and SCL ``(item, 1, y, x)`` uint8 of a tile.

    Chunks: the items of one time chunk x all bands x ``block`` px a side, on the tile's grid
    from its upper-left corner (see the module docstring).
    """
    check_read_block(block)
    reflectance = tile_stack(plan, BANDS, "average", gdal_env, block)
    scl = tile_stack(plan, (SCL,), "nearest", gdal_env, block)
    return reflectance, scl
