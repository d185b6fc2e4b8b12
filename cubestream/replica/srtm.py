"""SRTM elevation of the replica: 1 x 1 degree COGs in EPSG:4326, laid out as the real product.

Each tile is named by its south-west corner (:func:`cubestream.replica.layout.srtm_key`) and holds
``3600 / arcsec + 1`` pixels a side (1201 at 3 arc-seconds, 3601 at 1): pixel centres sit on the
degree lines, so neighbouring tiles share their edge row or column, as in the SRTM HGT files. The
raster is pixel-is-area with its outer edges half a pixel beyond the degree lines. Values are
:meth:`Statics.elevation <cubestream.replica.statics.Statics.elevation>` at the pixel centres,
rounded to whole metres (int16, no-data -32768). COGs: DEFLATE with the horizontal predictor,
512 px blocks, overviews averaged.
"""

from __future__ import annotations

import math
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

__all__ = ["NODATA", "write_srtm"]

NODATA = -32768
BLOCK_ROWS = 512
COG_OPTIONS = {
    "COMPRESS": "DEFLATE",
    "PREDICTOR": "YES",
    "BLOCKSIZE": "512",
    "OVERVIEWS": "AUTO",
    "RESAMPLING": "AVERAGE",
}


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
    if arcsec < 1 or 3600 % arcsec:
        raise ReplicaError(f"arcsec must divide 3600 (1 or 3 as SRTM), not {arcsec}")
    size = 3600 // arcsec + 1
    keys = []
    for lon, lat in _cells(world.bbox):
        key = srtm_key(lon, lat)
        _write_tile(world.statics, lon, lat, size, Path(objects_dir) / key)
        keys.append(key)
    return keys
