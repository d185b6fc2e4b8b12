"""SRTM elevation on each minicube's 30 m grid: the 1 x 1 degree tiles under a cube, warped.

The data flow of :func:`dem_cubes`, for the cubes of one tile:

1. Plan (pure): each cube's box, projected to longitude/latitude and grown by
   :data:`KERNEL_MARGIN` source pixels (the bilinear kernel reaches one pixel beyond), names
   the SRTM tiles it needs (:func:`srtm_tiles_for`).
2. Open every tile the cubes need once per call, with rasterio (``/vsis3/`` for ``s3://``,
   ``/vsicurl/`` for ``http(s)://``, under one ``rasterio.Env`` built from ``gdal_env``).
3. Per cube, mosaic: read the window of each of its tiles into one array on the tiles' common
   3 arc-second lattice (neighbouring tiles share their edge row or column, with equal values;
   no-data -32768 becomes NaN), so no seam is left between tiles.
4. Per cube, warp the mosaic onto the cube's grid, ``128 x 128`` pixels of 30 m in the tile's UTM
   CRS with the transform ``(30, 0, x_min, 0, -30, y_max)``, by bilinear resampling (GDAL's
   warper, which leaves NaN source pixels out and renormalises the kernel).

Where no SRTM covers a cube (a tile that does not exist, as over the ocean, with
``missing="nan"``, or a void in a tile) its pixels are NaN and an
:class:`~cubestream.errors.IncompleteSourceWarning` names the tiles and the cubes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.errors import RasterioIOError
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from cubestream._gdalenv import rasterio_env
from cubestream.errors import AssetNotFoundError, AssetReadError, IncompleteSourceWarning
from cubestream.l1._footprints import cube_epsg, projected_bounds
from cubestream.sources.config import gdal_options

__all__ = ["CUBE_PIXELS", "KERNEL_MARGIN", "NODATA", "RESOLUTION", "dem_cubes", "srtm_tiles_for"]

CUBE_PIXELS = 128
RESOLUTION = 30.0
NODATA = -32768
"""SRTM no-data value."""
KERNEL_MARGIN = 2
"""Source pixels read beyond each cube's footprint (the bilinear kernel needs one)."""
SRTM_PIXEL_DEG = 1.0 / 1200
"""SRTM3 pixel spacing, to size the margin before a tile is open (SRTM1 reads a bit more)."""
_NOT_FOUND = ("No such file", "key does not exist", "HTTP response code: 404")
_SCHEMES = {"s3://": "/vsis3/", "http://": "/vsicurl/http://", "https://": "/vsicurl/https://"}
Array = NDArray[np.float32]


def srtm_tiles_for(bbox: tuple[float, float, float, float]) -> list[str]:
    """Keys of the SRTM 1 x 1 degree tiles meeting a longitude/latitude bbox.

    Parameters
    ----------
    bbox : tuple of float
        ``(min_lon, min_lat, max_lon, max_lat)``.

    Returns
    -------
    list of str
        ``srtm/S02E036.tif``-style keys (named by the south-west corner), south to north, then
        west to east.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    lons = range(math.floor(min_lon), max(math.ceil(max_lon), math.floor(min_lon) + 1))
    lats = range(math.floor(min_lat), max(math.ceil(max_lat), math.floor(min_lat) + 1))
    return [_key(lon, lat) for lat in lats for lon in lons]


def _key(lon: int, lat: int) -> str:
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    return f"srtm/{ns}{abs(lat):02d}{ew}{abs(lon):03d}.tif"


def _gdal_path(prefix: str, key: str) -> str:
    """GDAL path of ``key`` below ``prefix``: ``s3://`` and ``http(s)://`` get ``/vsi...``."""
    location = f"{prefix.rstrip('/')}/{key}"
    for scheme, vsi in _SCHEMES.items():
        if location.startswith(scheme):
            return vsi + location[len(scheme) :]
    return location.removeprefix("file://")


def _raster_env(gdal_env: Mapping[str, str] | None) -> rasterio.Env:
    """A ``rasterio.Env`` of the level-1 GDAL options and ``gdal_env``.

    AWS credentials, which rasterio refuses as options, go to an ``AWSSession``.
    """
    options: dict[str, Any] = {
        k: int(v) if str(v).isdigit() else v for k, v in gdal_options(dict(gdal_env or {})).items()
    }
    cache = options.get("GDAL_CACHEMAX")
    if isinstance(cache, int) and cache < 100_000:
        # GDAL reads small values as megabytes, rasterio passes the number on as bytes
        options["GDAL_CACHEMAX"] = cache * 1024 * 1024
    return rasterio_env(options)


# --- opening the tiles --------------------------------------------------------------------------


def _open_tile(stack: ExitStack, prefix: str, key: str) -> Any | None:
    """Open one tile; ``None`` if it does not exist, an error naming it if it cannot be read."""
    path = _gdal_path(prefix, key)
    if not path.startswith("/vsi") and not os.path.exists(path):
        return None
    try:
        return stack.enter_context(rasterio.open(path))
    except RasterioIOError as exc:
        if any(text in str(exc) for text in _NOT_FOUND):
            return None
        raise AssetReadError(f"cannot read the SRTM tile {path}: {exc}") from exc


@dataclass(frozen=True)
class _Lattice:
    """The pixel lattice all tiles share: the first tile's origin and pixel size."""

    x0: float
    y0: float
    res: float

    @classmethod
    def of(cls, src: Any) -> _Lattice:
        """The lattice of an open tile."""
        return cls(x0=src.transform.c, y0=src.transform.f, res=src.transform.a)

    def offset(self, transform: Affine, path: str) -> tuple[int, int]:
        """Row and column of a tile's upper-left pixel on the lattice (checked to be on it)."""
        col, row = (transform.c - self.x0) / self.res, (self.y0 - transform.f) / self.res
        tol = 1e-9 * self.res
        on_grid = abs(transform.a - self.res) < tol and abs(transform.e + self.res) < tol
        if not on_grid or abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
            raise AssetReadError(f"the SRTM tile {path} is not on the pixel grid of the others")
        return round(row), round(col)


def _tiles(
    stack: ExitStack, prefix: str, keys: Sequence[str], missing: str
) -> tuple[dict[str, Any], list[str]]:
    """Open the tiles ``keys``; return those found and the keys missing."""
    found = {key: _open_tile(stack, prefix, key) for key in keys}
    absent = sorted(key for key, src in found.items() if src is None)
    if absent and missing == "raise":
        where = ", ".join(_gdal_path(prefix, key) for key in absent)
        raise AssetNotFoundError(
            f"SRTM tiles not found: {where}; pass missing='nan' where no SRTM exists (ocean)"
        )
    return {key: src for key, src in found.items() if src is not None}, absent


# --- mosaic and warp per cube -------------------------------------------------------------------


def _mosaic(
    sources: Sequence[Any], bounds: NDArray[np.float64], lattice: _Lattice
) -> tuple[Array, Affine]:
    """The lattice pixels around ``bounds`` (lon/lat) from ``sources``: NaN where none has data."""
    res = lattice.res
    c0 = math.floor((bounds[0] - lattice.x0) / res) - KERNEL_MARGIN
    c1 = math.ceil((bounds[2] - lattice.x0) / res) + KERNEL_MARGIN
    r0 = math.floor((lattice.y0 - bounds[3]) / res) - KERNEL_MARGIN
    r1 = math.ceil((lattice.y0 - bounds[1]) / res) + KERNEL_MARGIN
    out = np.full((r1 - r0, c1 - c0), np.nan, dtype=np.float32)
    for src in sources:
        tr, tc = lattice.offset(src.transform, src.name)
        rows = (max(r0, tr), min(r1, tr + src.height))
        cols = (max(c0, tc), min(c1, tc + src.width))
        if rows[0] >= rows[1] or cols[0] >= cols[1]:
            continue
        window = Window(cols[0] - tc, rows[0] - tr, cols[1] - cols[0], rows[1] - rows[0])
        values = src.read(1, window=window).astype(np.float32)
        values[values == (NODATA if src.nodata is None else src.nodata)] = np.nan
        target = out[rows[0] - r0 : rows[1] - r0, cols[0] - c0 : cols[1] - c0]
        np.copyto(target, values, where=np.isnan(target))
    transform = Affine(res, 0.0, lattice.x0 + c0 * res, 0.0, -res, lattice.y0 - r0 * res)
    return out, transform


def _warp(mosaic: Array, transform: Affine, x_min: float, y_max: float, epsg: int) -> Array:
    """Bilinear warp of a lon/lat mosaic onto one cube's 30 m grid."""
    out = np.full((CUBE_PIXELS, CUBE_PIXELS), np.nan, dtype=np.float32)
    reproject(
        source=mosaic,
        destination=out,
        src_transform=transform,
        src_crs="EPSG:4326",
        src_nodata=np.nan,
        dst_transform=Affine(RESOLUTION, 0.0, x_min, 0.0, -RESOLUTION, y_max),
        dst_crs=f"EPSG:{epsg}",
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    return out


# --- the entry point ----------------------------------------------------------------------------


def dem_cubes(
    prefix: str,
    cubes: pd.DataFrame,
    gdal_env: Mapping[str, str] | None = None,
    *,
    missing: Literal["raise", "nan"] = "raise",
) -> Array:
    """SRTM elevation on each cube's 30 m grid (see the module docstring).

    Parameters
    ----------
    prefix : str
        Directory (or bucket URL) holding the ``srtm/`` tiles: a path, ``s3://bucket`` or
        ``http(s)://host/bucket``.
    cubes : pandas.DataFrame
        One row per cube with ``cube_id``, ``epsg``, ``x_min``, ``y_min``, ``x_max``, ``y_max``
        (one CRS for all rows).
    gdal_env : mapping of str to str, optional
        GDAL options over :func:`cubestream.sources.config.gdal_options` (for ``/vsis3/``: endpoint,
        region, credentials; the credentials go to a rasterio ``AWSSession``).
    missing : {"raise", "nan"}
        What to do with a tile that does not exist: raise, or leave its pixels NaN (and warn).

    Returns
    -------
    numpy.ndarray
        ``(cube, 128, 128)`` float32 elevation in metres, rows north to south; NaN where no SRTM
        covers.

    Raises
    ------
    AssetNotFoundError
        If ``missing="raise"`` and a tile a cube needs does not exist (it is named).
    AssetReadError
        If a tile cannot be read or is off the others' pixel grid.
    """
    epsg = cube_epsg(cubes)
    bounds = _grown(projected_bounds(cubes, 4326))
    needed = [srtm_tiles_for(tuple(b)) for b in bounds]
    keys = sorted({key for keys in needed for key in keys})
    out = np.full((len(cubes), CUBE_PIXELS, CUBE_PIXELS), np.nan, dtype=np.float32)
    with _raster_env(gdal_env), ExitStack() as stack:
        sources, absent = _tiles(stack, prefix, keys, missing)
        lattice = _Lattice.of(next(iter(sources.values()))) if sources else None
        for i, row in enumerate(cubes.itertuples(index=False)):
            mine = [sources[key] for key in needed[i] if key in sources]
            if mine and lattice is not None:
                mosaic, transform = _mosaic(mine, bounds[i], lattice)
                out[i] = _warp(mosaic, transform, float(row.x_min), float(row.y_max), epsg)
    _report_gaps(out, list(cubes["cube_id"]), absent, prefix)
    return out


def _grown(bounds: NDArray[np.float64]) -> NDArray[np.float64]:
    margin = KERNEL_MARGIN * SRTM_PIXEL_DEG
    return bounds + np.array([-margin, -margin, margin, margin])


def _report_gaps(out: Array, cube_ids: list[Any], absent: list[str], prefix: str) -> None:
    gaps = np.isnan(out).sum(axis=(1, 2))
    if not gaps.any():
        return
    listed = ", ".join(f"{cube_ids[i]} ({gaps[i]} px)" for i in np.flatnonzero(gaps))
    tiles = f"; tiles not found under {prefix}: {absent}" if absent else ""
    warnings.warn(
        f"no SRTM elevation for part of cubes {listed}{tiles}",
        IncompleteSourceWarning,
        stacklevel=2,
    )
