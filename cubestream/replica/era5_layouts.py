"""The replica's ERA5 weather written as users receive it: ARCO-ERA5 Zarr and new-CDS NetCDF.

The same world and grid as :func:`cubestream.replica.era5.write_era5` (which writes today's layout,
raw forecast accumulations); only the layout and the accumulation convention change, and the
amounts come from the same hourly amounts, so every layout tells the same weather:

- :func:`write_era5_arco`: a Zarr v3 store as Google's ARCO-ERA5 ``full_37-1h-0p25deg`` serves it:
  long names (``2m_temperature`` ...), ``(time, latitude, longitude)``, latitude descending,
  longitude 0..360 ascending, hourly, one time step per chunk, ``time`` as hours since 1900-01-01
  on an axis padded with unwritten (NaN) chunks before and after the data; the data window is in
  the attributes ``valid_time_start``, ``valid_time_stop`` (ERA5) and ``valid_time_stop_era5t``
  (dates, whole days). Accumulations are the amount over the hour ending at ``time``.
- :func:`write_era5_cds`: the two NetCDF-4 files of a new-CDS download,
  ``data_stream-oper_stepType-accum.nc`` (``tp e pev ssr``) and
  ``data_stream-oper_stepType-instant.nc`` (``t2m d2m sp``), optionally zipped: dimension
  ``valid_time`` (int64 seconds since 1970-01-01), ``latitude``/``longitude`` double (latitude
  descending, longitudes as the area request gives them), a scalar ``number``, ``expver`` (string)
  per step (``0001`` ERA5, ``0005`` ERA5T for the last ``era5t_days``), float32 variables with
  ``_FillValue`` NaN and the converter's ``GRIB_*`` attributes. Accumulations are the amount over
  the hour ending at ``valid_time`` (at the spec's step, as a CDS request at that step gives).
"""

from __future__ import annotations

import datetime as dt
import warnings
import zipfile
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from cubestream.replica.era5 import _ATTRS, ACCUMULATED, _block, _daily, _grid
from cubestream.replica.world import World

__all__ = ["ARCO_NAMES", "CDS_FILES", "write_era5_arco", "write_era5_cds"]

ARCO_NAMES = {
    "t2m": "2m_temperature",
    "d2m": "2m_dewpoint_temperature",
    "sp": "surface_pressure",
    "tp": "total_precipitation",
    "e": "evaporation",
    "pev": "potential_evaporation",
    "ssr": "surface_net_solar_radiation",
}
"""Short name -> ARCO-ERA5 (CDS long) name."""
CDS_FILES = {
    "accum": "data_stream-oper_stepType-accum.nc",
    "instant": "data_stream-oper_stepType-instant.nc",
}
"""The files of a new-CDS download, by GRIB stepType."""
_GRIB = {  # name: (paramId, shortName, dataType)
    "t2m": (167, "2t", "an"),
    "d2m": (168, "2d", "an"),
    "sp": (134, "sp", "an"),
    "tp": (228, "tp", "fc"),
    "e": (182, "e", "fc"),
    "pev": (228251, "pev", "fc"),
    "ssr": (176, "ssr", "fc"),
}
_HISTORY = (
    'GRIB to CDM+CF via cfgrib-0.9.15.1/ecCodes-2.48.2 with {{"source": "data.grib", '
    '"filter_by_keys": {{"stream": ["oper"], "stepType": ["{kind}"]}}, "encode_cf": '
    '["parameter", "time", "geography", "vertical"]}}'
)


def _start(world: World) -> np.datetime64:
    return np.datetime64(dt.datetime.combine(world.spec.start, dt.time()), "ns")


def write_era5_arco(
    world: World, path: Path, *, era5t_days: int = 2, pad_days: int = 2, time_chunk: int = 1
) -> Path:
    """Write the world's ERA5 as an ARCO-ERA5 store at ``path`` (see the module docstring).

    Data run from the first day 00:00 to the day after the last, 23:00 (whole days, as ARCO's
    ``valid_time_stop`` means); the last ``era5t_days`` of them are ERA5T
    (``valid_time_stop`` ends before them, ``valid_time_stop_era5t`` after).

    Parameters
    ----------
    world : World
        The replica world.
    path : Path
        The store to write (replaced if it exists).
    era5t_days : int
        Days at the end marked ERA5T by the attributes.
    pad_days : int
        Days of unwritten time steps before and after the data (ARCO's axis runs 1900..2050).
    time_chunk : int
        Time steps per chunk (ARCO: 1).

    Returns
    -------
    Path
        The store.
    """
    grid = _grid(world)
    order = np.argsort(grid.lon % 360.0, kind="stable")
    n_data = 24 * (len(world.days) + 1)
    first = -24 * pad_days
    times = _start(world) + np.arange(first, n_data + 24 * pad_days) * np.timedelta64(1, "h")
    shape = (len(times), len(grid.lat), len(grid.lon))
    zeros = da.zeros(shape, dtype=np.float32, chunks=(time_chunk, -1, -1))
    dims = ("time", "latitude", "longitude")
    data_vars = {ARCO_NAMES[k]: (dims, zeros, {**_ATTRS[k], "short_name": k}) for k in ARCO_NAMES}
    last = world.days[-1] + dt.timedelta(days=1)
    attrs = {
        "valid_time_start": world.days[0].isoformat(),
        "valid_time_stop": (last - dt.timedelta(days=era5t_days)).isoformat(),
        "valid_time_stop_era5t": last.isoformat(),
        "last_updated": f"{last + dt.timedelta(days=5)} 01:45:36.622817+00:00",
    }
    template = xr.Dataset(
        data_vars,
        coords={
            "time": times,
            "latitude": ("latitude", grid.lat.astype(np.float32)),
            "longitude": ("longitude", (grid.lon % 360.0)[order].astype(np.float32)),
        },
        attrs=attrs,
    )
    encoding: dict[str, Any] = {v: {"chunks": (time_chunk, *shape[1:])} for v in data_vars}
    encoding["time"] = {"units": "hours since 1900-01-01", "dtype": "int64"}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        template.to_zarr(
            path, mode="w", compute=False, zarr_format=3, consolidated=True, encoding=encoding
        )
    daily = _daily(world, grid)
    block = _block(world, grid, daily, 0, n_data, step=1, period=1).isel(longitude=order)
    block = block.rename(ARCO_NAMES)
    offset = -first
    region = {"time": slice(offset, offset + n_data)}
    block.to_zarr(path, region=region, mode="r+", consolidated=False)
    return Path(path)


def _cds_dataset(world: World, kind: str, names: list[str], era5t_days: int) -> xr.Dataset:
    grid = _grid(world)
    step = world.spec.era5_step_hours
    n_data = len(world.days) * 24 + 1
    block = _block(world, grid, _daily(world, grid), 0, n_data, step=step, period=1)
    times = _start(world) + np.arange(0, n_data, step) * np.timedelta64(1, "h")
    era5t = times >= _start(world) + np.timedelta64(24 * (len(world.days) - era5t_days), "h")
    data_vars = {}
    for name in names:
        param, short, data_type = _GRIB[name]
        attrs = {
            "GRIB_paramId": np.int64(param),
            "GRIB_dataType": data_type,
            "GRIB_stepType": kind,
            "GRIB_typeOfLevel": "surface",
            "GRIB_gridType": "regular_ll",
            "GRIB_cfVarName": name,
            "GRIB_name": _ATTRS[name]["long_name"],
            "GRIB_shortName": short,
            "GRIB_units": _ATTRS[name]["units"],
            "long_name": _ATTRS[name]["long_name"],
            "units": _ATTRS[name]["units"],
            "standard_name": _ATTRS[name].get("standard_name", "unknown"),
        }
        data_vars[name] = (("valid_time", "latitude", "longitude"), block[name].values, attrs)
    coords = {
        "number": ((), np.int64(0), {"long_name": "ensemble member numerical id", "units": "1"}),
        "valid_time": ("valid_time", times, {"long_name": "time", "standard_name": "time"}),
        "latitude": ("latitude", grid.lat.astype(np.float64), _axis_attrs("latitude")),
        "longitude": ("longitude", grid.lon.astype(np.float64), _axis_attrs("longitude")),
        "expver": ("valid_time", np.where(era5t, "0005", "0001").astype(object)),
    }
    attrs = {
        "GRIB_centre": "ecmf",
        "GRIB_centreDescription": "European Centre for Medium-Range Weather Forecasts",
        "GRIB_subCentre": np.int64(0),
        "Conventions": "CF-1.7",
        "institution": "cubestream replica (synthetic; not ECMWF data)",
        "history": _HISTORY.format(kind=kind),
    }
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


def _axis_attrs(name: str) -> dict[str, str]:
    units = "degrees_north" if name == "latitude" else "degrees_east"
    out = {"units": units, "standard_name": name, "long_name": name}
    return {**out, "stored_direction": "decreasing"} if name == "latitude" else out


def write_era5_cds(
    world: World, directory: Path, *, zipped: bool = False, era5t_days: int = 0
) -> list[Path]:
    """Write the world's ERA5 as a new-CDS download into ``directory`` (see the module docstring).

    Parameters
    ----------
    world : World
        The replica world (its spec's ``era5_step_hours`` is the request's step).
    directory : Path
        Where the files go (created if needed).
    zipped : bool
        Deliver both files in one ``era5.nc.zip``, as the CDS does, instead of two ``.nc``.
    era5t_days : int
        Last days whose steps carry ``expver`` ``0005`` (ERA5T).

    Returns
    -------
    list of Path
        The ``.nc`` files, or the zip.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    groups = {
        "accum": [n for n in _GRIB if n in ACCUMULATED],
        "instant": [n for n in _GRIB if n not in ACCUMULATED],
    }
    files = []
    for kind, names in groups.items():
        ds = _cds_dataset(world, kind, names, era5t_days)
        encoding: dict[str, Any] = {n: {"_FillValue": np.float32(np.nan)} for n in names}
        encoding["valid_time"] = {
            "units": "seconds since 1970-01-01",
            "calendar": "proleptic_gregorian",
            "dtype": "int64",
        }
        encoding["latitude"] = encoding["longitude"] = {"_FillValue": np.nan}
        path = directory / CDS_FILES[kind]
        ds.to_netcdf(path, engine="h5netcdf", encoding=encoding)
        files.append(path)
    if not zipped:
        return files
    archive = directory / "era5.nc.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as out:
        for file in files:
            out.write(file, arcname=file.name)
            file.unlink()
    return [archive]
