"""Elevation on each minicube's 30 m grid: the DEM rasters under a cube, mosaicked and warped.

The DEM comes from any source of :mod:`cubestream.sources.dem` (SRTM or Copernicus tiles in a
folder or bucket, one VRT or raster, a STAC collection such as ``cop-dem-glo-30``). The data flow
of :func:`dem_cubes`, for the cubes of one tile:

1. Plan: each cube's box, projected to longitude/latitude and grown by :data:`KERNEL_MARGIN`
   SRTM3 pixels, names the rasters it needs (:meth:`DemSource.rasters
   <cubestream.sources.dem.DemSource.rasters>`: degree tiles, the one raster, or the STAC items
   meeting it).
2. Open every raster the cubes need once per call, with rasterio (``/vsis3/`` for ``s3://``,
   ``/vsicurl/`` for ``http(s)://``, under one ``rasterio.Env`` built from ``gdal_env``).
3. Per cube, mosaic: read the window of each of its rasters (the cube's box in the rasters' CRS,
   grown by :data:`KERNEL_MARGIN` pixels: the bilinear kernel reaches one pixel beyond) into one
   array on the rasters' common pixel lattice (neighbouring SRTM tiles share their edge row or
   column, with equal values; no-data becomes NaN), so no seam is left between tiles.
4. Per cube, warp the mosaic onto the cube's grid, ``128 x 128`` pixels of 30 m in the tile's UTM
   CRS with the transform ``(30, 0, x_min, 0, -30, y_max)``, by bilinear resampling (GDAL's
   warper, which leaves NaN source pixels out and renormalises the kernel).

Where no DEM covers a cube (a tile that does not exist, as over the ocean, with
``missing="nan"``, or a void in a tile) its pixels are NaN and an
:class:`~cubestream.errors.IncompleteSourceWarning` names the tiles and the cubes.
"""

from __future__ import annotations

import math
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
from rasterio.crs import CRS
from rasterio.warp import Resampling, reproject
from rasterio.windows import Window

from cubestream._gdalenv import rasterio_env
from cubestream.errors import AssetNotFoundError, AssetReadError, IncompleteSourceWarning
from cubestream.l1._footprints import cube_epsg, projected_bounds
from cubestream.sources.config import gdal_options
from cubestream.sources.dem import DemKind, DemSource, TileFolder, cells_for, open_dem_source

__all__ = ["CUBE_PIXELS", "KERNEL_MARGIN", "NODATA", "RESOLUTION", "dem_cubes", "srtm_tiles_for"]

CUBE_PIXELS = 128
RESOLUTION = 30.0
NODATA = -32768
"""SRTM no-data value."""
KERNEL_MARGIN = 2
"""Source pixels read beyond each cube's footprint (the bilinear kernel needs one)."""
SRTM_PIXEL_DEG = 1.0 / 1200
"""SRTM3 pixel spacing, to size the margin before a tile is open (SRTM1 reads a bit more)."""
DEM_EXTENSIONS = ".vrt,.hgt,.zip,.HGT,.ZIP"
"""Extensions GDAL may open over HTTP for the DEM, besides the GeoTIFF ones of the defaults."""
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
        west to east (the replica's layout; any other is found by :mod:`cubestream.sources.dem`).
    """
    return [_key(lon, lat) for lon, lat in cells_for(bbox)]


def _key(lon: int, lat: int) -> str:
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    return f"srtm/{ns}{abs(lat):02d}{ew}{abs(lon):03d}.tif"


def _raster_env(gdal_env: Mapping[str, str] | None) -> rasterio.Env:
    """A ``rasterio.Env`` of the level-1 GDAL options and ``gdal_env``.

    AWS credentials, which rasterio refuses as options, go to an ``AWSSession``.
    """
    options: dict[str, Any] = {
        k: int(v) if str(v).isdigit() else v for k, v in gdal_options(dict(gdal_env or {})).items()
    }
    allowed = str(options.get("CPL_VSIL_CURL_ALLOWED_EXTENSIONS", ""))
    if allowed:  # the DEM comes as GeoTIFF, VRT, HGT or zipped HGT
        options["CPL_VSIL_CURL_ALLOWED_EXTENSIONS"] = f"{allowed},{DEM_EXTENSIONS}"
    # PixelIsPoint rasters (the Copernicus DEM) are placed as they say, whatever the environment
    options["GTIFF_POINT_GEO_IGNORE"] = "NO"
    cache = options.get("GDAL_CACHEMAX")
    if isinstance(cache, int) and cache < 100_000:
        # GDAL reads small values as megabytes, rasterio passes the number on as bytes
        options["GDAL_CACHEMAX"] = cache * 1024 * 1024
    return rasterio_env(options)


# --- the pixel lattice -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Lattice:
    """The pixel lattice all rasters share: the first one's CRS, origin and pixel size."""

    crs: Any
    x0: float
    y0: float
    xres: float
    yres: float

    @classmethod
    def of(cls, src: Any) -> _Lattice:
        """The lattice of an open raster."""
        t = src.transform
        return cls(crs=src.crs, x0=t.c, y0=t.f, xres=t.a, yres=-t.e)

    def offset(self, src: Any) -> tuple[int, int]:
        """Row and column of a raster's upper-left pixel on the lattice (checked to be on it)."""
        t = src.transform
        col, row = (t.c - self.x0) / self.xres, (self.y0 - t.f) / self.yres
        same = abs(t.a - self.xres) < 1e-9 * self.xres and abs(t.e + self.yres) < 1e-9 * self.yres
        aligned = abs(col - round(col)) < 1e-6 and abs(row - round(row)) < 1e-6
        if not (same and aligned and t.b == 0 and t.d == 0 and src.crs == self.crs):
            raise AssetReadError(
                f"the DEM raster {src.name} is not on the pixel grid of the others (CRS, pixel"
                " size and origin must agree); build one VRT of them with gdalbuildvrt -r"
                " bilinear and point --dem at it"
            )
        return round(row), round(col)


# --- mosaic and warp per cube -------------------------------------------------------------------


def _mosaic(
    sources: Sequence[Any], bounds: NDArray[np.float64], lattice: _Lattice
) -> tuple[Array, Affine]:
    """The lattice pixels around ``bounds`` (lattice CRS) from ``sources``: NaN where no data."""
    xres, yres = lattice.xres, lattice.yres
    c0 = math.floor((bounds[0] - lattice.x0) / xres) - KERNEL_MARGIN
    c1 = math.ceil((bounds[2] - lattice.x0) / xres) + KERNEL_MARGIN
    r0 = math.floor((lattice.y0 - bounds[3]) / yres) - KERNEL_MARGIN
    r1 = math.ceil((lattice.y0 - bounds[1]) / yres) + KERNEL_MARGIN
    out = np.full((r1 - r0, c1 - c0), np.nan, dtype=np.float32)
    for src in sources:
        tr, tc = lattice.offset(src)
        rows = (max(r0, tr), min(r1, tr + src.height))
        cols = (max(c0, tc), min(c1, tc + src.width))
        if rows[0] >= rows[1] or cols[0] >= cols[1]:
            continue
        window = Window(cols[0] - tc, rows[0] - tr, cols[1] - cols[0], rows[1] - rows[0])
        values = src.read(1, window=window).astype(np.float32)
        values[values == np.float32(NODATA if src.nodata is None else src.nodata)] = np.nan
        target = out[rows[0] - r0 : rows[1] - r0, cols[0] - c0 : cols[1] - c0]
        np.copyto(target, values, where=np.isnan(target))
    x0, y0 = lattice.x0 + c0 * xres, lattice.y0 - r0 * yres
    return out, Affine(xres, 0.0, x0, 0.0, -yres, y0)


def _warp(
    mosaic: Array, transform: Affine, crs: Any, x_min: float, y_max: float, epsg: int
) -> Array:
    """Bilinear warp of a mosaic (in ``crs``) onto one cube's 30 m grid."""
    out = np.full((CUBE_PIXELS, CUBE_PIXELS), np.nan, dtype=np.float32)
    reproject(
        source=mosaic,
        destination=out,
        src_transform=transform,
        src_crs=crs,
        src_nodata=np.nan,
        dst_transform=Affine(RESOLUTION, 0.0, x_min, 0.0, -RESOLUTION, y_max),
        dst_crs=f"EPSG:{epsg}",
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    return out


# --- the entry point ----------------------------------------------------------------------------


def dem_cubes(
    source: str | DemSource,
    cubes: pd.DataFrame,
    gdal_env: Mapping[str, str] | None = None,
    *,
    missing: Literal["raise", "nan"] = "raise",
    kind: DemKind = "auto",
) -> Array:
    """Elevation on each cube's 30 m grid (see the module docstring).

    Parameters
    ----------
    source : str or DemSource
        Where the DEM is (:func:`cubestream.sources.dem.open_dem_source`): a folder, bucket or
        URL prefix of SRTM or Copernicus tiles (for SRTM the folder holding ``srtm/``, or the
        tiles themselves), a VRT or raster, a STAC items file or ``stac+https://...``.
    cubes : pandas.DataFrame
        One row per cube with ``cube_id``, ``epsg``, ``x_min``, ``y_min``, ``x_max``, ``y_max``
        (one CRS for all rows).
    gdal_env : mapping of str to str, optional
        GDAL options over :func:`cubestream.sources.config.gdal_options` (for ``/vsis3/``: endpoint,
        region, credentials; the credentials go to a rasterio ``AWSSession``).
    missing : {"raise", "nan"}
        What to do with a tile that does not exist: raise, or leave its pixels NaN (and warn).
    kind : {"auto", "srtm", "copernicus", "vrt", "stac"}
        The kind of ``source`` when it is a string; ``auto`` reads it from the location.

    Returns
    -------
    numpy.ndarray
        ``(cube, 128, 128)`` float32 elevation in metres, rows north to south; NaN where no DEM
        covers.

    Raises
    ------
    AssetNotFoundError
        If ``missing="raise"`` and a tile a cube needs does not exist (it is named), or if a
        source of unknown kind shows no tile at all (every path tried is named).
    AssetReadError
        If a raster cannot be read or is off the others' pixel grid.
    SourceKindError
        If ``source`` is ambiguous or not of ``kind``.
    """
    dem = open_dem_source(source, kind) if isinstance(source, str) else source
    epsg = cube_epsg(cubes)
    lonlat = _grown(projected_bounds(cubes, 4326))
    needed = dem.rasters(lonlat)
    names = sorted({name for names in needed for name in names})
    out = np.full((len(cubes), CUBE_PIXELS, CUBE_PIXELS), np.nan, dtype=np.float32)
    with _raster_env(gdal_env), ExitStack() as stack:
        opened = {name: dem.open(stack, name) for name in names}
        found = {name: src for name, src in opened.items() if src is not None}
        absent = [dem.where(name) for name, src in opened.items() if src is None]
        _check_found(dem, found, absent, missing)
        if found:
            lattice = _Lattice.of(next(iter(found.values())))
            bounds = _in_crs(cubes, lonlat, lattice.crs)
            for i, row in enumerate(cubes.itertuples(index=False)):
                mine = [found[name] for name in needed[i] if name in found]
                if mine:
                    mosaic, transform = _mosaic(mine, bounds[i], lattice)
                    x_min, y_max = float(row.x_min), float(row.y_max)
                    out[i] = _warp(mosaic, transform, lattice.crs, x_min, y_max, epsg)
    _report_gaps(out, list(cubes["cube_id"]), absent, dem.location)
    return out


def _check_found(dem: DemSource, found: dict[str, Any], absent: list[str], missing: str) -> None:
    """Raise where tiles are missing and that is an error (or where no naming was found)."""
    if absent and not found and isinstance(dem, TileFolder) and dem.probing:
        raise AssetNotFoundError(
            f"no DEM tiles under {dem.location} for these cubes; looked for {', '.join(absent)};"
            " check the location, or name the kind with --dem-source (srtm, copernicus) where"
            " the cubes lie over the ocean"
        )
    if absent and missing == "raise":
        raise AssetNotFoundError(
            f"DEM tiles not found: {', '.join(absent)}; pass missing='nan' where no DEM exists"
            " (ocean)"
        )


def _in_crs(cubes: pd.DataFrame, lonlat: NDArray[np.float64], crs: Any) -> NDArray[np.float64]:
    """Cube bounds in the rasters' CRS (the grown lon/lat bounds for geographic WGS84)."""
    if crs == CRS.from_epsg(4326):
        return lonlat
    return projected_bounds(cubes, crs.to_wkt())


def _grown(bounds: NDArray[np.float64]) -> NDArray[np.float64]:
    margin = KERNEL_MARGIN * SRTM_PIXEL_DEG
    grown: NDArray[np.float64] = bounds + np.array([-margin, -margin, margin, margin])
    return grown


def _report_gaps(out: Array, cube_ids: list[Any], absent: list[str], location: str) -> None:
    gaps = np.isnan(out).sum(axis=(1, 2))
    if not gaps.any():
        return
    listed = ", ".join(f"{cube_ids[i]} ({gaps[i]} px)" for i in np.flatnonzero(gaps))
    tiles = f"; tiles not found under {location}: {absent}" if absent else ""
    warnings.warn(
        f"no DEM elevation for part of cubes {listed}{tiles}",
        IncompleteSourceWarning,
        stacklevel=2,
    )
