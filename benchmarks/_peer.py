"""The peer of the level-1 build: one minicube at a time, the way minicube tools make them.

cubo and earthnet-minicuber build each minicube on its own: search the STAC API around the cube,
make a fresh ``stackstac.stack`` with the cube's bounds, compute it and write the cube out
(from local paths, :mod:`benchmarks.l1_bytes` gives it the replica's items file instead of the
API: the same items, filtered in the task).
:func:`peer_cube` does exactly that for one cube, in one Dask task (the stack is computed with
the synchronous scheduler on the worker's thread), reading the same assets with the same GDAL
options, resampling and grid as cubestream. It writes the raw stacks (items not fused by day,
processing-baseline offsets not removed: the tools leave that to the user) to a throwaway Zarr
group per cube.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from cubestream.sources.config import layered_env
from cubestream.sources.sentinel2 import BANDS, SCL, names_tile, to_s2_item
from cubestream.sources.stac import search_items

__all__ = ["peer_cube"]


def _search(stac: str, collection: str, cube: dict[str, Any], period: str) -> list[Any]:
    """The cube's items: from the STAC API, or (a local items file) from the file.

    From the file, the items whose footprint meets the cube's bounds, as the API filters them.
    """
    bbox = (cube["min_lon"], cube["min_lat"], cube["max_lon"], cube["max_lat"])
    if not stac.startswith(("http://", "https://")):
        from shapely.geometry import box, shape

        start, end = (dt.date.fromisoformat(day) for day in period.split("/"))
        found = search_items(stac, cube["tile"], bbox, start, end, collection=collection)
        stacs = [item.stac() for item in found]
        return [item for item in stacs if shape(item["geometry"]).intersects(box(*bbox))]
    from pystac_client import Client

    search = Client.open(stac).search(collections=[collection], bbox=bbox, datetime=period)
    raw = [item for item in search.items_as_dicts() if names_tile(item, cube["tile"])]
    items = sorted((to_s2_item(item) for item in raw), key=lambda item: (item.datetime, item.id))
    return [item.stac() for item in items]


def _stack(items: list[Any], assets: tuple[str, ...], cube: dict[str, Any], gdal_env: Any) -> Any:
    import stackstac
    from rasterio.enums import Resampling

    reflectance = assets != (SCL,)
    dtype = np.dtype("uint16") if reflectance else np.dtype("uint8")
    return stackstac.stack(
        items,
        assets=list(assets),
        epsg=int(cube["epsg"]),
        resolution=30,
        bounds=(cube["x_min"], cube["y_min"], cube["x_max"], cube["y_max"]),
        snap_bounds=False,
        resampling=Resampling.average if reflectance else Resampling.nearest,
        dtype=dtype,
        fill_value=dtype.type(0),
        rescale=False,
        gdal_env=gdal_env,
    )


def peer_cube(
    cube: dict[str, Any],
    *,
    stac: str,
    collection: str,
    period: str,
    gdal_env: dict[str, str],
    store: str,
) -> dict[str, Any]:
    """Build one minicube with a fresh stackstac stack and write it to ``store``.

    Parameters
    ----------
    cube : dict
        A row of the locations table (``cube_id``, ``tile``, ``epsg``, the UTM and WGS84 bounds).
    stac : str
        STAC API URL.
    collection : str
        Collection of Sentinel-2 L2A.
    period : str
        ``start/end`` of the search.
    gdal_env : dict
        Extra GDAL options, as cubestream's build gets them.
    store : str
        Zarr store; the cube becomes its group ``cube_id``.

    Returns
    -------
    dict
        The cube id, its items, and the share of its reflectance with data.
    """
    import dask
    import xarray as xr

    items = _search(stac, collection, cube, period)
    env = layered_env(gdal_env)
    reflectance = _stack(items, BANDS, cube, env)
    scl = _stack(items, (SCL,), cube, env)
    with dask.config.set(scheduler="synchronous"):
        s2, classes = dask.compute(reflectance.data, scl.data)
    dataset = xr.Dataset(
        {"s2": (("time", "band", "y", "x"), s2), "scl": (("time", "y", "x"), classes[:, 0])}
    )
    dataset.to_zarr(store, group=str(cube["cube_id"]), mode="w", zarr_format=3, consolidated=False)
    return {"cube": str(cube["cube_id"]), "items": len(items), "data_share": float((s2 > 0).mean())}
