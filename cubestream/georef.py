"""Where the stores' pixels are on the Earth: CF grid mappings, coordinate attributes, opens.

An L1 tile group has one CRS (the tile's UTM zone): ``spatial_ref`` holds it as a CF grid mapping
(``crs_wkt`` and ``spatial_ref`` WKT, as GDAL and rioxarray read it) and ``easting``/``northing``
give every cube's UTM pixel centres. An L2 store mixes tiles, so each sample carries its
``epsg``, ``x_min`` and ``y_max``. :func:`open_l1_cube` and :func:`open_l2_sample` return one cube
or sample as an :class:`xarray.Dataset` with UTM ``x``/``y`` and the CRS set through rioxarray,
ready for ``.rio.reproject``, ``.rio.to_raster`` or ``.rio.transform()``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cubestream.storage import zarr_store

__all__ = [
    "CUBE_ATTRS",
    "GEO_COORDINATES",
    "L2_EXTRA_ATTRS",
    "grid_mapping_attrs",
    "open_l1_cube",
    "open_l2_sample",
]

PIXEL_M = 30.0
"""Pixel size of both stores (m)."""

GEO_COORDINATES = ("easting", "northing")
"""The per-cube UTM coordinate arrays of an L1 tile group."""

_EDGE = "the cube's {} edge in the tile's UTM CRS"
CUBE_ATTRS: dict[str, dict[str, str]] = {
    "row": {"units": "1", "long_name": "box row on the tile's 3840 m grid (0 at the top)"},
    "col": {"units": "1", "long_name": "box column on the tile's 3840 m grid (0 at the left)"},
    "x_min": {"units": "m", "long_name": _EDGE.format("left")},
    "y_min": {"units": "m", "long_name": _EDGE.format("bottom")},
    "x_max": {"units": "m", "long_name": _EDGE.format("right")},
    "y_max": {"units": "m", "long_name": _EDGE.format("top")},
    "lon": {"units": "degrees_east", "long_name": "longitude of the cube's centre (WGS84)"},
    "lat": {"units": "degrees_north", "long_name": "latitude of the cube's centre (WGS84)"},
    "min_lon": {"units": "degrees_east", "long_name": "western bound of the cube (WGS84)"},
    "min_lat": {"units": "degrees_north", "long_name": "southern bound of the cube (WGS84)"},
    "max_lon": {"units": "degrees_east", "long_name": "eastern bound of the cube (WGS84)"},
    "max_lat": {"units": "degrees_north", "long_name": "northern bound of the cube (WGS84)"},
}
"""Units and long names of the per-cube coordinates of an L1 tile group."""

L2_EXTRA_ATTRS: dict[str, dict[str, str]] = {
    "tile": {"long_name": "Sentinel-2 tile (L1 group) of the sample's cube"},
    "window": {"units": "1", "long_name": "index of the window among the cube's windows"},
    "epsg": {"units": "1", "long_name": "EPSG code of the sample's UTM CRS"},
    "x_min": {"units": "m", "long_name": "the sample's left edge in its UTM CRS (epsg)"},
    "y_max": {"units": "m", "long_name": "the sample's top edge in its UTM CRS (epsg)"},
    "lon": CUBE_ATTRS["lon"],
    "lat": CUBE_ATTRS["lat"],
    "track": {
        "long_name": "test track: iid, ood_space, ood_time or ood_space_time ('' for train/val)"
    },
}
"""Units and long names of the per-sample coordinates of an L2 store."""


def grid_mapping_attrs(epsg: int) -> dict[str, Any]:
    """CF grid-mapping attributes of EPSG ``epsg`` (``crs_wkt``, ``spatial_ref``, parameters)."""
    from pyproj import CRS

    crs = CRS.from_epsg(epsg)
    attrs: dict[str, Any] = {k: _plain(v) for k, v in crs.to_cf().items()}
    attrs["spatial_ref"] = crs.to_wkt()
    attrs["epsg"] = int(epsg)
    return attrs


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _axis(name: str) -> dict[str, str]:
    return {"units": "m", "standard_name": f"projection_{name}_coordinate"}


def _utm(ds: Any, epsg: int, x: np.ndarray, y: np.ndarray) -> Any:
    """``ds`` with UTM pixel centres as ``x``/``y`` and EPSG ``epsg`` as its rioxarray CRS."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    ds = ds.assign_coords(
        x=("x", np.asarray(x, np.float64), _axis("x")),
        y=("y", np.asarray(y, np.float64), _axis("y")),
    )
    return ds.rio.write_crs(f"EPSG:{epsg}").rio.set_spatial_dims(x_dim="x", y_dim="y")


def open_l1_cube(
    url: str, tile: str, cube: str, storage_options: dict[str, Any] | None = None
) -> Any:
    """One cube of an L1 tile group, with UTM ``x``/``y`` and the tile's CRS.

    Parameters
    ----------
    url : str
        The L1 store (local path or ``s3://`` URL).
    tile : str
        The tile group, e.g. ``"37MBU"``.
    cube : str
        The cube id (a value of the ``cube`` coordinate).
    storage_options : dict, optional
        fsspec options for remote stores.

    Returns
    -------
    xarray.Dataset
        The cube's gridded variables (``s2``, ``scl``, ``dem``, ...), lazily, georeferenced.
    """
    import xarray as xr

    ds = xr.open_zarr(zarr_store(url, storage_options), group=tile, consolidated=None)
    one = ds.sel(cube=cube)
    epsg = int(ds["spatial_ref"].attrs["epsg"])
    easting, northing = one["easting"].values, one["northing"].values
    return _utm(one.drop_vars(["easting", "northing"]), epsg, easting, northing)


def open_l2_sample(url: str, index: int, storage_options: dict[str, Any] | None = None) -> Any:
    """Sample ``index`` of an L2 store, with UTM ``x``/``y`` and its own CRS (``epsg``).

    Returns
    -------
    xarray.Dataset
        The sample's variables, lazily, georeferenced: pixel ``(y, x)`` is centred at
        ``(x_min + x_offset, y_max + y_offset)`` in EPSG ``epsg``.
    """
    import xarray as xr

    ds = xr.open_zarr(zarr_store(url, storage_options), consolidated=None)
    one = ds.isel(sample=int(index))
    epsg = int(one["epsg"].values)
    x = float(one["x_min"].values) + np.asarray(ds["x"].values, np.float64)
    y = float(one["y_max"].values) + np.asarray(ds["y"].values, np.float64)
    return _utm(one, epsg, x, y)
