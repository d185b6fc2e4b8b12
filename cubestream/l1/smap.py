"""SMAP L4 (SPL4SMGP) over each minicube: 3-hourly granules to daily values per cube.

The data flow of :func:`smap_cubes`, for the cubes of one tile:

1. Plan (pure, once per call): each cube's box (tile UTM CRS) is projected to EASE-Grid 2.0
   (EPSG:6933) and replaced by the bounding box of its projected edges. From the granule's cell
   centres ``x`` and ``y`` (the crop of the replica, or the global grid of the real product),
   the overlap area of every cube's box with every cell gives the weights, and the union of the
   cells with a positive weight gives one hyperslab ``[r0:r1, c0:c1]``. The plan is keyed by the
   granule's grid (``ease_row_offset``, ``ease_col_offset`` and the shape): a granule on another
   crop gets its own plan.
2. Read: each granule is opened once (plain h5py for local paths; h5py over an fsspec file with
   small blocks for URLs) and each variable's hyperslab is read with one h5py selection, so only
   the HDF5 chunks under the cubes are fetched.
3. Reduce per granule: the value of cube ``c`` is ``sum_k w_ck v_k / sum_k w_ck`` over the cells
   ``k`` whose value is not the fill value (``_FillValue``, -9999; open water in the product):
   a 3840 m cube meets one to four 9 km cells. A cube whose cells are all fill is NaN.
4. Aggregate per UTC day: the granules of a day (named by the centre of their 3-hour period,
   01:30 ... 22:30 UTC) are reduced per cube and variable with the statistics below, over the
   granules present (NaNs left out). The coordinate ``granule_count (day)`` records how many
   granules each day had: 8 for a complete day, fewer (values from those present) or 0 (NaN).

Daily statistics (output name; ``<v>`` is the variable)

=================================  ==========  =================================================
variable                           statistic   output names
=================================  ==========  =================================================
sm_surface, sm_rootzone,           mean        ``<v>`` (m3 m-3)
sm_profile (and ``*_wetness``)
surface_pressure                   mean        ``<v>`` (Pa)
leaf_area_index,                   mean        ``<v>``
vegetation_greenness_fraction
surface_temp, soil_temp_layer1     mean, min,  ``<v>``, ``<v>_min``, ``<v>_max`` (K; min and
                                   max         max of the eight 3-hour means)
land_evapotranspiration_flux,      mean        ``<v>`` (kg m-2 s-1: the daily mean rate)
precipitation_total_surface_flux
heat_flux_latent,                  mean        ``<v>`` (W m-2: the daily mean flux)
heat_flux_sensible,
net_downward_shortwave_flux
any other variable                 mean        ``<v>``
=================================  ==========  =================================================

Fluxes stay rates: the daily total of a ``kg m-2 s-1`` flux is its mean times 86400 (kg m-2,
i.e. mm of water per day), of a ``W m-2`` flux its mean times 86400 (J m-2).

Paths are local paths or fsspec URLs (``s3://bucket/...`` with ``storage_options``); every
argument pickles, so the functions run inside Dask tasks, and memory is bounded by one hyperslab
plus the daily accumulators ``(day, cube, variable)``, whatever the number of granules.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Literal

import h5py
import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import NDArray

from cubestream.config import RetryPolicy, transient
from cubestream.errors import AssetNotFoundError, AssetReadError, IncompleteSourceWarning
from cubestream.l1._footprints import projected_bounds
from cubestream.l1._hdf5 import open_hdf5, prefetched
from cubestream.sources.smap import find_granules

__all__ = [
    "DEFAULT_VARIABLES",
    "GRANULES_PER_DAY",
    "STATISTICS",
    "granule_time",
    "list_granules",
    "output_names",
    "smap_cubes",
]

GRANULES_PER_DAY = 8
"""SPL4SMGP granules per UTC day (3-hour averages)."""
DEFAULT_VARIABLES: tuple[str, ...] = (
    "sm_surface",
    "sm_rootzone",
    "sm_profile",
    "surface_temp",
    "soil_temp_layer1",
    "land_evapotranspiration_flux",
    "heat_flux_latent",
    "heat_flux_sensible",
    "net_downward_shortwave_flux",
    "precipitation_total_surface_flux",
    "surface_pressure",
    "leaf_area_index",
    "vegetation_greenness_fraction",
)
"""``Geophysical_Data`` variables read by default."""
Statistic = Literal["mean", "min", "max"]
STATISTICS: dict[str, tuple[Statistic, ...]] = {
    "surface_temp": ("mean", "min", "max"),
    "soil_temp_layer1": ("mean", "min", "max"),
}
"""Daily statistics of the variables that have more than the mean (see the module docstring)."""
EASE_CRS = 6933
EASE_9KM_CELL_M = 9008.055210146
"""Cell size of EASE-Grid 2.0 9 km, used when a granule holds a single row or column."""
FILL_VALUE = -9999.0
_NAME = re.compile(r"SMAP_L4_SM_gph_(\d{8}T\d{6})_")
Array = NDArray[np.float64]


def granule_time(url: str) -> dt.datetime:
    """Centre of a granule's 3-hour period, from its NSIDC file name.

    The time is taken from the ``SMAP_L4_SM_gph_<yyyymmddThhmmss>_`` part of the name wherever
    it is (listing, :func:`cubestream.sources.smap.find_granules`, checks whole names).

    Parameters
    ----------
    url : str
        Path or URL ending in ``SMAP_L4_SM_gph_<yyyymmddThhmmss>_...h5``.

    Returns
    -------
    datetime.datetime

    Raises
    ------
    AssetReadError
        If the name is not an SPL4SMGP granule name.
    """
    match = _NAME.search(url.rsplit("/", 1)[-1])
    if match is None:
        raise AssetReadError(f"not an SMAP L4 granule name (SMAP_L4_SM_gph_<time>_...): {url}")
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S")


def output_names(variables: Sequence[str]) -> list[str]:
    """Names of the daily values of ``variables`` (``smap_variable`` of :func:`smap_cubes`)."""
    return [_name(v, s) for v in variables for s in STATISTICS.get(v, ("mean",))]


def _name(variable: str, statistic: Statistic) -> str:
    return variable if statistic == "mean" else f"{variable}_{statistic}"


# --- listing ------------------------------------------------------------------------------------


def list_granules(
    prefix: str,
    start: dt.date,
    end: dt.date,
    storage_options: dict[str, Any] | None = None,
    *,
    missing: Literal["raise", "skip"] = "raise",
    version: str | None = None,
    retry: RetryPolicy | None = None,
) -> list[str]:
    """Granules of every day in ``[start, end]``, sorted by time.

    The granules are found by :func:`cubestream.sources.smap.find_granules`: NSIDC's day folders
    (``prefix/YYYY.MM.DD/``) or a flat folder, one product version, the highest counter of a
    period kept (and reported).

    Parameters
    ----------
    prefix : str
        Directory holding the day directories (``.../SPL4SMGP.008``) or the granules: a path or
        an fsspec URL.
    start, end : datetime.date
        First and last day (inclusive).
    storage_options : dict, optional
        fsspec options for URLs (for ``s3://``: ``key``, ``secret``, ``client_kwargs``).
    missing : {"raise", "skip"}
        What to do with a day that has fewer than 8 granules: raise, or keep the granules it
        has and warn (:class:`~cubestream.errors.IncompleteSourceWarning`, naming each day and
        its count; :func:`smap_cubes` records the counts in ``granule_count``).
    version : str, optional
        Product version (``"8"``) or science version id (``"Vv8010"``): needed where several
        versions lie under ``prefix``.
    retry : RetryPolicy, optional
        Retries of the listing that fail on throttling, a 5xx or a dropped connection (default:
        :meth:`RetryPolicy.from_config`).

    Returns
    -------
    list of str
        Paths (for a local ``prefix``) or URLs with the scheme of ``prefix``.

    Raises
    ------
    AssetNotFoundError
        If ``missing="raise"`` and a day has fewer than 8 granules (the days are named), or if
        ``prefix`` holds no granules in either layout.
    SourceKindError
        If versions are mixed and ``version`` does not pick one.
    """
    listing = (retry or RetryPolicy.from_config()).call(
        lambda: find_granules(prefix, start, end, storage_options, version=version),
        transient,
        f"SMAP granules under {prefix}",
    )
    counts = Counter(g.time.date() for g in listing.granules)
    days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
    short = {day: counts[day] for day in days if counts[day] < GRANULES_PER_DAY}
    if short:
        _report_short_days(prefix, short, missing)
    return [g.url for g in listing.granules]


def _report_short_days(prefix: str, short: dict[dt.date, int], missing: str) -> None:
    listed = ", ".join(f"{day} ({count} of {GRANULES_PER_DAY})" for day, count in short.items())
    message = f"SMAP days with missing granules under {prefix}: {listed}"
    if missing == "raise":
        raise AssetNotFoundError(f"{message}; pass missing='skip' to keep the granules they have")
    warnings.warn(message, IncompleteSourceWarning, stacklevel=3)


# --- plan: cube footprints, weights and the hyperslab -------------------------------------------


def _overlaps(centres: Array, low: Array, high: Array) -> Array:
    """Overlap lengths ``(cube, cell)`` of the intervals ``[low, high]`` with the cells."""
    step = float(np.abs(np.diff(centres)).mean()) if len(centres) > 1 else EASE_9KM_CELL_M
    lo = np.maximum(low[:, None], centres[None, :] - step / 2)
    hi = np.minimum(high[:, None], centres[None, :] + step / 2)
    return np.asarray(np.clip(hi - lo, 0.0, None))


@dataclass(frozen=True)
class _Plan:
    """Where the cubes of a call fall on one granule grid, and the variables' attributes."""

    rows: slice
    cols: slice
    weights: Array  # (cube, row, col) over the hyperslab: overlap areas in m2
    fills: tuple[float, ...]
    units: tuple[str, ...]


def _plan(
    f: h5py.File, url: str, bounds: Array, cube_ids: Sequence[str], variables: Sequence[str]
) -> _Plan:
    """Weights and hyperslab of the cubes with ``bounds`` (EPSG:6933) on the grid of ``f``."""
    x, y = np.asarray(f["x"][:], np.float64), np.asarray(f["y"][:], np.float64)
    ox = _overlaps(x, bounds[:, 0], bounds[:, 2])
    oy = _overlaps(y, bounds[:, 1], bounds[:, 3])
    covered_x = ox.sum(axis=1) >= (bounds[:, 2] - bounds[:, 0]) * (1 - 1e-9)
    covered_y = oy.sum(axis=1) >= (bounds[:, 3] - bounds[:, 1]) * (1 - 1e-9)
    outside = [cube_ids[int(i)] for i in np.flatnonzero(~(covered_x & covered_y))]
    if outside:
        raise AssetReadError(
            f"cubes {outside} reach beyond the EASE-Grid 2.0 cells of the SMAP granule {url}"
        )
    r = np.flatnonzero(oy.any(axis=0))
    c = np.flatnonzero(ox.any(axis=0))
    rows, cols = slice(int(r[0]), int(r[-1]) + 1), slice(int(c[0]), int(c[-1]) + 1)
    attrs = [ds.attrs for ds in _datasets(f, url, variables)]
    return _Plan(
        rows=rows,
        cols=cols,
        weights=oy[:, rows, None] * ox[:, None, cols],
        fills=tuple(float(np.ravel(a.get("_FillValue", FILL_VALUE))[0]) for a in attrs),
        units=tuple(_text(a.get("units", "")) for a in attrs),
    )


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- reading one granule ------------------------------------------------------------------------


def _datasets(f: h5py.File, url: str, variables: Sequence[str]) -> list[h5py.Dataset]:
    """The ``Geophysical_Data`` datasets of ``variables``; checks the granule's layout."""
    group = f.get("Geophysical_Data")
    if group is None or "x" not in f or "y" not in f:
        raise AssetReadError(f"{url} is not an SPL4SMGP granule (no x, y or Geophysical_Data)")
    missing = [v for v in variables if v not in group]
    if missing:
        raise AssetReadError(f"the SMAP granule {url} lacks Geophysical_Data/{missing}")
    return [group[v] for v in variables]


def _grid_key(f: h5py.File, dataset: h5py.Dataset) -> tuple[int, ...]:
    """Identity of a granule's grid: crop offsets (0 for the global product) and shape."""
    offsets = (int(f.attrs.get("ease_row_offset", 0)), int(f.attrs.get("ease_col_offset", 0)))
    return (*offsets, *dataset.shape)


def _block(datasets: Sequence[h5py.Dataset], plan: _Plan) -> Array:
    """Hyperslabs ``(variable, row, col)``, NaN where the fill value or not finite."""
    out = np.empty((len(datasets), *plan.weights.shape[1:]), dtype=np.float64)
    for k, ds in enumerate(datasets):
        values = ds[plan.rows, plan.cols]
        out[k] = np.where(values == plan.fills[k], np.nan, values)
    return out


def _cube_means(block: Array, weights: Array) -> Array:
    """Area-weighted means ``(cube, variable)`` over the valid cells; NaN with none."""
    valid = np.isfinite(block)
    total = np.einsum("chw,vhw->cv", weights, np.where(valid, block, 0.0))
    norm = np.einsum("chw,vhw->cv", weights, valid.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, total / norm, np.nan)


@dataclass
class _Reader:
    """Reads granules for one call, planning once per granule grid."""

    bounds: Array
    cube_ids: list[str]
    variables: tuple[str, ...]
    plans: dict[tuple[int, ...], _Plan]

    def values(self, url: str, fetched: Future[Any] | None) -> tuple[Array, _Plan]:
        """Cube values ``(cube, variable)`` of one granule, and the plan of its grid."""
        with open_hdf5(url, fetched, "SMAP granule") as f:
            datasets = _datasets(f, url, self.variables)
            key = _grid_key(f, datasets[0])
            if key not in self.plans:
                self.plans[key] = _plan(f, url, self.bounds, self.cube_ids, self.variables)
            plan = self.plans[key]
            block = _block(datasets, plan)
        return _cube_means(block, plan.weights), plan


# --- daily aggregation --------------------------------------------------------------------------


class _Daily:
    """Running sums, counts, minima and maxima ``(day, cube, variable)``."""

    def __init__(self, n_days: int, n_cubes: int, n_vars: int) -> None:
        shape = (n_days, n_cubes, n_vars)
        self.total = np.zeros(shape)
        self.count = np.zeros(shape, dtype=np.int64)
        self.low = np.full(shape, np.inf)
        self.high = np.full(shape, -np.inf)
        self.granules = np.zeros(n_days, dtype=np.int64)

    def add(self, day: int, values: Array) -> None:
        valid = np.isfinite(values)
        self.total[day] += np.where(valid, values, 0.0)
        self.count[day] += valid
        self.low[day] = np.fmin(self.low[day], values)
        self.high[day] = np.fmax(self.high[day], values)
        self.granules[day] += 1

    def statistic(self, statistic: Statistic) -> Array:
        has = self.count > 0
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.total / self.count
        out = {"mean": mean, "min": self.low, "max": self.high}[statistic]
        return np.where(has, out, np.nan)


def _daily_array(daily: _Daily, variables: tuple[str, ...]) -> NDArray[np.float32]:
    """Stack the statistics in :func:`output_names` order: ``(cube, day, smap_variable)``."""
    stats = {s: daily.statistic(s) for s in ("mean", "min", "max")}
    columns = [
        stats[s][:, :, k] for k, v in enumerate(variables) for s in STATISTICS.get(v, ("mean",))
    ]
    return np.stack(columns, axis=-1).transpose(1, 0, 2).astype(np.float32)


# --- the entry point ----------------------------------------------------------------------------


def smap_cubes(
    granules: Sequence[str],
    cubes: pd.DataFrame,
    variables: tuple[str, ...] = DEFAULT_VARIABLES,
    storage_options: dict[str, Any] | None = None,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    prefetch: int = 8,
    retry: RetryPolicy | None = None,
) -> xr.DataArray:
    """Daily SMAP L4 values over each cube's footprint (see the module docstring).

    Parameters
    ----------
    granules : sequence of str
        SPL4SMGP granule paths or URLs (from :func:`list_granules`), in any order.
    cubes : pandas.DataFrame
        One row per cube, with ``cube_id``, ``epsg``, ``x_min``, ``y_min``, ``x_max``,
        ``y_max`` (box bounds in the CRS ``epsg``, one CRS for all rows).
    variables : tuple of str
        ``Geophysical_Data`` variables to read.
    storage_options : dict, optional
        fsspec options for URLs.
    start, end : datetime.date, optional
        Days of the output (inclusive); by default the days of the first and last granule.
        Granules outside are not read; days without granules are NaN with count 0.
    prefetch : int
        Remote granules opened ahead, in as many threads (each holds one 128 KiB block:
        the header, or the whole of a small granule); 0 opens them one by one.
        HDF5 decoding itself stays in the calling thread (h5py serialises it).
    retry : RetryPolicy, optional
        Retries of a granule's opening that fails on throttling, a 5xx or a dropped connection
        (default: :meth:`RetryPolicy.from_config`).

    Returns
    -------
    xarray.DataArray
        ``(cube, day, smap_variable)`` float32 with coordinates ``cube`` (cube ids), ``day``
        (midnight UTC), ``smap_variable`` (:func:`output_names`) and ``granule_count (day)``
        (granules read per day, 8 when complete); ``attrs["units"]`` lists the units per
        ``smap_variable``.

    Raises
    ------
    AssetNotFoundError
        If a granule does not exist (it is named).
    AssetReadError
        If a granule cannot be read, lacks a variable, or does not cover every cube.
    """
    if not granules and (start is None or end is None):
        raise ValueError("no granules: pass start and end to get an all-NaN result")
    times = {url: granule_time(url) for url in granules}
    first = start or min(times.values()).date()
    last = end or max(times.values()).date()
    n_days = (last - first).days + 1
    reader = _Reader(
        bounds=projected_bounds(cubes, EASE_CRS),
        cube_ids=[str(c) for c in cubes["cube_id"]],
        variables=tuple(variables),
        plans={},
    )
    daily = _Daily(n_days, len(cubes), len(variables))
    units: tuple[str, ...] = ("",) * len(variables)
    wanted = sorted(
        (u for u in granules if first <= times[u].date() <= last), key=times.__getitem__
    )
    for url, fetched in prefetched(wanted, storage_options, prefetch, retry):
        values, plan = reader.values(url, fetched)
        daily.add((times[url].date() - first).days, values)
        units = plan.units
    return _result(daily, reader, first, units)


def _result(daily: _Daily, reader: _Reader, first: dt.date, units: tuple[str, ...]) -> xr.DataArray:
    days = np.datetime64(first, "D") + np.arange(len(daily.granules))
    stat_units = [
        u for v, u in zip(reader.variables, units, strict=True) for _ in STATISTICS.get(v, ["mean"])
    ]
    return xr.DataArray(
        _daily_array(daily, reader.variables),
        dims=("cube", "day", "smap_variable"),
        coords={
            "cube": reader.cube_ids,
            "day": days,
            "smap_variable": output_names(reader.variables),
            "granule_count": ("day", daily.granules),
        },
        name="smap",
        attrs={"units": stat_units},
    )
