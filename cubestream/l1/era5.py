"""ERA5 over a tile: a small latitude/longitude window, de-accumulated and aggregated to days.

The data flow of :func:`era5_tile`:

1. Open the source lazily through its layout's adapter (:func:`cubestream.sources.era5.open_era5`:
   ARCO-ERA5, new-CDS NetCDF, WeatherBench2 or today's Zarr, detected or named), which gives the
   canonical dataset: short names over ``(time, latitude, longitude)``; metadata only, no Dask.
2. Plan: the time steps ``[start 00:00, end + 1 00:00]`` (checked present and regular) and the
   window, the cells whose centres lie in the bbox grown by ``margin_deg`` (the store's
   latitude order is kept; longitudes may be stored -180..180 or 0..360: the window may wrap,
   and comes out in the bbox's convention).
3. Read the window one time chunk of the store at a time (stores are chunked in time over the
   full grid, so this reads only the chunks under the time range, each once; finer chunks, as
   ARCO's one hour, are read :data:`BLOCK_DAYS` at a time), de-accumulate the accumulated
   variables, carrying the last step over from one block to the next.
4. Aggregate per UTC day ``D`` into running sums, minima and maxima.

Daily values

===============================  =========  ==========================================  ======
output                           variable   statistic over day ``D``                    units
===============================  =========  ==========================================  ======
``t2m_mean, t2m_min, t2m_max``   ``t2m``    mean, min, max of the instantaneous values  K
                                            at the steps in ``[D 00:00, D+1 00:00)``
``d2m_mean``                     ``d2m``    mean (same steps)                           K
``sp_mean``                      ``sp``     mean (same steps)                           Pa
``tp_sum``                       ``tp``     sum of the step amounts ``a(t)`` over       m
                                            ``D 00:00 < t <= D+1 00:00``
``e_sum``, ``pev_sum``           ``e``,     sum (same steps); negative: evaporation is  m
                                 ``pev``    a loss (ECMWF sign convention)
``ssr_sum``                      ``ssr``    sum (same steps)                            J m-2
===============================  =========  ==========================================  ======

De-accumulation
    A summed variable with the attribute ``accumulation_period_hours = k`` holds per-step amounts
    (the amount over the ``k`` hours ending at ``t``, as ARCO-ERA5, CDS and WeatherBench2 serve
    them; the adapters set it): ``a(t) = A(t)``, and ``k`` must equal the time step. Otherwise a
    variable is accumulated when its attributes say so (``GRIB_stepType`` ``accum``, or an
    ``accumulation`` attribute). Raw ERA5 forecasts accumulate from their start (06 and 18 UTC,
    ``forecast_starts_utc``): the value ``A(t)`` is the amount over ``(t0, t]``, ``t0`` the
    latest start strictly before ``t``, so ``n(t) = min_s ((hour(t) - s - 1) mod 24) + 1``
    hours are accumulated at ``t``. The amount of the step of ``s`` hours ending at ``t`` is
    ``a(t) = A(t)`` if ``n(t) <= s`` (the first step after a reset), else
    ``A(t) - A(t - s)``. Stores of per-step amounts (already de-accumulated) are read with
    ``forecast_starts_utc=tuple(range(24))``, which makes ``a(t) = A(t)`` at an hourly step.
    A summed variable without those attributes is taken as per-step amounts.

Missing values
    NaN in the store propagates to the day's statistic (a gap stays visible). A time step
    missing from the range raises.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from cubestream.config import RetryPolicy, transient
from cubestream.errors import AssetReadError
from cubestream.sources.era5 import Era5Layout, open_era5

__all__ = ["AGGREGATES", "FORECAST_STARTS_UTC", "era5_tile", "output_names"]

Statistic = Literal["mean", "min", "max", "sum"]
AGGREGATES: dict[str, tuple[Statistic, ...]] = {
    "t2m": ("mean", "min", "max"),
    "d2m": ("mean",),
    "sp": ("mean",),
    "tp": ("sum",),
    "e": ("sum",),
    "pev": ("sum",),
    "ssr": ("sum",),
}
"""Daily statistics per ERA5 variable (see the module docstring)."""
FORECAST_STARTS_UTC = (6, 18)
"""UTC hours the raw ERA5 forecasts, and so their accumulations, start at."""
BLOCK_DAYS = 31
"""Fewest days read at once from stores chunked finer (ARCO-ERA5: one hour per chunk)."""
_HOUR = np.timedelta64(1, "h")
_DAY = np.timedelta64(1, "D")
Array = NDArray[np.float64]


def output_names(variables: Sequence[str]) -> list[str]:
    """Names of the daily values of ``variables`` (``era5_variable`` of :func:`era5_tile`)."""
    return [f"{v}_{s}" for v in variables for s in AGGREGATES[v]]


# --- opening and planning -----------------------------------------------------------------------


def _time_range(times: NDArray[np.datetime64], start: dt.date, end: dt.date, url: str) -> slice:
    """Indices of the steps ``[start 00:00, end + 1 00:00]``; checks they are all there."""
    first = np.datetime64(start, "ns")
    last = np.datetime64(end + dt.timedelta(days=1), "ns")
    i0, i1 = np.searchsorted(times, [first, last])
    found = times[i0 : i1 + 1]
    if i1 >= len(times) or len(found) == 0 or found[0] != first or found[-1] != last:
        raise AssetReadError(
            f"the ERA5 store {url} does not hold every step from {_minutes(first)} to "
            f"{_minutes(last)} (it holds {_minutes(times[0])} to {_minutes(times[-1])}); "
            f"days {start} to {end} need them"
        )
    steps = np.unique(np.diff(found)) // _HOUR
    if len(steps) != 1 or 24 % steps[0]:
        raise AssetReadError(
            f"the ERA5 store {url} has irregular time steps (hours: {steps.tolist()}) between "
            f"{_minutes(first)} and {_minutes(last)}"
        )
    return slice(int(i0), int(i1) + 1)


def _minutes(time: np.datetime64) -> str:
    return str(time.astype("datetime64[m]"))


@dataclass(frozen=True)
class _Window:
    """Latitude and longitude indices of the window, and its coordinates."""

    lat_index: NDArray[np.intp]
    lon_index: NDArray[np.intp]
    lat: Array
    lon: Array


def _window(lat: Array, lon: Array, bbox: tuple[float, ...], margin: float, url: str) -> _Window:
    min_lon, min_lat, max_lon, max_lat = bbox
    eps = 1e-6
    lat_index = np.flatnonzero((lat >= min_lat - margin - eps) & (lat <= max_lat + margin + eps))
    west = min_lon - margin
    shifted = np.mod(lon - west + eps, 360.0) - eps
    inside = np.flatnonzero(shifted <= max_lon + margin - west + eps)
    lon_index = inside[np.argsort(shifted[inside], kind="stable")]
    if not len(lat_index) or not len(lon_index):
        raise AssetReadError(
            f"no cell of the ERA5 store {url} lies within {margin} degrees of the bbox {bbox}"
        )
    return _Window(lat_index, lon_index, lat[lat_index], west + shifted[lon_index])


def _blocks(rows: slice, chunk: int) -> list[slice]:
    """``rows`` cut at the store's chunk boundaries."""
    edges = sorted(
        {rows.start, rows.stop, *range(-(-rows.start // chunk) * chunk, rows.stop, chunk)}
    )
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


# --- de-accumulation ----------------------------------------------------------------------------


def _hours_accumulated(times: NDArray[np.datetime64], starts: Sequence[int]) -> NDArray[np.int64]:
    """``n(t)``: hours since the latest forecast start strictly before ``t``."""
    hour = ((times - times.astype("datetime64[D]")) // _HOUR).astype(np.int64)
    since = [(hour - s - 1) % 24 + 1 for s in starts]
    return np.asarray(np.min(since, axis=0), dtype=np.int64)


def _step_amounts(
    values: Array, previous: Array | None, n: NDArray[np.int64], step_hours: int
) -> Array:
    """Step amounts ``a(t)`` of an accumulated block ``(time, lat, lon)``.

    ``previous`` is ``A`` one step before the block; without it the first amount is NaN where
    it would be needed.
    """
    before = np.concatenate(
        [previous[None] if previous is not None else np.full_like(values[:1], np.nan), values[:-1]]
    )
    reset = (n <= step_hours)[:, None, None]
    return np.where(reset, values, values - before)


# --- daily aggregation --------------------------------------------------------------------------


class _Daily:
    """Running sums, counts, minima and maxima ``(day, variable, lat, lon)``."""

    def __init__(self, n_days: int, n_vars: int, shape: tuple[int, int]) -> None:
        full = (n_days, n_vars, *shape)
        self.total = np.zeros(full)
        self.count = np.zeros(full[:2], dtype=np.int64)
        self.low = np.full(full, np.inf)
        self.high = np.full(full, -np.inf)

    def add(self, k: int, days: NDArray[np.int64], values: Array) -> None:
        """Add the steps ``values (time, lat, lon)`` falling on ``days`` to variable ``k``."""
        keep = (days >= 0) & (days < len(self.total))
        days, values = days[keep], values[keep]
        np.add.at(self.total[:, k], days, values)
        np.add.at(self.count[:, k], days, 1)
        np.minimum.at(self.low[:, k], days, values)
        np.maximum.at(self.high[:, k], days, values)

    def statistic(self, k: int, statistic: Statistic) -> Array:
        if statistic == "mean":
            return np.asarray(self.total[:, k] / self.count[:, k, None, None])
        return {"sum": self.total, "min": self.low, "max": self.high}[statistic][:, k]


@dataclass(frozen=True)
class _Source:
    """One variable to read: its name, whether it is accumulated, its units."""

    name: str
    accumulated: bool
    units: str


def _sources(ds: xr.Dataset, variables: Sequence[str], url: str, step_hours: int) -> list[_Source]:
    missing = [v for v in variables if v not in ds.data_vars]
    unknown = [v for v in variables if v not in AGGREGATES]
    if missing or unknown:
        why = f" ({ds.attrs['unavailable']})" if missing and "unavailable" in ds.attrs else ""
        raise AssetReadError(
            f"ERA5 variables {missing or unknown} are "
            + (
                f"not in the store {url}{why}"
                if missing
                else f"not in the table {sorted(AGGREGATES)}"
            )
        )
    out = []
    for v in variables:
        attrs = ds[v].attrs
        summed = "sum" in AGGREGATES[v]
        period = attrs.get("accumulation_period_hours")
        if summed and period is not None and int(period) != step_hours:
            raise AssetReadError(
                f"{v} of the ERA5 store {url} holds amounts over {period} h but the store's step "
                f"is {step_hours} h: summing them would not give the day's total; use a store "
                f"with {period}-hourly steps"
            )
        accum = period is None and (
            attrs.get("GRIB_stepType") == "accum" or "accumulation" in attrs
        )
        out.append(_Source(v, accum and summed, str(attrs.get("units", ""))))
    return out


@dataclass(frozen=True)
class _Plan:
    """What to read and how to aggregate it (see :func:`era5_tile`)."""

    url: str
    sources: list[_Source]
    window: _Window
    midnight: np.datetime64
    step_hours: int
    forecast_starts: tuple[int, ...]
    retry: RetryPolicy


def _aggregate(
    ds: xr.Dataset,
    plan: _Plan,
    block: slice,
    times: NDArray[np.datetime64],
    daily: _Daily,
    previous: dict[str, Array],
) -> None:
    """Read one block of steps and add it to the daily statistics.

    ``previous`` carries the last accumulated values over to the next block.
    """
    instant_day = ((times - plan.midnight) // _DAY).astype(np.int64)
    amount_day = ((times - plan.midnight - np.timedelta64(1, "ns")) // _DAY).astype(np.int64)
    n = _hours_accumulated(times, plan.forecast_starts)
    for k, source in enumerate(plan.sources):
        values = plan.retry.call(
            partial(_read, ds, source.name, block, plan.window, plan.url),
            transient,
            f"ERA5 {source.name} of {plan.url}",
        )
        if source.accumulated:
            amounts = _step_amounts(values, previous.get(source.name), n, plan.step_hours)
            previous[source.name] = values[-1]
            daily.add(k, amount_day, amounts)
        elif "sum" in AGGREGATES[source.name]:
            daily.add(k, amount_day, values)
        else:
            daily.add(k, instant_day, values)


# --- the entry point ----------------------------------------------------------------------------


def era5_tile(
    url: str,
    bbox: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    margin_deg: float = 0.25,
    storage_options: dict[str, Any] | None = None,
    *,
    variables: tuple[str, ...] = tuple(AGGREGATES),
    forecast_starts_utc: tuple[int, ...] = FORECAST_STARTS_UTC,
    layout: Era5Layout = "auto",
    retry: RetryPolicy | None = None,
) -> xr.DataArray:
    """Daily ERA5 values over a window around a tile (see the module docstring).

    Parameters
    ----------
    url : str
        The ERA5 source: a Zarr store, or NetCDF files (a file, glob, folder or ``.zip``); a
        path or an fsspec URL.
    bbox : tuple of float
        ``(min_lon, min_lat, max_lon, max_lat)`` of the tile's cubes (WGS84).
    start, end : datetime.date
        First and last day (inclusive, UTC).
    margin_deg : float
        Cells whose centres lie within this many degrees of the bbox are kept; at least half a
        cell (0.125 for ERA5's 0.25 degrees) keeps every cell the bbox meets.
    storage_options : dict, optional
        fsspec options for URLs.
    variables : tuple of str
        Store variables to read, each a key of :data:`AGGREGATES`.
    forecast_starts_utc : tuple of int
        UTC hours raw forecast accumulations restart at.
    layout : {"auto", "cubestream", "arco", "cds", "weatherbench2"}
        The source's layout (:mod:`cubestream.sources.era5`); ``"auto"`` detects it.
    retry : RetryPolicy, optional
        Retries of the opening and of each block read that fail on throttling, a 5xx or a
        dropped connection (default: :meth:`RetryPolicy.from_config`).

    Returns
    -------
    xarray.DataArray
        ``(era5_time, era5_variable, latitude, longitude)`` float32; ``era5_time`` holds the
        days (midnight UTC), ``era5_variable`` the :func:`output_names`, ``attrs["units"]``
        the units per ``era5_variable``, ``attrs["era5_layout"]`` the source's layout.

    Raises
    ------
    AssetNotFoundError
        If the store does not exist.
    AssetReadError
        If it cannot be read, its layout is unknown or ambiguous, it lacks a variable or a time
        step, or no cell is near the bbox.
    """
    policy = retry or RetryPolicy.from_config()
    source = policy.call(
        lambda: open_era5(url, layout, storage_options), transient, f"ERA5 source {url}"
    )
    ds = source.dataset
    times = ds["time"].values.astype("datetime64[ns]")
    rows = _time_range(times, start, end, url)
    step_hours = int((times[rows.start + 1] - times[rows.start]) // _HOUR)
    plan = _Plan(
        url=url,
        sources=_sources(ds, variables, url, step_hours),
        window=_window(ds["latitude"].values, ds["longitude"].values, bbox, margin_deg, url),
        midnight=np.datetime64(start, "ns"),
        step_hours=step_hours,
        forecast_starts=forecast_starts_utc,
        retry=policy,
    )
    shape = (len(plan.window.lat), len(plan.window.lon))
    daily = _Daily((end - start).days + 1, len(plan.sources), shape)
    chunk = int(ds[plan.sources[0].name].encoding.get("chunks", (rows.stop,))[0])
    chunk *= -(-BLOCK_DAYS * 24 // step_hours // chunk)  # whole chunks, >= BLOCK_DAYS of steps
    previous: dict[str, Array] = {}
    for block in _blocks(rows, chunk):
        _aggregate(ds, plan, block, times[block], daily, previous)
    result = _result(daily, plan.sources, start, plan.window)
    result.attrs["era5_layout"] = source.layout
    return result


def _read(ds: xr.Dataset, name: str, block: slice, window: _Window, url: str) -> Array:
    try:
        selected = ds[name].isel(time=block, latitude=window.lat_index, longitude=window.lon_index)
        return np.asarray(selected.values, dtype=np.float64)
    except (OSError, ValueError, KeyError) as exc:
        raise AssetReadError(f"cannot read {name} of the ERA5 store {url}: {exc}") from exc


def _result(daily: _Daily, sources: list[_Source], start: dt.date, window: _Window) -> xr.DataArray:
    columns = [daily.statistic(k, s) for k, src in enumerate(sources) for s in AGGREGATES[src.name]]
    units = [src.units for src in sources for _ in AGGREGATES[src.name]]
    days = np.datetime64(start, "D") + np.arange(daily.total.shape[0])
    return xr.DataArray(
        np.stack(columns, axis=1).astype(np.float32),
        dims=("era5_time", "era5_variable", "latitude", "longitude"),
        coords={
            "era5_time": days,
            "era5_variable": output_names([s.name for s in sources]),
            "latitude": window.lat.astype(np.float32),
            "longitude": window.lon.astype(np.float32),
        },
        name="era5",
        attrs={"units": units},
    )
