"""Sentinel-2 of one tile as lazy cube arrays: stackstac on the tile's 30 m grid, cut per box.

The tile is stacked once, on its own 30 m grid from its upper-left corner, in 128 x 128 chunks, so
every box is exactly one spatial chunk and Dask reads only the COG blocks under the boxes'
windows, never the whole tile. Reflectance is stacked with average resampling (it aggregates the
10 m / 20 m layout of the AWS archive; at 30 m the grids coincide and it is a copy), SCL with
nearest. Each time chunk holds all items of its days; a blockwise step subtracts each item's
processing-baseline offset and fuses the items of one day (split datatakes) by taking, per
pixel, the first item with data.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from cubestream.l1.plan import TilePlan

__all__ = ["BAND_ASSETS", "BANDS", "SCL_ASSET", "cube_arrays", "fuse_days", "tile_stack"]

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
BAND_ASSETS = ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir08", "swir16",
               "swir22")  # fmt: skip
"""Earth-search asset keys of :data:`BANDS`."""
SCL_ASSET = "scl"
BOX = 128


def tile_stack(plan: TilePlan, assets: tuple[str, ...], resampling: str, gdal_env: Any) -> Any:
    """Lazy ``(item, asset, y, x)`` array of the tile's box grid, chunked per day block and box."""
    import stackstac
    from rasterio.enums import Resampling

    return stackstac.stack(
        list(plan.items),
        assets=list(assets),
        epsg=plan.epsg,
        resolution=30,
        bounds=plan.bounds,
        snap_bounds=False,
        resampling=Resampling[resampling],
        chunksize=(plan.item_chunks, -1, BOX, BOX),
        dtype=np.dtype("uint16") if assets != (SCL_ASSET,) else np.dtype("uint8"),
        fill_value=np.uint16(0) if assets != (SCL_ASSET,) else np.uint8(0),
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


def cube_arrays(plan: TilePlan, gdal_env: Any) -> tuple[Any, Any]:
    """Lazy ``s2 (cube, time, band, y, x)`` uint16 and ``scl (cube, time, y, x)`` uint8.

    Chunks: one cube, one block of ``plan.days_per_chunk`` days, all bands, 128 x 128.
    """
    reflectance = _fused(tile_stack(plan, BAND_ASSETS, "average", gdal_env), plan, True)
    scl = _fused(tile_stack(plan, (SCL_ASSET,), "nearest", gdal_env), plan, False)[:, 0]
    rows, cols = plan.cubes["row"].to_numpy(), plan.cubes["col"].to_numpy()

    def cut(array: Any, r: int, c: int) -> Any:
        return array[..., r * BOX : (r + 1) * BOX, c * BOX : (c + 1) * BOX]

    s2 = da.stack([cut(reflectance, r, c) for r, c in zip(rows, cols, strict=True)])
    scl_cubes = da.stack([cut(scl, r, c) for r, c in zip(rows, cols, strict=True)])
    return s2, scl_cubes
