"""Synthetic strata rasters over a whole area (Africa by default), written in row blocks.

The replica's world functions (:class:`cubestream.replica.statics.Statics`) sampled at the pixel
centres of one EPSG:4326 grid covering the area's bounds grown by :data:`MARGIN_DEG`, edges on
multiples of the resolution, as three uint8 rasters with no-data 0 and the ``class_names`` tags
of :data:`cubestream.replica.strata.CLASSES`:

- ``climate``: :meth:`Statics.climate <cubestream.replica.statics.Statics.climate>` inside the
  area, 0 (no-data) outside it, as a real climate map has no class over the sea;
- ``landcover``: :meth:`Statics.landcover <cubestream.replica.statics.Statics.landcover>` inside
  the area, 80 (permanent water bodies) outside it, so that the eligibility threshold drops sea
  boxes as it would with a real land-cover map;
- ``geomorphons``: :func:`~cubestream.replica.statics.geomorphons` of the elevation of each row
  block plus a one-row halo, with the pixel spacing (geometric mean of the pixel's sides) and
  the curvature scale of that block; 0 outside the area.

Memory is bounded by the block: :data:`BLOCK_ROWS` rows are computed and written at a time
(windowed writes to tiled DEFLATE GTiffs, 512 px blocks), then overviews are built by the most
frequent class. The files go to a cache directory with a manifest (``strata.json``, written
last); a rerun with the same grid and world reuses them.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.io import DatasetWriter
from rasterio.windows import Window

from cubestream.replica.noise import KM_PER_DEG
from cubestream.replica.statics import Statics, geomorphons
from cubestream.replica.strata import CLASSES
from cubestream.sample.area import Area
from cubestream.sample.strata import StrataSources

__all__ = ["BLOCK_ROWS", "MARGIN_DEG", "StrataGrid", "World", "ensure_strata"]

MARGIN_DEG = 0.05
"""How far the rasters reach beyond the area's bounds (more than half a box's diagonal)."""
BLOCK_ROWS = 512
"""Rows computed and written at a time (one row of 512 px GTiff blocks)."""
SEA_CODES = {"climate": 0, "landcover": 80, "geomorphons": 0}
"""Code of each raster outside the area."""
_PROFILE = {
    "driver": "GTiff",
    "count": 1,
    "dtype": "uint8",
    "crs": "EPSG:4326",
    "nodata": 0,
    "tiled": True,
    "blockxsize": 512,
    "blockysize": 512,
    "compress": "deflate",
    "bigtiff": "if_safer",
}
_OVERVIEWS = (2, 4, 8, 16, 32)
_MANIFEST = "strata.json"


@dataclass(frozen=True, kw_only=True)
class World:
    """The replica world the rasters sample: its seed and volcano summit ``(lon, lat)``."""

    seed: int = 0
    volcano: tuple[float, float] = (37.0, -1.0)

    def statics(self) -> Statics:
        """The world's static fields."""
        return Statics(seed=self.seed, volcano=self.volcano)


@dataclass(frozen=True, kw_only=True)
class StrataGrid:
    """An EPSG:4326 grid of ``width`` x ``height`` pixels of ``resolution`` degrees."""

    west: float
    north: float
    resolution: float
    width: int
    height: int

    @classmethod
    def covering(cls, area: Area, resolution: float) -> StrataGrid:
        """The grid covering the area's bounds plus :data:`MARGIN_DEG`, edges on the lattice."""
        min_lon, min_lat, max_lon, max_lat = area.bbox()
        west = math.floor(round((min_lon - MARGIN_DEG) / resolution, 6))
        south = math.floor(round((min_lat - MARGIN_DEG) / resolution, 6))
        east = math.ceil(round((max_lon + MARGIN_DEG) / resolution, 6))
        north = math.ceil(round((max_lat + MARGIN_DEG) / resolution, 6))
        return cls(
            west=west * resolution,
            north=north * resolution,
            resolution=resolution,
            width=east - west,
            height=north - south,
        )

    @property
    def transform(self) -> Affine:
        """Pixel-to-degrees transform (pixel is area)."""
        return Affine(self.resolution, 0.0, self.west, 0.0, -self.resolution, self.north)

    def centres(self, start: int, stop: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Longitudes and latitudes of the pixel centres of rows ``start:stop``, 2-D."""
        lon = self.west + (np.arange(self.width) + 0.5) * self.resolution
        lat = self.north - (np.arange(start, stop) + 0.5) * self.resolution
        grid_lon, grid_lat = np.meshgrid(lon, lat)
        return grid_lon, grid_lat

    def spacing_m(self, lat: float) -> float:
        """Geometric mean of a pixel's sides in metres at latitude ``lat``."""
        side = self.resolution * KM_PER_DEG * 1000
        return side * math.sqrt(max(math.cos(math.radians(lat)), 1e-6))


def ensure_strata(
    directory: Path, area: Area, resolution: float, world: World = World()
) -> tuple[StrataSources, dict[str, Any]]:
    """The strata rasters of ``area`` in ``directory``, written unless already there.

    Parameters
    ----------
    directory : Path
        Cache directory; ``climate.tif``, ``landcover.tif``, ``geomorphons.tif`` and the
        manifest ``strata.json`` live there.
    area : Area
        The area the rasters cover (and outside which they are sea).
    resolution : float
        Pixel size in degrees.
    world : World
        The replica world sampled.

    Returns
    -------
    sources : StrataSources
        The three rasters, with the default classification options.
    info : dict
        The manifest (grid, world, area, the seconds it took to write) and ``cached``: whether
        the files were already there.
    """
    if not (math.isfinite(resolution) and resolution > 0):
        raise ValueError(f"the resolution must be a positive number of degrees, not {resolution}")
    directory = Path(directory).expanduser()
    grid = StrataGrid.covering(area, resolution)
    manifest = {"grid": asdict(grid), "world": asdict(world), "area": area.name, "version": 1}
    paths = {name: directory / f"{name}.tif" for name in CLASSES}
    sources = StrataSources(
        climate=str(paths["climate"]),
        landcover=str(paths["landcover"]),
        geomorphons=str(paths["geomorphons"]),
    )
    found = _read_manifest(directory)
    if found is not None and _same(found, manifest) and all(p.exists() for p in paths.values()):
        return sources, {**found, "cached": True}
    start = time.perf_counter()
    _write_rasters(directory, paths, grid, area, world.statics())
    manifest["write_seconds"] = round(time.perf_counter() - start, 1)
    _write_json(directory / _MANIFEST, manifest)
    return sources, {**manifest, "cached": False}


def _read_manifest(directory: Path) -> dict[str, Any] | None:
    try:
        found = json.loads((directory / _MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return found if isinstance(found, dict) else None


def _same(found: dict[str, Any], wanted: dict[str, Any]) -> bool:
    """Whether a manifest describes the wanted rasters (JSON turns tuples into lists)."""
    return all(json.dumps(found.get(key)) == json.dumps(value) for key, value in wanted.items())


def _write_json(path: Path, document: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(document, indent=1) + "\n")
    tmp.replace(path)


def _write_rasters(
    directory: Path, paths: dict[str, Path], grid: StrataGrid, area: Area, statics: Statics
) -> None:
    """Write the rasters under temporary names, block by block, then move them into place."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _MANIFEST).unlink(missing_ok=True)
    partial = {name: path.with_name(f".{path.name}.partial") for name, path in paths.items()}
    profile = {**_PROFILE, "width": grid.width, "height": grid.height, "transform": grid.transform}
    datasets = {name: rasterio.open(path, "w", **profile) for name, path in partial.items()}
    try:
        for start in range(0, grid.height, BLOCK_ROWS):
            stop = min(start + BLOCK_ROWS, grid.height)
            window = Window(0, start, grid.width, stop - start)
            for name, values in _block(grid, start, stop, area, statics).items():
                datasets[name].write(values, 1, window=window)
        for name, dataset in datasets.items():
            _finish(dataset, name)
    finally:
        for dataset in datasets.values():
            dataset.close()
    for name, path in partial.items():
        path.replace(paths[name])


def _block(
    grid: StrataGrid, start: int, stop: int, area: Area, statics: Statics
) -> dict[str, NDArray[np.uint8]]:
    """The three rasters' rows ``start:stop``."""
    lon, lat = grid.centres(start, stop)
    inside = np.asarray(shapely.contains_xy(area.geometry, lon, lat), dtype=bool)
    values = {name: np.full(lon.shape, code, dtype=np.uint8) for name, code in SEA_CODES.items()}
    values["climate"][inside] = statics.climate(lon[inside], lat[inside])
    values["landcover"][inside] = statics.landcover(lon[inside], lat[inside])
    if inside.any():
        landforms = _geomorphons(grid, start, stop, statics)
        values["geomorphons"][inside] = landforms[inside]
    return values


def _geomorphons(grid: StrataGrid, start: int, stop: int, statics: Statics) -> NDArray[np.uint8]:
    """Geomorphons of rows ``start:stop`` from their elevation and a one-row halo."""
    first, last = max(start - 1, 0), min(stop + 1, grid.height)
    lon, lat = grid.centres(first, last)
    elevation = statics.elevation(lon, lat)
    spacing = grid.spacing_m(float(lat[:, 0].mean()))
    landforms = geomorphons(elevation, spacing)
    return landforms[start - first : stop - first]


def _finish(dataset: DatasetWriter, name: str) -> None:
    """Tags and overviews (most frequent class) of a written raster."""
    names = {str(code): label for code, label in CLASSES[name].items()}
    dataset.update_tags(class_names=json.dumps(names), stratum=name, AREA_OR_POINT="Area")
    dataset.build_overviews(list(_OVERVIEWS), Resampling.mode)
