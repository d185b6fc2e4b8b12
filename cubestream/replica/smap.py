"""SMAP L4 soil moisture of the replica: SPL4SMGP granules, 8 per day, in the real HDF5 layout.

Each granule holds the 3-hour averages of one period (00:00-03:00 ... 21:00-24:00 UTC), named by the
period's centre and the version (:func:`cubestream.replica.layout.smap_key`: ``SPL4SMGP.007`` with
``Vv7032`` by default, ``SPL4SMGP.008`` with ``Vv8010``; NSIDC's day folders or a flat folder).
Layout as in the NSIDC files (``shared/real-formats/smap_l4_layout.md``): root datasets
``cell_lat``, ``cell_lon`` (float32, units ``degrees``, fill -9999, ``DIMENSION_LABELS`` and
``grid_mapping``), ``cell_row``, ``cell_column`` (uint32, global EASE indices), ``x``, ``y``
(float64 cell centres, metres), ``time`` (the period's centre, seconds since
2000-01-01T11:58:55.816) and ``EASE2_global_projection``; the group ``Geophysical_Data`` (float32,
``_FillValue``/``missing_value``/``fmissing_value`` -9999, ``coordinates "cell_lat cell_lon"``,
gzip + shuffle); the group ``Metadata`` (``DatasetIdentification``, ``Extent``); the global
attributes of the GMAO writer (``Title``, ``Conventions``, ...). The grid is EASE-Grid 2.0 global
9 km (EPSG:6933, 3856 x 1624 cells) cropped to the
cells under ``world.bbox`` plus ``spec.smap_margin_cells``; the root attributes ``ease_row_offset``
and ``ease_col_offset`` place the crop in the global grid (so does ``cell_row`` / ``cell_column``).
Cells whose centre is open water (land cover 80) hold the fill value everywhere, as in the product.

Values are the daily drivers (:mod:`cubestream.replica.drivers`) interpolated bilinearly to the cell
centres (driver cells beyond the simulated grid repeat its edge), given a day by the shapes of
:mod:`cubestream.replica.diurnal`. With ``T``, ``A`` the daily mean and half-range of ``t2m``,
``c(p)`` the 3-hour mean of ``cos(2 pi (tl - p) / 24)`` at local solar time ``tl``, ``f_sun``,
``f_evap``, ``f_rain`` the fraction of a day's total falling in the 3-hour period and
``S = 10800`` s:

- ``sm_surface = min(sm_surface (1 + 0.04 c(5)), 0.45)`` (dries during the day; the day's mean is
  the driver's unless the porosity cap bites);
  ``sm_rootzone = sm_rootzone``; ``sm_profile = 0.2 sm_surface + 0.8 sm_rootzone``;
  ``*_wetness = sm / 0.45`` (porosity).
- ``temp_lowatmmodlay = T + A c(14)``, ``surface_temp = T + 1.4 A c(13)``,
  ``soil_temp_layer1 = T + 0.6 A c(16)`` (K).
- ``land_evapotranspiration_flux = evap f_evap / S`` (kg m-2 s-1, ``evap`` in mm/day);
  ``heat_flux_latent = 2.45e6 land_evapotranspiration_flux`` (W m-2).
- ``net_downward_shortwave_flux = ssr f_sun / S`` (W m-2, ``ssr`` in J m-2 per day);
  ``radiation_shortwave_downward_flux = net_downward_shortwave_flux / 0.8`` (albedo 0.2).
- ``net_downward_longwave_flux = -(30 + 60 (1 - cloudiness)) - 5.6 A c(13)`` (W m-2).
- ``heat_flux_ground = 0.1 (net_downward_shortwave_flux - ssr / 86400)`` (zero daily mean);
  ``heat_flux_sensible`` closes the energy balance: shortwave + longwave - latent - ground.
- ``precipitation_total_surface_flux = tp f_rain / S`` (kg m-2 s-1, ``tp`` in mm/day).
- ``surface_pressure = sp + 120 c_12(10)`` (Pa; a 12-hour tide).
- ``vegetation_greenness_fraction`` = greenness of the land cover at the cell centre;
  ``leaf_area_index = -2 ln(1 - 0.95 vegetation_greenness_fraction)``.

So the 8 granules of a day give back the daily drivers: fluxes times ``S`` sum to the daily totals,
states and temperatures average to the daily means.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer

from cubestream.errors import ReplicaError
from cubestream.replica.diurnal import cosine_mean, day_fractions
from cubestream.replica.drivers import POROSITY
from cubestream.replica.layout import SMAP_VERSIONS, smap_key
from cubestream.replica.world import World

__all__ = [
    "EASE_CELL_M",
    "EASE_COLS",
    "EASE_ROWS",
    "EASE_X0",
    "EASE_Y0",
    "FILL_VALUE",
    "TIME_EPOCH",
    "VARIABLES",
    "write_smap",
]

EASE_CELL_M = 9008.055210146
"""Cell size of the EASE-Grid 2.0 global 9 km grid (metres)."""
EASE_COLS, EASE_ROWS = 3856, 1624
EASE_X0, EASE_Y0 = -17367530.4451615, 7314540.8306386
"""Upper-left corner of the global grid (EPSG:6933 metres; NASA Harmony's geotransform, i.e.
1928 and 812 cells from the origin)."""
FILL_VALUE = np.float32(-9999.0)
TIME_EPOCH = dt.datetime(2000, 1, 1, 11, 58, 55, 816000)
"""Origin of the ``time`` dataset (J2000 in UTC)."""
PERIOD_S = 3 * 3600
LATENT_HEAT = 2.45e6
GZIP_LEVEL = 4
Array = NDArray[np.float64]

VARIABLES: dict[str, tuple[str, str, float, float]] = {
    "sm_surface": ("m3 m-3", "Top layer soil moisture (0-5 cm)", 0.0, 0.9),
    "sm_rootzone": ("m3 m-3", "Root zone soil moisture (0-100 cm)", 0.0, 0.9),
    "sm_profile": ("m3 m-3", "Total profile soil moisture (0 cm to model bedrock depth)", 0.0, 0.9),
    "sm_surface_wetness": ("dimensionless", "Top layer soil wetness (0-5 cm)", 0.0, 1.0),
    "sm_rootzone_wetness": ("dimensionless", "Root zone soil wetness (0-100 cm)", 0.0, 1.0),
    "sm_profile_wetness": ("dimensionless", "Total profile soil wetness", 0.0, 1.0),
    "surface_temp": ("K", "Mean land surface temperature", 180.0, 350.0),
    "soil_temp_layer1": (
        "K",
        "Soil temperature in layer 1 of soil heat diffusion model",
        180.0,
        350.0,
    ),
    "temp_lowatmmodlay": ("K", "Air temperature at lowest atmospheric model layer", 180.0, 350.0),
    "land_evapotranspiration_flux": ("kg m-2 s-1", "Evapotranspiration from land", -0.001, 0.001),
    "heat_flux_latent": ("W m-2", "Latent heat flux from land", -1000.0, 2500.0),
    "heat_flux_sensible": ("W m-2", "Sensible heat flux from land", -1000.0, 2500.0),
    "heat_flux_ground": ("W m-2", "Downward ground heat flux into layer 1", -1000.0, 1000.0),
    "net_downward_shortwave_flux": ("W m-2", "Net downward shortwave flux over land", 0.0, 1500.0),
    "net_downward_longwave_flux": ("W m-2", "Net downward longwave flux over land", -1000.0, 500.0),
    "radiation_shortwave_downward_flux": ("W m-2", "Incident shortwave radiation", 0.0, 1500.0),
    "precipitation_total_surface_flux": (
        "kg m-2 s-1",
        "Total surface precipitation flux (rainfall + snowfall)",
        0.0,
        0.1,
    ),
    "surface_pressure": ("Pa", "Surface pressure", 40000.0, 110000.0),
    "leaf_area_index": ("m2 m-2", "Leaf area index", 0.0, 10.0),
    "vegetation_greenness_fraction": ("dimensionless", "Vegetation greenness fraction", 0.0, 1.0),
}
"""``Geophysical_Data`` datasets: units, long name, valid minimum and maximum."""


@dataclass(frozen=True)
class _Crop:
    """The EASE-Grid 2.0 cells of the granules: offsets in the global grid and cell centres."""

    row0: int
    col0: int
    x: Array
    y: Array
    lon: NDArray[np.float32]
    lat: NDArray[np.float32]


def _crop(bbox: tuple[float, float, float, float], margin: int) -> _Crop:
    to_ease = Transformer.from_crs(4326, 6933, always_xy=True)
    xs, ys = to_ease.transform([bbox[0], bbox[2]], [bbox[3], bbox[1]])
    col0 = max(int(np.floor((xs[0] - EASE_X0) / EASE_CELL_M)) - margin, 0)
    col1 = min(int(np.floor((xs[1] - EASE_X0) / EASE_CELL_M)) + margin, EASE_COLS - 1)
    row0 = max(int(np.floor((EASE_Y0 - ys[0]) / EASE_CELL_M)) - margin, 0)
    row1 = min(int(np.floor((EASE_Y0 - ys[1]) / EASE_CELL_M)) + margin, EASE_ROWS - 1)
    x = np.asarray(EASE_X0 + (np.arange(col0, col1 + 1) + 0.5) * EASE_CELL_M, dtype=np.float64)
    y = np.asarray(EASE_Y0 - (np.arange(row0, row1 + 1) + 0.5) * EASE_CELL_M, dtype=np.float64)
    gx, gy = np.meshgrid(x, y)
    lon, lat = Transformer.from_crs(6933, 4326, always_xy=True).transform(gx, gy)
    return _Crop(row0, col0, x, y, lon.astype(np.float32), lat.astype(np.float32))


def _interpolator(
    lon_d: Array, lat_d: Array, lon: Array, lat: Array
) -> Callable[[NDArray[np.floating]], Array]:
    """Bilinear interpolation from the driver grid (lat descending) to points; edges repeat."""

    def corners(coord: Array, points: Array) -> tuple[NDArray[np.intp], Array]:
        ascending = coord if coord[0] < coord[-1] else coord[::-1]
        index = np.arange(len(coord), dtype=np.float64)
        frac = np.interp(points, ascending, index if coord[0] < coord[-1] else index[::-1])
        low = np.clip(np.floor(frac).astype(np.intp), 0, len(coord) - 2)
        return low, frac - low

    i, wy = corners(lat_d, lat)
    j, wx = corners(lon_d, lon)

    def interpolate(field: NDArray[np.floating]) -> Array:
        top = field[..., i, j] * (1 - wx) + field[..., i, j + 1] * wx
        bottom = field[..., i + 1, j] * (1 - wx) + field[..., i + 1, j + 1] * wx
        return np.asarray(top * (1 - wy) + bottom * wy)

    return interpolate


def _daily_at_cells(world: World, crop: _Crop, landcover: NDArray[np.uint8]) -> dict[str, Array]:
    """Daily driver fields at the cell centres: ``(day, row, col)``."""
    drivers = world.drivers
    lon_d, lat_d = world.driver_grid
    interp = _interpolator(lon_d, lat_d, crop.lon.astype(np.float64), crop.lat.astype(np.float64))
    names = ("t2m", "t2m_amp", "tp", "ssr", "evap", "sp", "cloudiness", "sm_surface", "sm_rootzone")
    out = {name: interp(drivers[name].values) for name in names}
    classes = drivers["landcover"].values
    which = np.clip(np.searchsorted(classes, landcover), 0, len(classes) - 1)
    green = interp(drivers["greenness"].values)
    out["greenness"] = np.take_along_axis(green, which[None, None], axis=1)[:, 0]
    return out


@dataclass(frozen=True)
class _Shapes:
    """Per-period factors ``(8, row, col)`` of the diurnal cycles at the cells."""

    sun: Array
    evap: Array
    rain: Array
    cycles: dict[float, Array]
    tide: Array

    @classmethod
    def at(cls, lon: NDArray[np.floating]) -> _Shapes:
        starts = (3.0 * np.arange(8)).reshape(8, 1, 1)
        lon64 = np.asarray(lon, dtype=np.float64)
        cycles = {peak: cosine_mean(starts, 3, lon64, peak) for peak in (5.0, 13.0, 14.0, 16.0)}
        return cls(
            sun=day_fractions("sun", 3, lon64),
            evap=day_fractions("evaporation", 3, lon64),
            rain=day_fractions("rain", 3, lon64),
            cycles=cycles,
            tide=cosine_mean(starts, 3, lon64, 10.0, 12.0),
        )


def _states(v: dict[str, Array], shapes: _Shapes) -> dict[str, Array]:
    """Soil moisture, wetness, greenness and pressure for the 8 periods of a day."""
    ones = np.ones_like(shapes.sun)
    out = {
        "sm_surface": np.minimum(v["sm_surface"] * (1 + 0.04 * shapes.cycles[5.0]), POROSITY),
        "sm_rootzone": v["sm_rootzone"] * ones,
        "sm_profile": (0.2 * v["sm_surface"] + 0.8 * v["sm_rootzone"]) * ones,
        "surface_pressure": v["sp"] + 120 * shapes.tide,
        "vegetation_greenness_fraction": np.clip(v["greenness"], 0, 1) * ones,
    }
    for layer in ("surface", "rootzone", "profile"):
        out[f"sm_{layer}_wetness"] = np.clip(out[f"sm_{layer}"] / POROSITY, 0, 1)
    out["leaf_area_index"] = -2 * np.log1p(-0.95 * out["vegetation_greenness_fraction"])
    return out


def _energy(v: dict[str, Array], shapes: _Shapes) -> dict[str, Array]:
    """Temperatures, water and energy fluxes for the 8 periods of a day (a closed balance)."""
    c, amp = shapes.cycles, v["t2m_amp"]
    shortwave = v["ssr"] * shapes.sun / PERIOD_S
    longwave = -(30 + 60 * (1 - v["cloudiness"])) - 5.6 * amp * c[13.0]
    evaporation = v["evap"] * shapes.evap / PERIOD_S
    ground = 0.1 * (shortwave - v["ssr"] / 86400)
    latent = LATENT_HEAT * evaporation
    return {
        "temp_lowatmmodlay": v["t2m"] + amp * c[14.0],
        "surface_temp": v["t2m"] + 1.4 * amp * c[13.0],
        "soil_temp_layer1": v["t2m"] + 0.6 * amp * c[16.0],
        "land_evapotranspiration_flux": evaporation,
        "heat_flux_latent": latent,
        "heat_flux_ground": ground,
        "heat_flux_sensible": shortwave + longwave - latent - ground,
        "net_downward_shortwave_flux": shortwave,
        "net_downward_longwave_flux": longwave,
        "radiation_shortwave_downward_flux": shortwave / 0.8,
        "precipitation_total_surface_flux": v["tp"] * shapes.rain / PERIOD_S,
    }


def _day_values(daily: dict[str, Array], d: int, shapes: _Shapes) -> dict[str, Array]:
    """Every ``Geophysical_Data`` variable for the 8 periods of day ``d`` (see the docstring)."""
    v = {name: field[d] for name, field in daily.items()}
    return {**_states(v, shapes), **_energy(v, shapes)}


def _deflate(values: NDArray[np.float32]) -> bytes:
    """One chunk as HDF5 stores it through the shuffle and deflate filters."""
    shuffled = np.ascontiguousarray(values).view(np.uint8).reshape(-1, values.itemsize).T
    return zlib.compress(shuffled.tobytes(), GZIP_LEVEL)


def _dataset(
    group: h5py.Group, name: str, data: NDArray[np.generic], attrs: dict[str, object]
) -> None:
    ds = group.create_dataset(
        name,
        data=data,
        chunks=data.shape,
        compression="gzip",
        compression_opts=GZIP_LEVEL,
        shuffle=True,
        track_times=False,
    )
    for key, value in attrs.items():
        ds.attrs[key] = value


GRID_MAPPING = "EASE2_global_projection"
_FILL_ATTRS = {"_FillValue": FILL_VALUE, "fmissing_value": FILL_VALUE, "missing_value": FILL_VALUE}
_GRID_ATTRS = {"DIMENSION_LABELS": "y, x", "grid_mapping": GRID_MAPPING}
ROOT_ATTRS = {
    "Title": "SMAP L4_SM Geophysical (GPH) Data Granule",
    "Conventions": "CF",
    "Institution": "cubestream replica (synthetic; not NASA data)",
    "Comment": "HDF-5",
    "References": "see SMAP L4_SM Product Specification Documentation",
}
"""Global attributes, as the GMAO writer sets them (institution and source replaced)."""


def _write_coordinates(f: h5py.File, crop: _Crop) -> None:
    rows, cols = crop.lat.shape
    row_index = np.arange(crop.row0, crop.row0 + rows, dtype=np.uint32)
    col_index = np.arange(crop.col0, crop.col0 + cols, dtype=np.uint32)
    cell = {"units": "degrees", **_FILL_ATTRS, **_GRID_ATTRS}
    _dataset(
        f,
        "cell_lat",
        crop.lat,
        {**cell, "long_name": "Center latitude of cell", "valid_min": -90.0, "valid_max": 90.0},
    )
    _dataset(
        f,
        "cell_lon",
        crop.lon,
        {
            **cell,
            "long_name": "Center longitude of cell",
            "valid_min": -180.0,
            "valid_max": 179.9989929,
        },
    )
    _dataset(
        f,
        "cell_row",
        np.repeat(row_index[:, None], cols, axis=1),
        {"long_name": "Row index of cell in the global EASE-Grid 2.0 9 km grid"},
    )
    _dataset(
        f,
        "cell_column",
        np.repeat(col_index[None, :], rows, axis=0),
        {"long_name": "Column index of cell in the global EASE-Grid 2.0 9 km grid"},
    )
    for axis, values in (("x", crop.x), ("y", crop.y)):
        long_name = f"{axis.upper()} coordinate of cell center in EASE 2.0 global projection"
        attrs = {"standard_name": f"projection_{axis}_coordinate", "axis": axis.upper()}
        _dataset(f, axis, values, {"long_name": long_name, **attrs, "units": "m"})
    proj = f.create_dataset(GRID_MAPPING, data=np.bytes_(""), track_times=False)
    proj.attrs.update(
        grid_mapping_name="lambert_cylindrical_equal_area",
        standard_parallel=30.0,
        longitude_of_central_meridian=0.0,
        false_easting=0.0,
        false_northing=0.0,
    )
    f.attrs.update(
        **ROOT_ATTRS,
        ease_grid="EASE-Grid 2.0 global 9 km (EPSG:6933), 3856 columns x 1624 rows",
        ease_row_offset=np.int32(crop.row0),
        ease_col_offset=np.int32(crop.col0),
        ease_rows=np.int32(rows),
        ease_cols=np.int32(cols),
    )


def _write_metadata(f: h5py.File, crop: _Crop, version: int) -> None:
    """The ``Metadata`` group; per-granule strings get fixed-length placeholders to fill in."""
    name_length = len(Path(smap_key(dt.datetime(2000, 1, 1), version)).name)
    ident = f.create_group("Metadata/DatasetIdentification", track_order=False)
    ident.attrs.update(
        shortName=np.bytes_("SPL4SMGP"),
        longName=np.bytes_(
            "SMAP L4 Global 3-hourly 9 km EASE-Grid Surface and Root Zone Soil Moisture"
            " Geophysical Data"
        ),
        SMAPShortName=np.bytes_("L4_SM_gph"),
        VersionID=np.bytes_(str(version)),
        fileName=np.bytes_(" " * name_length),
        originatorOrganizationName=np.bytes_("cubestream replica (synthetic; not NASA data)"),
    )
    extent = f.create_group("Metadata/Extent")
    extent.attrs.update(
        rangeBeginningDateTime=np.bytes_(" " * 24),
        rangeEndingDateTime=np.bytes_(" " * 24),
        westBoundLongitude=np.float32(crop.lon.min()),
        eastBoundLongitude=np.float32(crop.lon.max()),
        southBoundLatitude=np.float32(crop.lat.min()),
        northBoundLatitude=np.float32(crop.lat.max()),
    )


def _template(crop: _Crop, version: int) -> bytes:
    """A granule with everything but the per-period values: coordinates, attributes, groups."""
    buffer = io.BytesIO()
    with h5py.File(buffer, "w", libver=("v110", "v110")) as f:
        _write_coordinates(f, crop)
        time = f.create_dataset("time", data=np.zeros(1), track_times=False)
        time.attrs.update(
            units="seconds since 2000-01-01 11:58:55.816",
            long_name="J2000 seconds at the centre of the 3-hour averaging period",
            standard_name="time",
        )
        group = f.create_group("Geophysical_Data")
        for name, (units, long_name, low, high) in VARIABLES.items():
            ds = group.create_dataset(
                name,
                shape=crop.lat.shape,
                dtype=np.float32,
                chunks=crop.lat.shape,
                compression="gzip",
                compression_opts=GZIP_LEVEL,
                shuffle=True,
                fillvalue=FILL_VALUE,
                track_times=False,
            )
            ds.attrs.update(
                units=units,
                long_name=long_name,
                valid_min=np.float32(low),
                valid_max=np.float32(high),
                coordinates="cell_lat cell_lon",
                **_FILL_ATTRS,
                **_GRID_ATTRS,
            )
        _write_metadata(f, crop, version)
    return buffer.getvalue()


def _set_string(fid: h5py.h5f.FileID, obj: bytes, name: bytes, value: str) -> None:
    """Overwrite a fixed-length string attribute in place."""
    attr = h5py.h5a.open(h5py.h5o.open(fid, obj), name)
    attr.write(np.asarray(value.encode(), dtype=attr.dtype))


def _write_granule(
    path: Path, template: bytes, chunks: dict[str, bytes], start: dt.datetime
) -> None:
    """Copy the template to ``path`` and fill in one period's values, time and strings.

    Works on HDF5 handles directly (this runs thousands of times): the chunks go in already
    filtered, as HDF5 would store them.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(template)
    end = start + dt.timedelta(hours=3) - dt.timedelta(milliseconds=1)
    seconds = (start + dt.timedelta(minutes=90) - TIME_EPOCH).total_seconds()
    with h5py.File(path, "r+", driver="core", backing_store=True) as f:
        fid = f.id
        for name, chunk in chunks.items():
            dataset = h5py.h5d.open(fid, f"Geophysical_Data/{name}".encode())
            dataset.write_direct_chunk((0, 0), chunk)
        time = h5py.h5d.open(fid, b"time")
        time.write(h5py.h5s.ALL, h5py.h5s.ALL, np.array([seconds]))
        _set_string(fid, b"Metadata/DatasetIdentification", b"fileName", path.name)
        extent = b"Metadata/Extent"
        _set_string(fid, extent, b"rangeBeginningDateTime", f"{start:%Y-%m-%dT%H:%M:%S}.000Z")
        _set_string(fid, extent, b"rangeEndingDateTime", f"{end:%Y-%m-%dT%H:%M:%S}.999Z")


def _compressed_day(
    values: dict[str, Array], water: NDArray[np.bool_], pool: ThreadPoolExecutor
) -> list[dict[str, bytes]]:
    """The filtered chunks of the day's 8 granules (zlib runs outside the GIL, so in threads)."""
    stacked = {
        name: np.where(water, FILL_VALUE, values[name]).astype(np.float32) for name in VARIABLES
    }

    def granule(k: int) -> dict[str, bytes]:
        return {name: _deflate(stacked[name][k]) for name in VARIABLES}

    return list(pool.map(granule, range(8)))


def write_smap(
    world: World,
    objects_dir: Path,
    *,
    version: int = 7,
    layout: Literal["days", "flat"] = "days",
) -> list[str]:
    """Write the world's SMAP L4 SPL4SMGP granules, 8 per day.

    Parameters
    ----------
    world : World
        The replica world (its drivers, statics, bbox and spec).
    objects_dir : Path
        Directory the bucket's objects live in.
    version : {7, 8}
        Product version: ``SPL4SMGP.007`` with ``Vv7032`` names, or ``SPL4SMGP.008`` with
        ``Vv8010`` (the values are the same).
    layout : {"days", "flat"}
        NSIDC's day folders, or every granule directly in the product folder
        (:func:`cubestream.replica.layout.smap_key`).

    Returns
    -------
    list of str
        Object keys of the granules, in time order.

    Raises
    ------
    ReplicaError
        If the world lies outside the EASE-Grid 2.0 global grid (beyond about 85 degrees), or
        ``version`` is not one the replica writes.
    """
    if version not in SMAP_VERSIONS:
        raise ReplicaError(
            f"SMAP version {version} unknown: the replica writes {list(SMAP_VERSIONS)}"
        )
    crop = _crop(world.bbox, world.spec.smap_margin_cells)
    if crop.lat.size == 0:
        raise ReplicaError(f"the world {world.bbox} lies outside the EASE-Grid 2.0 global grid")
    lon, lat = crop.lon.astype(np.float64), crop.lat.astype(np.float64)
    landcover = world.statics.landcover(lon, lat)
    water = landcover == 80
    daily = _daily_at_cells(world, crop, landcover)
    shapes = _Shapes.at(lon)
    template = _template(crop, version)
    keys = []
    with ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        for d, day in enumerate(world.days):
            chunks = _compressed_day(_day_values(daily, d, shapes), water, pool)
            for k in range(8):
                start = dt.datetime.combine(day, dt.time(3 * k))
                key = smap_key(start, version, layout)
                _write_granule(Path(objects_dir) / key, template, chunks[k], start)
                keys.append(key)
    return keys
