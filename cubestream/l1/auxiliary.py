"""The auxiliary variables of a tile group: static layers, SMAP ``smap`` and ERA5 ``era5``.

The static layers are ``dem`` (any DEM source of :mod:`cubestream.sources.dem`), ``landcover``
and ``geomorphons``. Each variable is
computed whole for the tile in one Dask task by its reader (:mod:`.dem`, :mod:`.smap`,
:mod:`.era5`; the class maps by :func:`write_classes`) and written with its coordinates; the
variable's ``complete`` attribute is set last, so a killed task is redone on the next run and a
finished one is skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from cubestream.l1.config import AuxiliarySources
from cubestream.l1.store import COMPRESSOR
from cubestream.sources.dem import DemKind
from cubestream.storage import open_group

__all__ = [
    "CLASS_LAYERS",
    "AuxiliarySources",
    "aux_done",
    "write_classes",
    "write_dem",
    "write_era5",
    "write_smap",
]

CLASS_LAYERS = ("landcover", "geomorphons")
"""Class maps copied per cube (nearest neighbour), from rasters with the sampler's legends."""


def _open(url: str, options: dict[str, Any] | None, tile: str) -> Any:
    return open_group(url, options, mode="r+", use_consolidated=False)[tile]


def aux_done(group: Any, name: str) -> bool:
    """Whether the variable ``name`` of a tile group was written completely."""
    return name in group and bool(group[name].attrs.get("complete", False))


def _write(
    group: Any,
    name: str,
    values: np.ndarray,
    dims: tuple[str, ...],
    coords: dict[str, tuple[str, np.ndarray]],
    attrs: dict[str, Any],
) -> None:
    """Write a variable and its own coordinates (name -> (dim, values)); mark it complete last."""
    for coord_name, (dim, coord) in coords.items():
        dtype = str if coord.dtype.kind in "UO" else coord.dtype
        array = group.create_array(
            coord_name,
            shape=coord.shape,
            dtype=dtype,
            overwrite=True,
            dimension_names=(dim,),
            fill_value="" if dtype is str else 0,
        )
        array[...] = coord
    chunks = (1, *values.shape[1:]) if dims[0] == "cube" else values.shape
    array = group.create_array(
        name,
        shape=values.shape,
        chunks=chunks,
        dtype=values.dtype,
        compressors=COMPRESSOR,
        dimension_names=dims,
        overwrite=True,
        fill_value=np.nan if values.dtype.kind == "f" else 0,
    )
    array[...] = values
    if dims[-2:] == ("y", "x"):
        attrs = {**attrs, "grid_mapping": "spatial_ref", "coordinates": "easting northing"}
    array.attrs.update({**attrs, "complete": True})


def _days(values: Any) -> np.ndarray:
    return np.asarray(values).astype("datetime64[D]").astype("int64")


def write_dem(
    url: str,
    options: dict[str, Any] | None,
    tile: str,
    cubes: pd.DataFrame,
    srtm: str,
    gdal_env: dict[str, str],
    kind: DemKind = "auto",
) -> str:
    """Reproject the DEM onto every cube's 30 m grid and write ``dem (cube, y, x)``."""
    from cubestream.l1.dem import dem_cubes

    values = dem_cubes(srtm, cubes, gdal_env, kind=kind)
    _write(
        _open(url, options, tile),
        "dem",
        values.astype(np.float32),
        ("cube", "y", "x"),
        {},
        {
            "units": "m",
            "long_name": "DEM elevation, bilinear onto the tile's 30 m grid",
            "source": srtm,
            "source_kind": kind,
        },
    )
    return "dem"


def write_classes(
    url: str,
    options: dict[str, Any] | None,
    tile: str,
    cubes: pd.DataFrame,
    name: str,
    location: str,
    gdal_env: dict[str, str],
) -> str:
    """Copy a class raster onto every cube's 30 m grid (nearest); write ``name (cube, y, x)``.

    Each cube's ``128 x 128`` grid is warped on its own (only the raster blocks under it are
    read), so a cube's classes do not depend on which other cubes the tile has.
    """
    from affine import Affine

    from cubestream.sample._rasters import raster_env, read_warped

    epsg = int(cubes["epsg"].iloc[0])
    with raster_env(gdal_env):
        values = np.stack(
            [
                read_warped(
                    name,
                    location,
                    epsg=epsg,
                    transform=Affine(30.0, 0.0, x_min, 0.0, -30.0, y_max),
                    shape=(128, 128),
                )
                for x_min, y_max in zip(cubes["x_min"], cubes["y_max"], strict=True)
            ]
        )
    _write(
        _open(url, options, tile),
        name,
        values,
        ("cube", "y", "x"),
        {},
        {
            "long_name": f"{name} class code, nearest onto the tile's 30 m grid (0 = no data)",
            "source": location,
        },
    )
    return name


def write_smap(
    url: str,
    options: dict[str, Any] | None,
    tile: str,
    cubes: pd.DataFrame,
    sources: AuxiliarySources,
    start: dt.date,
    end: dt.date,
) -> str:
    """Aggregate SMAP L4 granules to daily values per cube; write ``smap (cube, day, var)``."""
    from cubestream.l1.smap import list_granules, smap_cubes

    assert sources.smap is not None
    so = sources.storage_options or None
    granules = list_granules(
        sources.smap, start, end, so, version=sources.smap_version, retry=sources.retry
    )
    data = smap_cubes(
        granules, cubes, storage_options=so, start=start, end=end, retry=sources.retry
    )
    coords = {
        "day": ("day", _days(data["day"].values)),
        "smap_variable": ("smap_variable", np.asarray(data["smap_variable"].values).astype(str)),
        "smap_granules": ("day", np.asarray(data["granule_count"].values).astype("int16")),
    }
    group = _open(url, options, tile)
    _write(
        group,
        "smap",
        data.values.astype(np.float32),
        ("cube", "day", "smap_variable"),
        coords,
        {
            "units_per_variable": list(data.attrs.get("units", ())),
            "long_name": "SMAP L4 daily aggregates over the cube footprint",
            "day_units": "days since 1970-01-01",
            "source": sources.smap,
        },
    )
    group["day"].attrs.update({"units": "days since 1970-01-01"})
    return "smap"


def write_era5(
    url: str,
    options: dict[str, Any] | None,
    tile: str,
    bbox: tuple[float, ...],
    sources: AuxiliarySources,
    start: dt.date,
    end: dt.date,
) -> str:
    """Daily ERA5 over a window around the tile; write ``era5 (era5_time, era5_variable, ...)``."""
    from cubestream.l1.era5 import era5_tile

    assert sources.era5 is not None
    data = era5_tile(
        sources.era5,
        (bbox[0], bbox[1], bbox[2], bbox[3]),
        start,
        end,
        sources.era5_margin_deg,
        sources.storage_options or None,
        layout=sources.era5_layout,
        retry=sources.retry,
    )
    coords = {
        "era5_time": ("era5_time", _days(data["era5_time"].values)),
        "era5_variable": ("era5_variable", np.asarray(data["era5_variable"].values).astype(str)),
        "latitude": ("latitude", np.asarray(data["latitude"].values, dtype=np.float64)),
        "longitude": ("longitude", np.asarray(data["longitude"].values, dtype=np.float64)),
    }
    group = _open(url, options, tile)
    _write(
        group,
        "era5",
        data.values.astype(np.float32),
        ("era5_time", "era5_variable", "latitude", "longitude"),
        coords,
        {
            "long_name": "ERA5 daily aggregates around the tile",
            "source": sources.era5,
            "era5_layout": str(data.attrs.get("era5_layout", sources.era5_layout)),
            "units_per_variable": list(data.attrs.get("units", ())),
        },
    )
    group["era5_time"].attrs.update({"units": "days since 1970-01-01"})
    return "era5"
