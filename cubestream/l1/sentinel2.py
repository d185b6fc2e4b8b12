"""Sentinel-2 of one tile as lazy cube arrays: read in COG-block chunks, cut per box, fused per day.

The data flow of :func:`cube_arrays`, for one tile:

1. Stack (stackstac) every item on the tile's own 30 m grid, the full 3660 px from its upper-left
   corner, in read chunks of one item x all assets x ``read_block`` px a side. The chunk grid
   starts at the tile corner like the COG block grid, so at 30 m a 1024 px chunk is exactly one
   COG block (and covers 8 x 8 boxes), and a 30 m source matching the grid is read as it is,
   without a warped VRT. Reflectance is stacked with average resampling (it aggregates the 10 m
   / 20 m layout of the AWS archive), SCL with nearest.
2. Cut every box (128 x 128) out of its read chunk and regroup its items by time chunk (the
   items of ``days_per_chunk`` days).
3. Per time chunk, subtract each item's processing-baseline offset and fuse the items of one day
   (split datatakes) by taking, per pixel, the first item with data (:func:`fuse_days`).

Only the read chunks under some box are ever computed, so only the COG blocks under the boxes
are fetched, each once per build when the writes share one graph (see
:func:`cubestream.l1.build.tile_writes`); a read chunk holds 9 x 1024 x 1024 uint16 (19 MB).
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from cubestream.l1.plan import TilePlan

__all__ = [
    "BAND_ASSETS",
    "BANDS",
    "READ_BLOCK",
    "SCL_ASSET",
    "cube_arrays",
    "fuse_days",
    "tile_stack",
]

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
BAND_ASSETS = ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir08", "swir16",
               "swir22")  # fmt: skip
"""Earth-search asset keys of :data:`BANDS`."""
SCL_ASSET = "scl"
BOX = 128
TILE_PIXELS = 3660
"""A Sentinel-2 tile is 109.8 km a side: 3660 px at 30 m."""
READ_BLOCK = 1024
"""Read chunk side (px at 30 m): the COG block of 30 m assets; 8 x 8 boxes."""


def tile_stack(
    plan: TilePlan, assets: tuple[str, ...], resampling: str, gdal_env: Any, block: int
) -> Any:
    """Lazy ``(item, asset, y, x)`` array of the whole tile, one item and block per chunk."""
    import stackstac
    from rasterio.enums import Resampling

    dtype = np.dtype("uint8") if assets == (SCL_ASSET,) else np.dtype("uint16")
    side = TILE_PIXELS * 30.0
    return stackstac.stack(
        list(plan.items),
        assets=list(assets),
        epsg=plan.epsg,
        resolution=30,
        bounds=(plan.x0, plan.y0 - side, plan.x0 + side, plan.y0),
        snap_bounds=False,
        resampling=Resampling[resampling],
        chunksize=(1, -1, block, block),
        dtype=dtype,
        fill_value=dtype.type(0),
        rescale=False,
        sortby_date=False,
        errors_as_nodata=(),
        gdal_env=gdal_env,
        properties=False,
        band_coords=False,
        xy_coords="topleft",
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
    for item in range(block.shape[0]):
        values = block[item]
        if offsets[item]:
            shifted = np.maximum(values.astype(np.int32) - offsets[item], 1)
            values = np.where(values > 0, shifted, 0).astype(block.dtype)
        day = out[item_day[item]]
        empty = day == 0
        day[empty] = values[empty]
    return out


def _fused(stack: Any, plan: TilePlan, offsets: bool) -> Any:
    """Apply :func:`fuse_days` chunk by chunk along time."""
    item_day = np.asarray(plan.item_day)
    item_offsets = np.asarray(plan.offsets if offsets else [0] * len(plan.items))
    starts = np.cumsum((0, *plan.item_chunks))
    day_starts = np.cumsum((0, *plan.day_chunks))

    def fuse(block: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
        assert block_info is not None
        k = block_info[0]["chunk-location"][0]
        items = slice(starts[k], starts[k + 1])
        days = item_day[items] - day_starts[k]
        return fuse_days(block, days, item_offsets[items], plan.day_chunks[k])

    chunks = (plan.day_chunks, *stack.chunks[1:])
    return da.map_blocks(fuse, stack, chunks=chunks, dtype=stack.dtype)


def _cubes(stack: Any, plan: TilePlan, offsets: bool) -> Any:
    """Cut each box, regroup its items per time chunk, fuse the days; stack the cubes."""
    cubes = []
    for row, col in zip(plan.cubes["row"], plan.cubes["col"], strict=True):
        box = stack[..., row * BOX : (row + 1) * BOX, col * BOX : (col + 1) * BOX]
        cubes.append(_fused(box.rechunk((plan.item_chunks, -1, BOX, BOX)), plan, offsets))
    return da.stack(cubes)


def cube_arrays(plan: TilePlan, gdal_env: Any, block: int = READ_BLOCK) -> tuple[Any, Any]:
    """Lazy ``s2 (cube, time, band, y, x)`` uint16 and ``scl (cube, time, y, x)`` uint8.

    Chunks: one cube, one block of ``plan.days_per_chunk`` days, all bands, 128 x 128; read in
    chunks of ``block`` px (see the module docstring).
    """
    reflectance = tile_stack(plan, BAND_ASSETS, "average", gdal_env, block)
    scl = tile_stack(plan, (SCL_ASSET,), "nearest", gdal_env, block)
    return _cubes(reflectance, plan, True), _cubes(scl, plan, False)[:, :, 0]
