"""Static strata rasters of the replica: climate zones, land cover and geomorphons as COGs.

Three uint8 COGs in EPSG:4326 on one grid of ``resolution_deg`` pixels (pixel-is-area, edges on
multiples of the resolution) covering ``world.bbox`` grown by :data:`MARGIN_DEG`:

- ``climate``: Koppen-Geiger codes of :meth:`Statics.climate
  <cubestream.replica.statics.Statics.climate>`
  (:data:`~cubestream.replica.statics.CLIMATE_CLASSES`);
- ``landcover``: ESA WorldCover codes of :meth:`Statics.landcover
  <cubestream.replica.statics.Statics.landcover>`
  (:data:`~cubestream.replica.statics.LANDCOVER_CLASSES`);
- ``geomorphons``: classes 1-10 of :func:`~cubestream.replica.statics.geomorphons` applied to the
  elevation at the pixel centres, with the pixel spacing taken as the geometric mean of its
  east-west and north-south sides in metres at the grid's central latitude
  (:data:`~cubestream.replica.statics.GEOMORPHON_CLASSES`).

Values are sampled at the pixel centres; no-data is 0 (no class uses it). Each file carries its
classes as the GDAL metadata tag ``class_names``: a JSON object from code (as a string) to name.
COGs: DEFLATE, 512 px blocks, overviews by the most frequent class (``MODE``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio.shutil
from affine import Affine
from numpy.typing import NDArray
from rasterio.io import MemoryFile

from cubestream.errors import ReplicaError
from cubestream.replica.layout import strata_key
from cubestream.replica.noise import KM_PER_DEG
from cubestream.replica.statics import (
    CLIMATE_CLASSES,
    GEOMORPHON_CLASSES,
    LANDCOVER_CLASSES,
    Statics,
    geomorphons,
)
from cubestream.replica.world import World

__all__ = ["CLASSES", "MARGIN_DEG", "NODATA", "write_strata"]

MARGIN_DEG = 0.02
"""How far the strata rasters reach beyond the world's bbox (degrees)."""
NODATA = 0
BLOCK_ROWS = 256
CLASSES: dict[str, dict[int, str]] = {
    "climate": CLIMATE_CLASSES,
    "landcover": LANDCOVER_CLASSES,
    "geomorphons": GEOMORPHON_CLASSES,
}
"""Code to name of each stratum raster."""
COG_OPTIONS = {"COMPRESS": "DEFLATE", "BLOCKSIZE": "512", "OVERVIEWS": "AUTO", "RESAMPLING": "MODE"}
Field = Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.generic]]


class _Grid:
    """Pixel centres of the strata grid."""

    def __init__(self, bbox: tuple[float, float, float, float], resolution: float) -> None:
        west = math.floor((bbox[0] - MARGIN_DEG) / resolution)
        south = math.floor((bbox[1] - MARGIN_DEG) / resolution)
        east = math.ceil((bbox[2] + MARGIN_DEG) / resolution)
        north = math.ceil((bbox[3] + MARGIN_DEG) / resolution)
        self.resolution = resolution
        self.width, self.height = east - west, north - south
        self.west, self.north = west * resolution, north * resolution
        self.lon = self.west + (np.arange(self.width) + 0.5) * resolution

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution, 0.0, self.west, 0.0, -self.resolution, self.north)

    def lat(self, rows: range) -> NDArray[np.float64]:
        """Latitudes of the pixel centres of ``rows``."""
        return np.asarray(self.north - (np.arange(rows.start, rows.stop) + 0.5) * self.resolution)

    def spacing_m(self) -> float:
        """Geometric mean of a pixel's sides in metres at the central latitude."""
        centre = self.north - self.height * self.resolution / 2
        side = self.resolution * KM_PER_DEG * 1000
        return side * math.sqrt(math.cos(math.radians(centre)))


def _sample(grid: _Grid, field: Field, dtype: type[np.generic]) -> NDArray[np.generic]:
    """Evaluate ``field(lon, lat)`` at every pixel centre, a block of rows at a time."""
    out = np.empty((grid.height, grid.width), dtype=dtype)
    for row in range(0, grid.height, BLOCK_ROWS):
        rows = range(row, min(row + BLOCK_ROWS, grid.height))
        lon, lat = np.meshgrid(grid.lon, grid.lat(rows))
        out[rows.start : rows.stop] = field(lon, lat)
    return out


def _rasters(statics: Statics, grid: _Grid) -> dict[str, NDArray[np.uint8]]:
    elevation = np.asarray(_sample(grid, statics.elevation, np.float32), dtype=np.float32)
    return {
        "climate": np.asarray(_sample(grid, statics.climate, np.uint8), dtype=np.uint8),
        "landcover": np.asarray(_sample(grid, statics.landcover, np.uint8), dtype=np.uint8),
        "geomorphons": geomorphons(elevation, grid.spacing_m()),
    }


def _write_cog(values: NDArray[np.uint8], grid: _Grid, name: str, path: Path) -> None:
    profile = {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": 1,
        "dtype": "uint8",
        "crs": "EPSG:4326",
        "transform": grid.transform,
        "nodata": NODATA,
    }
    names = {str(code): label for code, label in CLASSES[name].items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with MemoryFile() as memory, memory.open(**profile) as src:
        src.write(values, 1)
        src.update_tags(class_names=json.dumps(names), stratum=name, AREA_OR_POINT="Area")
        rasterio.shutil.copy(src, path, driver="COG", **COG_OPTIONS)


def write_strata(world: World, objects_dir: Path, resolution_deg: float = 0.001) -> list[str]:
    """Write the ``climate``, ``landcover`` and ``geomorphons`` COGs of the world.

    Parameters
    ----------
    world : World
        The replica world (its statics and bbox).
    objects_dir : Path
        Directory the bucket's objects live in.
    resolution_deg : float
        Pixel size in degrees.

    Returns
    -------
    list of str
        Object keys of the three rasters.

    Raises
    ------
    ReplicaError
        If ``resolution_deg`` is not positive or leaves fewer than 3 pixels a side.
    """
    if not resolution_deg > 0:
        raise ReplicaError(f"resolution_deg must be positive, not {resolution_deg}")
    grid = _Grid(world.bbox, resolution_deg)
    if min(grid.width, grid.height) < 3:
        raise ReplicaError(f"resolution_deg {resolution_deg} leaves fewer than 3 pixels a side")
    keys = []
    for name, values in _rasters(world.statics, grid).items():
        key = strata_key(name)
        _write_cog(values, grid, name, Path(objects_dir) / key)
        keys.append(key)
    return keys
