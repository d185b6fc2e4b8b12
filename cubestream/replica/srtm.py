"""Elevation of the replica: 1 x 1 degree tiles in EPSG:4326, in the namings users have.

- :func:`write_srtm`: SRTM COGs, ``srtm/S02E036.tif`` (:func:`cubestream.replica.layout.srtm_key`),
  ``3600 / arcsec + 1`` pixels a side (1201 at 3 arc-seconds, 3601 at 1): pixel centres sit on
  the degree lines, so neighbouring tiles share their edge row or column, as in the SRTM HGT
  files. The raster is pixel-is-area with its outer edges half a pixel beyond the degree lines.
  Values are :meth:`Statics.elevation <cubestream.replica.statics.Statics.elevation>` at the
  pixel centres, rounded to whole metres (int16, no-data -32768). COGs: DEFLATE with the
  horizontal predictor, 512 px blocks, overviews averaged.
- :func:`write_hgt`: the same values as SRTM ``.hgt`` files (raw big-endian int16, rows north to
  south, the name giving the south-west corner), bare or zipped (``S02E036.hgt.zip`` holding
  ``S02E036.hgt``).
- :func:`write_copernicus`: Copernicus DEM COGs as in the ``copernicus-dem-30m`` bucket,
  ``Copernicus_DSM_COG_10_S02_00_E036_00_DEM/Copernicus_DSM_COG_10_S02_00_E036_00_DEM.tif``
  (``_30_`` for GLO-90 at 3 arc-seconds). The same pixel centres as SRTM, without the shared
  east column and south row (``3600 / arcsec`` pixels a side below 50 degrees; the longitude
  spacing widens above, as in the real product), float32 elevation not rounded, no no-data
  value, ``AREA_OR_POINT=Point``.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil
from affine import Affine
from numpy.typing import NDArray
from rasterio.io import MemoryFile
from rasterio.windows import Window

from cubestream.errors import ReplicaError
from cubestream.replica.layout import srtm_key
from cubestream.replica.statics import Statics
from cubestream.replica.world import World
from cubestream.sources.dem import copernicus_name, srtm_name

__all__ = ["NODATA", "copernicus_lon_factor", "write_copernicus", "write_hgt", "write_srtm"]

NODATA = -32768
BLOCK_ROWS = 512
COG_OPTIONS = {
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "BLOCKSIZE": "512",
    "OVERVIEWS": "AUTO",
    "RESAMPLING": "AVERAGE",
}


def _arcsec(arcsec: int) -> int:
    if arcsec < 1 or 3600 % arcsec:
        raise ReplicaError(f"arcsec must divide 3600 (1 or 3 as SRTM), not {arcsec}")
    return arcsec


def _cells(bbox: tuple[float, float, float, float]) -> list[tuple[int, int]]:
    """South-west corners ``(lon, lat)`` of the degree cells meeting ``bbox``."""
    lons = range(math.floor(bbox[0]), math.ceil(bbox[2]))
    lats = range(math.floor(bbox[1]), math.ceil(bbox[3]))
    return [(lon, lat) for lat in lats for lon in lons]


def _block(statics: Statics, lon: int, lat: int, rows: range, size: int) -> NDArray[np.int16]:
    """Elevation of pixel rows ``rows`` of the tile with south-west corner ``(lon, lat)``."""
    step = 1.0 / (size - 1)
    lons = lon + np.arange(size) * step
    lats = lat + 1 - np.arange(rows.start, rows.stop) * step
    grid_lon, grid_lat = np.meshgrid(lons, lats)
    return np.rint(statics.elevation(grid_lon, grid_lat)).astype(np.int16)


def _write_tile(statics: Statics, lon: int, lat: int, size: int, path: Path) -> None:
    res = 1.0 / (size - 1)
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "int16",
        "crs": "EPSG:4326",
        "transform": Affine(res, 0.0, lon - res / 2, 0.0, -res, lat + 1 + res / 2),
        "nodata": NODATA,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with MemoryFile() as memory, memory.open(**profile) as src:
        for row in range(0, size, BLOCK_ROWS):
            rows = range(row, min(row + BLOCK_ROWS, size))
            window = Window(0, row, size, len(rows))
            src.write(_block(statics, lon, lat, rows, size), 1, window=window)
        src.update_tags(AREA_OR_POINT="Area", units="m", source="cubestream replica (synthetic)")
        rasterio.shutil.copy(src, path, driver="COG", **COG_OPTIONS)


def write_srtm(world: World, objects_dir: Path, arcsec: int = 3) -> list[str]:
    """Write an SRTM COG for every 1 x 1 degree cell meeting ``world.bbox``.

    Parameters
    ----------
    world : World
        The replica world (its statics and bbox).
    objects_dir : Path
        Directory the bucket's objects live in.
    arcsec : int
        Pixel spacing in arc-seconds (3: SRTM3, 1201 px a side; 1: SRTM1, 3601 px).

    Returns
    -------
    list of str
        Object keys of the tiles, south to north, then west to east.

    Raises
    ------
    ReplicaError
        If ``arcsec`` does not divide 3600.
    """
    size = 3600 // _arcsec(arcsec) + 1
    keys = []
    for lon, lat in _cells(world.bbox):
        key = srtm_key(lon, lat)
        _write_tile(world.statics, lon, lat, size, Path(objects_dir) / key)
        keys.append(key)
    return keys


def write_hgt(
    world: World,
    objects_dir: Path,
    arcsec: int = 3,
    *,
    zipped: bool = False,
    folder: str = "hgt",
    bbox: tuple[float, float, float, float] | None = None,
) -> list[str]:
    """Write the SRTM tiles of :func:`write_srtm` as ``.hgt`` files (or ``.hgt.zip``).

    Parameters
    ----------
    world : World
        The replica world.
    objects_dir : Path
        Directory the bucket's objects live in.
    arcsec : int
        Pixel spacing in arc-seconds (3: 1201 px a side; 1: 3601 px).
    zipped : bool
        Write ``S02E036.hgt.zip`` archives holding ``S02E036.hgt``.
    folder : str
        Key prefix of the files.
    bbox : tuple of float, optional
        Only the cells meeting this lon/lat box.

    Returns
    -------
    list of str
        Object keys, south to north, then west to east.
    """
    size = 3600 // _arcsec(arcsec) + 1
    keys = []
    for lon, lat in _cells(bbox or world.bbox):
        raw = _block(world.statics, lon, lat, range(size), size).astype(">i2").tobytes()
        name = srtm_name(lon, lat)
        key = f"{folder}/{name}.hgt" + (".zip" if zipped else "")
        path = Path(objects_dir) / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if zipped:
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(f"{name}.hgt", raw)
        else:
            path.write_bytes(raw)
        keys.append(key)
    return keys


def copernicus_lon_factor(lat: int) -> int | float:
    """How much wider Copernicus DEM pixels are in longitude than in latitude, by latitude band.

    From the ``copernicus-dem-30m`` readme: 1 below 50 degrees, then 1.5, 2, 3, 5 and 10.
    """
    edge = max(abs(lat), abs(lat + 1))
    for limit, factor in ((50, 1), (60, 1.5), (70, 2), (80, 3), (85, 5)):
        if edge <= limit:
            return factor
    return 10


def _write_copernicus_tile(statics: Statics, lon: int, lat: int, arcsec: int, path: Path) -> None:
    res = arcsec / 3600
    xres = res * copernicus_lon_factor(lat)
    width, height = round(1 / xres), round(1 / res)
    lons = lon + np.arange(width) * xres
    lats = lat + 1 - np.arange(height) * res
    values = statics.elevation(*np.meshgrid(lons, lats)).astype(np.float32)
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:4326",
        "transform": Affine(xres, 0.0, lon - xres / 2, 0.0, -res, lat + 1 + res / 2),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with MemoryFile() as memory, memory.open(**profile) as src:
        src.update_tags(AREA_OR_POINT="Point", source="cubestream replica (synthetic)")
        src.write(values, 1)
        rasterio.shutil.copy(
            src, path, driver="COG", **{**COG_OPTIONS, "PREDICTOR": "FLOATING_POINT"}
        )


def write_copernicus(
    world: World,
    objects_dir: Path,
    arcsec: int = 1,
    *,
    tile_folders: bool = True,
    folder: str = "copernicus",
    bbox: tuple[float, float, float, float] | None = None,
) -> list[str]:
    """Write Copernicus DEM COGs (GLO-30 at 1 arc-second, GLO-90 at 3) for the world's cells.

    Parameters
    ----------
    world : World
        The replica world.
    objects_dir : Path
        Directory the bucket's objects live in.
    arcsec : {1, 3}
        Pixel spacing in latitude (GLO-30 or GLO-90, named ``_10_`` or ``_30_``).
    tile_folders : bool
        Put each COG in a folder of its own stem, as in the AWS buckets.
    folder : str
        Key prefix of the tiles.
    bbox : tuple of float, optional
        Only the cells meeting this lon/lat box (a 1 arc-second tile is 13 M pixels).

    Returns
    -------
    list of str
        Object keys, south to north, then west to east.
    """
    if arcsec not in (1, 3):
        raise ReplicaError(f"the Copernicus DEM comes at 1 or 3 arc-seconds, not {arcsec}")
    keys = []
    for lon, lat in _cells(bbox or world.bbox):
        stem = copernicus_name(lon, lat, arcsec)
        key = f"{folder}/{stem}/{stem}.tif" if tile_folders else f"{folder}/{stem}.tif"
        _write_copernicus_tile(world.statics, lon, lat, arcsec, Path(objects_dir) / key)
        keys.append(key)
    return keys
