"""ERA5 single levels of the replica: one Zarr v3 store, as the raw forecast fields are stored.

Layout: dimensions ``(time, latitude, longitude)``, latitude descending and longitude ascending
(``float32`` cell centres, as in ARCO-ERA5), time ``datetime64`` encoded as ``int64`` hours since
1900-01-01. The grid is the world's 0.1 degree driver grid (or its block means at
``spec.era5_resolution``, an odd multiple of 0.1: a coarse cell averages the driver cells whose
centres it holds; at the edge of the simulated grid, those there are), restricted to the cells that
meet ``world.bbox`` grown by ``spec.era5_margin_deg``. Time runs from the first day 00:00 to the day
after the last, 00:00 inclusive, every ``spec.era5_step_hours`` hours, so every day of the world has
the steps that close it. Chunks: 31 days of time by the full grid.

Variables (daily drivers of :mod:`cubestream.replica.drivers` spread over the day by the shapes of
:mod:`cubestream.replica.diurnal`, with local solar time ``tl = utc + lon / 15``):

- ``t2m`` (K, instantaneous): ``t2m + t2m_amp cos(2 pi (tl - 14) / 24)`` (peak 14:00 local).
- ``d2m`` (K, instantaneous): ``t2m - t2m_amp - 1 - 6 (1 - cloudiness)``, constant over the day.
- ``sp`` (Pa, instantaneous): ``sp + 120 cos(2 pi (tl - 10) / 12)`` (the semi-diurnal tide).
- ``tp`` (m), ``ssr`` (J m**-2), ``e`` and ``pev`` (m of water equivalent, NEGATIVE: evaporation
  is a loss, the ECMWF sign convention): accumulated.

Accumulations follow raw ERA5 forecasts. Forecasts start at 06 and 18 UTC; the value at valid time
``t`` is the amount over ``(t0, t]``, ``t0`` the latest forecast start strictly before ``t``. So the
07 and 19 UTC values hold one hour, 18 and 06 UTC twelve hours, and the accumulation resets after
06 and 18 UTC. With ``n(t) = (hour(t) - 7) mod 12 + 1`` hours accumulated at ``t`` and the store's
step ``s`` (1 or 3 hours), the amount over the step ending at ``t`` is::

    a(t) = A(t)               if n(t) <= s
    a(t) = A(t) - A(t - s)    otherwise

The amount of UTC day ``D`` is the sum of ``a(t)`` over ``D 00:00 < t <= D+1 00:00``; in the
replica it equals the driver's daily total (``tp / 1000`` m, ``-evap / 1000``, ``-pev / 1000``,
``ssr``) to float32 rounding. Amounts before the first day (in the first steps' accumulations) use
the first day's rates.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from numpy.typing import NDArray

from cubestream.errors import ReplicaError
from cubestream.replica.diurnal import Shape, cosine_mean, day_fractions
from cubestream.replica.layout import ERA5_KEY
from cubestream.replica.world import World

__all__ = ["ACCUMULATED", "FORECAST_STARTS_UTC", "write_era5"]

FORECAST_STARTS_UTC = (6, 18)
"""Hours (UTC) the accumulating forecasts start at."""
CHUNK_DAYS = 31
TIME_UNITS = "hours since 1900-01-01"
ACCUMULATION = (
    "accumulated since the forecast start at 06 and 18 UTC: the value at valid time t is the amount"
    " over (t0, t], t0 the latest 06 or 18 UTC strictly before t; 07 and 19 UTC hold one hour, 06"
    " and 18 UTC twelve hours"
)
DEACCUMULATION = (
    "a(t) = A(t) if n(t) <= step else A(t) - A(t - step), with n(t) = (hour(t) - 7) mod 12 + 1"
    " hours accumulated at t and step the time step in hours"
)
Array = NDArray[np.float64]

# name: (driver variable, factor, diurnal shape); value = factor * driver daily total
ACCUMULATED: dict[str, tuple[str, float, Shape]] = {
    "tp": ("tp", 1e-3, "rain"),
    "ssr": ("ssr", 1.0, "sun"),
    "e": ("evap", -1e-3, "evaporation"),
    "pev": ("pev", -1e-3, "evaporation"),
}
"""Accumulated variables: the driver they come from, the factor to ERA5 units, the day's shape."""
_ATTRS: dict[str, dict[str, str]] = {
    "t2m": {"units": "K", "long_name": "2 metre temperature", "standard_name": "air_temperature"},
    "d2m": {
        "units": "K",
        "long_name": "2 metre dewpoint temperature",
        "standard_name": "dew_point_temperature",
    },
    "sp": {"units": "Pa", "long_name": "Surface pressure", "standard_name": "surface_air_pressure"},
    "tp": {
        "units": "m",
        "long_name": "Total precipitation",
        "standard_name": "lwe_thickness_of_precipitation_amount",
    },
    "ssr": {
        "units": "J m**-2",
        "long_name": "Surface net short-wave (solar) radiation",
        "standard_name": "surface_net_downward_shortwave_flux",
    },
    "e": {
        "units": "m of water equivalent",
        "long_name": "Evaporation",
        "standard_name": "lwe_thickness_of_water_evaporation_amount",
    },
    "pev": {"units": "m", "long_name": "Potential evaporation"},
}


@dataclass(frozen=True)
class _Grid:
    """ERA5 cell centres and the matrices averaging driver cells into them."""

    lat: Array
    lon: Array
    rows: Array
    cols: Array

    def regrid(self, field: NDArray[np.floating]) -> Array:
        """Block means of a ``(day, lat, lon)`` driver field on this grid."""
        return np.asarray(self.rows @ np.asarray(field, dtype=np.float64) @ self.cols.T)


def _axis(driver: Array, low: float, high: float, resolution: float) -> tuple[Array, Array]:
    """Cell centres meeting ``[low, high]`` (ordered like ``driver``) and their averaging matrix."""
    step = abs(float(driver[1] - driver[0]))
    factor = resolution / step
    if abs(factor - round(factor)) > 1e-6 or round(factor) % 2 == 0:
        raise ReplicaError(
            f"era5_resolution {resolution} must be an odd multiple of the driver grid's {step}"
            " degrees (0.1, 0.3, 0.5, ...)"
        )
    first = int(np.ceil((low - resolution / 2) / resolution - 1e-9))
    last = int(np.floor((high + resolution / 2) / resolution + 1e-9))
    centres = np.round(np.arange(first, last + 1) * resolution, 6)
    if driver[0] > driver[-1]:
        centres = centres[::-1]
    inside = np.abs(driver[None, :] - centres[:, None]) <= (resolution - step) / 2 + step / 100
    counts = inside.sum(axis=1, keepdims=True)
    if not counts.all():
        raise ReplicaError(
            f"the driver grid does not reach the ERA5 cells {centres[counts[:, 0] == 0]}"
        )
    return centres, inside / counts


def _grid(world: World) -> _Grid:
    min_lon, min_lat, max_lon, max_lat = world.bbox
    margin = world.spec.era5_margin_deg
    res = world.spec.era5_resolution
    lon_d, lat_d = world.driver_grid
    lat, rows = _axis(lat_d, min_lat - margin, max_lat + margin, res)
    lon, cols = _axis(lon_d, min_lon - margin, max_lon + margin, res)
    return _Grid(lat=lat, lon=lon, rows=rows, cols=cols)


def _daily(world: World, grid: _Grid) -> dict[str, Array]:
    """The daily driver fields the store needs, on the ERA5 grid."""
    names = {"t2m", "t2m_amp", "sp", "cloudiness"} | {v[0] for v in ACCUMULATED.values()}
    return {name: grid.regrid(world.drivers[name].values) for name in sorted(names)}


def _accumulate(
    total: Array, fractions: Array, first: int, last: int, step: int, period: int | None = None
) -> NDArray[np.float32]:
    """Accumulations at hour labels ``first, first + step, ... < last``.

    ``total`` is ``(day, lat, lon)`` daily totals, ``fractions`` ``(24, lon)`` hourly fractions;
    labels count hours from the first day 00:00. Raw forecast accumulations (since the 06 or 18
    UTC start) without ``period``; with it, the amount over the ``period`` hours ending at each
    label (per-step amounts, as ARCO-ERA5 and CDS serve them), from the same hourly amounts.
    """
    ends = np.arange(first - 12, last)  # the hourly interval (j - 1, j] for each j
    start_hour = ends - 1
    day = np.clip(start_hour // 24, 0, total.shape[0] - 1)
    amounts = total[day] * fractions[start_hour % 24][:, None, :]
    cumulative = np.concatenate([np.zeros((1, *total.shape[1:])), np.cumsum(amounts, axis=0)])
    labels = np.arange(first, last, step)
    held = (labels % 24 - FORECAST_STARTS_UTC[0] - 1) % 12 + 1  # hours since the forecast start
    if period is not None:
        held = np.full_like(labels, period)
    position = labels - ends[0] + 1
    return np.asarray(cumulative[position] - cumulative[position - held], dtype=np.float32)


def _block(
    world: World,
    grid: _Grid,
    daily: dict[str, Array],
    first: int,
    last: int,
    *,
    step: int | None = None,
    period: int | None = None,
) -> xr.Dataset:
    """Every variable at hour labels ``first, first + step, ... < last`` (see :func:`_accumulate`).

    ``step`` defaults to the spec's ``era5_step_hours``.
    """
    step = step or world.spec.era5_step_hours
    labels = np.arange(first, last, step)
    day = np.minimum(labels // 24, daily["t2m"].shape[0] - 1)
    hour = (labels - 24 * day)[:, None]
    t_cycle = cosine_mean(hour, 0, grid.lon[None, :], 14.0)[:, None, :]
    tide = cosine_mean(hour, 0, grid.lon[None, :], 10.0, 12.0)[:, None, :]
    values: dict[str, Any] = {
        "t2m": daily["t2m"][day] + daily["t2m_amp"][day] * t_cycle,
        "d2m": daily["t2m"][day] - daily["t2m_amp"][day] - 1 - 6 * (1 - daily["cloudiness"][day]),
        "sp": daily["sp"][day] + 120 * tide,
    }
    for name, (driver, factor, shape) in ACCUMULATED.items():
        fractions = day_fractions(shape, 1, grid.lon)
        values[name] = _accumulate(factor * daily[driver], fractions, first, last, step, period)
    dims = ("time", "latitude", "longitude")
    return xr.Dataset({k: (dims, np.asarray(v, dtype=np.float32)) for k, v in values.items()})


def _template(world: World, grid: _Grid, n_times: int) -> tuple[xr.Dataset, dict[str, Any]]:
    """The store's metadata and coordinates, with lazy zeros for the variables."""
    step = world.spec.era5_step_hours
    start = np.datetime64(dt.datetime.combine(world.spec.start, dt.time()), "ns")
    time = start + np.arange(n_times) * np.timedelta64(step, "h")
    chunk = CHUNK_DAYS * 24 // step
    shape = (n_times, len(grid.lat), len(grid.lon))
    zeros = da.zeros(shape, dtype=np.float32, chunks=(chunk, -1, -1))
    dims = ("time", "latitude", "longitude")
    accumulated = {
        "accumulation": ACCUMULATION,
        "deaccumulation": DEACCUMULATION,
        "GRIB_stepType": "accum",
    }
    data_vars = {
        name: (dims, zeros, {**attrs, **(accumulated if name in ACCUMULATED else {})})
        for name, attrs in _ATTRS.items()
    }
    coords = {
        "time": ("time", time, {"long_name": "time", "standard_name": "time"}),
        "latitude": ("latitude", grid.lat.astype(np.float32), _coord_attrs("north")),
        "longitude": ("longitude", grid.lon.astype(np.float32), _coord_attrs("east")),
    }
    attrs = {
        "Conventions": "CF-1.7",
        "source": "cubestream replica of ECMWF ERA5 single levels (synthetic world, raw forecasts)",
        "institution": "cubestream replica (synthetic; not ECMWF data)",
        "time_step_hours": step,
        "accumulation": ACCUMULATION,
    }
    encoding: dict[str, Any] = {name: {"chunks": (chunk, *shape[1:])} for name in _ATTRS}
    encoding["time"] = {"units": TIME_UNITS, "calendar": "proleptic_gregorian", "dtype": "int64"}
    return xr.Dataset(data_vars, coords=coords, attrs=attrs), encoding


def _coord_attrs(direction: str) -> dict[str, str]:
    name = "latitude" if direction == "north" else "longitude"
    return {"units": f"degrees_{direction}", "long_name": name, "standard_name": name}


def write_era5(world: World, objects_dir: Path) -> list[str]:
    """Write the world's ERA5 store at :data:`~cubestream.replica.layout.ERA5_KEY`.

    The store is written as a template (metadata, coordinates, consolidated) and then filled one
    time chunk at a time; an existing store is replaced.

    Parameters
    ----------
    world : World
        The replica world (its drivers, bbox and spec).
    objects_dir : Path
        Directory the bucket's objects live in.

    Returns
    -------
    list of str
        Object keys of every file of the store, sorted.

    Raises
    ------
    ReplicaError
        If ``spec.era5_resolution`` is not an odd multiple of the 0.1 degree driver grid.
    """
    path = Path(objects_dir) / ERA5_KEY
    grid = _grid(world)
    daily = _daily(world, grid)
    step = world.spec.era5_step_hours
    n_days = len(world.days)
    n_times = n_days * 24 // step + 1
    template, encoding = _template(world, grid, n_times)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
        template.to_zarr(
            path, mode="w", compute=False, zarr_format=3, consolidated=True, encoding=encoding
        )
    for d0 in range(0, n_days, CHUNK_DAYS):
        d1 = min(d0 + CHUNK_DAYS, n_days)
        last = 24 * d1 + (1 if d1 == n_days else 0)
        block = _block(world, grid, daily, 24 * d0, last)
        region = {"time": slice(24 * d0 // step, 24 * d0 // step + block.sizes["time"])}
        block.to_zarr(path, region=region, mode="r+", consolidated=False)
    root = Path(objects_dir)
    return sorted(p.relative_to(root).as_posix() for p in path.rglob("*") if p.is_file())
