"""ERA5 as users have it: one adapter per layout, each giving the canonical dataset of L1.

:func:`open_era5` opens a source lazily (metadata and coordinates only, no Dask), picks its
layout (named by the user, or detected from names, dimensions and attributes: never guessed)
and returns the *canonical dataset* that :func:`cubestream.l1.era5.era5_tile` reads:

- data variables with the short names ``t2m d2m sp tp e pev ssr`` (those the source has) over
  ``(time, latitude, longitude)``; ``time`` sorted and unique; latitude and longitude as stored
  (either order, longitudes -180..180 or 0..360: :func:`era5_tile` handles both);
- each summed variable (``tp e pev ssr``) tells its accumulation convention: the attribute
  ``accumulation_period_hours = k`` says each value is the amount over the ``k`` hours ending at
  ``time`` (per-step amounts); without it, ``GRIB_stepType = "accum"`` or an ``accumulation``
  attribute says raw forecast accumulations (restarting at 06 and 18 UTC).

Layouts

=================  ====================================  ==========================================
layout             detected by                           normalisation
=================  ====================================  ==========================================
``cubestream``     ``time``; short names; summed         none (raw forecast accumulations, the
                   variables say ``accum``               replica's store)
``arco``           ``time``; long names                  long -> short names; ``time`` cut to
                   (``2m_temperature`` ...); attribute   ``valid_time_start`` .. the later of
                   ``valid_time_start``                  ``valid_time_stop`` and
                                                         ``valid_time_stop_era5t``; hourly amounts
``cds``            ``valid_time``; short names; NetCDF   files stitched along ``valid_time``
                   file, glob, folder or ``.zip``        (a step held twice keeps ERA5 ``0001``
                                                         over ERA5T ``0005``); hourly amounts
``weatherbench2``  ``time``; long names; no              long -> short names; at 6 h steps ``tp``
                   ``valid_time_start``                  from ``total_precipitation_6hr``
=================  ====================================  ==========================================

A 6-hourly WeatherBench2 store has no 6-hour amounts of ``e``, ``pev``, ``ssr`` (its hourly
accumulations hold the last hour only): those are left out and named in the dataset's
``unavailable`` attribute. Legacy CDS NetCDF (``time``, short names, no GRIB attributes) is not
detected: name it with ``--era5-layout cds``; one with an ``expver`` *dimension* is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import xarray as xr
from numpy.typing import NDArray
from xarray.core import indexing

from cubestream.errors import AssetReadError
from cubestream.sources._era5_files import Rows, open_parts
from cubestream.sources.kinds import Era5Layout

__all__ = [
    "ADAPTERS",
    "ERA5_LAYOUTS",
    "LONG_NAMES",
    "SUMMED",
    "VARIABLES",
    "Era5Adapter",
    "Era5Layout",
    "Era5Source",
    "detect_layout",
    "open_era5",
]

ERA5_LAYOUTS: tuple[str, ...] = ("auto", "cubestream", "arco", "cds", "weatherbench2")
"""Values of ``--era5-layout``."""
VARIABLES = ("t2m", "d2m", "sp", "tp", "e", "pev", "ssr")
"""Short names of the canonical dataset."""
SUMMED = ("tp", "e", "pev", "ssr")
"""Accumulated (summed) variables."""
LONG_NAMES = {
    "2m_temperature": "t2m",
    "2m_dewpoint_temperature": "d2m",
    "surface_pressure": "sp",
    "total_precipitation": "tp",
    "evaporation": "e",
    "potential_evaporation": "pev",
    "surface_net_solar_radiation": "ssr",
}
"""ARCO-ERA5 / WeatherBench2 (CDS long) names -> short names."""
OPTION = "--era5-layout {cubestream,arco,cds,weatherbench2}"
_HOUR = np.timedelta64(1, "h")
Parts = Sequence[tuple[str, xr.Dataset]]


@dataclass(frozen=True)
class Era5Source:
    """An opened ERA5 source: where it is, its layout and its canonical dataset."""

    url: str
    layout: str
    dataset: xr.Dataset


class Era5Adapter(Protocol):
    """One layout: how to recognise it and how to turn it into the canonical dataset."""

    layout: str

    def mismatches(self, ds: xr.Dataset) -> list[str]:
        """What in ``ds`` does not fit this layout (empty: it fits)."""
        ...

    def normalise(self, parts: Parts, url: str) -> xr.Dataset:
        """The canonical dataset of the opened ``parts`` (file name, dataset); lazy."""
        ...


# --- checks shared by the adapters --------------------------------------------------------------


def _says_accumulated(attrs: dict[Any, Any]) -> bool:
    return attrs.get("GRIB_stepType") == "accum" or "accumulation" in attrs


def _names_and_time(ds: xr.Dataset, names: Sequence[str], time: str, kind: str) -> list[str]:
    out = []
    if time not in ds.dims:
        out.append(f"no '{time}' dimension (dimensions: {sorted(map(str, ds.dims))})")
    if not any(n in ds.data_vars for n in names):
        out.append(f"none of the {kind} names {list(names)}")
    return out


def _one(parts: Parts, layout: str, url: str) -> xr.Dataset:
    if len(parts) != 1:
        raise AssetReadError(
            f"the ERA5 source {url} is {len(parts)} NetCDF files; the {layout} layout is one "
            "Zarr store (NetCDF files are the cds layout)"
        )
    return parts[0][1]


def _per_step(attrs: dict[Any, Any], hours: int, how: str) -> dict[Any, Any]:
    return {**attrs, "accumulation_period_hours": hours, "accumulation": how}


def _step_hours(ds: xr.Dataset, url: str) -> int:
    times = ds["time"].values
    if len(times) < 2:
        raise AssetReadError(f"the ERA5 source {url} holds fewer than two time steps")
    return int(np.min(np.diff(times)) // _HOUR)


# --- the adapters -------------------------------------------------------------------------------


class CubestreamAdapter:
    """Today's layout: short names, ``time``, raw forecast accumulations (no change)."""

    layout = "cubestream"

    def mismatches(self, ds: xr.Dataset) -> list[str]:
        out = _names_and_time(ds, VARIABLES, "time", "short")
        bare = [v for v in SUMMED if v in ds.data_vars and not _says_accumulated(ds[v].attrs)]
        if bare:
            out.append(
                f"{bare} lack accumulation attributes (GRIB_stepType 'accum' or 'accumulation')"
            )
        return out

    def normalise(self, parts: Parts, url: str) -> xr.Dataset:
        ds = _one(parts, self.layout, url)
        return ds[[v for v in VARIABLES if v in ds.data_vars]]


class ArcoAdapter:
    """ARCO-ERA5: long names, hourly amounts, data only in the ``valid_time_*`` window."""

    layout = "arco"

    def mismatches(self, ds: xr.Dataset) -> list[str]:
        out = _names_and_time(ds, list(LONG_NAMES), "time", "long")
        if "valid_time_start" not in ds.attrs:
            out.append("no attribute 'valid_time_start'")
        return out

    def normalise(self, parts: Parts, url: str) -> xr.Dataset:
        ds = _one(parts, self.layout, url)
        if "valid_time_start" not in ds.attrs or "valid_time_stop" not in ds.attrs:
            raise AssetReadError(
                f"the ARCO-ERA5 store {url} lacks the attributes valid_time_start/valid_time_stop"
                " that bound its data; name another layout with " + OPTION
            )
        stops = [ds.attrs["valid_time_stop"], ds.attrs.get("valid_time_stop_era5t")]
        stop = max(str(s) for s in stops if s)
        window = ds.sel(time=slice(str(ds.attrs["valid_time_start"]), stop))
        return _renamed(window, 1, "ARCO-ERA5 hourly: the amount over the hour ending at time")


class WeatherBench2Adapter:
    """WeatherBench2 ERA5: long names at 1 or 6 hours; 6-hour precipitation sums."""

    layout = "weatherbench2"

    def mismatches(self, ds: xr.Dataset) -> list[str]:
        out = _names_and_time(ds, list(LONG_NAMES), "time", "long")
        if "valid_time_start" in ds.attrs:
            out.append("has ARCO-ERA5's attribute 'valid_time_start'")
        return out

    def normalise(self, parts: Parts, url: str) -> xr.Dataset:
        ds = _one(parts, self.layout, url)
        step = _step_hours(ds, url)
        if step == 1:
            return _renamed(ds, 1, "WeatherBench2 hourly: the amount over the hour ending at time")
        names = {f"{long}_{step}hr": short for long, short in LONG_NAMES.items()}
        instant = {k: v for k, v in LONG_NAMES.items() if v not in SUMMED and k in ds.data_vars}
        period = {k: v for k, v in names.items() if k in ds.data_vars}
        lost = [v for k, v in LONG_NAMES.items() if v in SUMMED and v not in period.values()]
        out = ds[[*instant, *period]].rename({**instant, **period})
        how = f"WeatherBench2 {step}-hourly sums: the amount over the {step} hours ending at time"
        for v in period.values():
            out[v].attrs = _per_step(out[v].attrs, step, how)
        if lost:
            out.attrs["unavailable"] = (
                f"{lost}: the {step}-hourly store {url} has no {step}-hour amounts of them "
                "(hourly accumulations sampled every few hours cannot be summed to days)"
            )
        return out


def _renamed(ds: xr.Dataset, hours: int, how: str) -> xr.Dataset:
    present = {k: v for k, v in LONG_NAMES.items() if k in ds.data_vars}
    out = ds[list(present)].rename(present)
    for v in SUMMED:
        if v in out.data_vars:
            out[v].attrs = _per_step(out[v].attrs, hours, how)
    return out


class CdsAdapter:
    """New-CDS NetCDF: ``valid_time``, ``expver`` per step, one file per stepType."""

    layout = "cds"

    def mismatches(self, ds: xr.Dataset) -> list[str]:
        return _names_and_time(ds, VARIABLES, "valid_time", "short")

    def normalise(self, parts: Parts, url: str) -> xr.Dataset:
        return _stitch(parts, url)


ADAPTERS: dict[str, Era5Adapter] = {
    a.layout: a for a in (CubestreamAdapter(), ArcoAdapter(), CdsAdapter(), WeatherBench2Adapter())
}
"""The adapter of each layout."""


def detect_layout(ds: xr.Dataset, url: str) -> str:
    """The one layout ``ds`` fits; raises naming what each layout misses otherwise.

    Raises
    ------
    AssetReadError
        If no layout or several fit.
    """
    misses = {name: adapter.mismatches(ds) for name, adapter in ADAPTERS.items()}
    fits = [name for name, miss in misses.items() if not miss]
    if len(fits) == 1:
        return fits[0]
    names = sorted(map(str, ds.data_vars))
    shown = names[:12] + (["..."] if len(names) > 12 else [])
    if not fits:
        why = "; ".join(f"{name}: {', '.join(miss)}" for name, miss in misses.items())
        raise AssetReadError(
            f"unknown ERA5 layout of {url} (variables {shown}, dimensions "
            f"{sorted(map(str, ds.dims))}): {why}. Name the layout with {OPTION}"
        )
    raise AssetReadError(f"ambiguous ERA5 layout of {url}: it fits {fits}; name one with {OPTION}")


# --- stitching NetCDF files (cds) ---------------------------------------------------------------


def _time_name(ds: xr.Dataset, name: str) -> str:
    if "expver" in ds.dims:
        raise AssetReadError(
            f"the ERA5 NetCDF {name} has an 'expver' dimension (legacy CDS): it is not read; "
            "download it again from the new CDS (data_format netcdf)"
        )
    for time in ("valid_time", "time"):
        if time in ds.dims:
            return time
    raise AssetReadError(f"the ERA5 NetCDF {name} has no 'valid_time' or 'time' dimension")


def _priority(ds: xr.Dataset, time: str) -> NDArray[np.int64]:
    """0 for ERA5 (``expver`` 0001) steps, 1 for any other (ERA5T 0005) or unknown."""
    if "expver" not in ds.variables:
        return np.ones(ds.sizes[time], dtype=np.int64)
    codes = np.asarray(ds["expver"].values).astype(str)
    return np.where(np.char.strip(codes) == "0001", 0, 1).astype(np.int64)


def _pick(parts: list[tuple[str, xr.Dataset, str]]) -> tuple[NDArray[Any], NDArray[np.intp]]:
    """Times held by ``parts`` once each (ERA5 before ERA5T, then file order): times, keys."""
    times = np.concatenate([ds[t].values.astype("datetime64[ns]") for _, ds, t in parts])
    priority = np.concatenate([_priority(ds, t) for _, ds, t in parts])
    order = np.lexsort((np.arange(len(times)), priority, times))
    first = np.ones(len(order), dtype=bool)
    first[1:] = times[order][1:] != times[order][:-1]
    keep = order[first]
    return times[keep], keep


def _stitch(parts: Parts, url: str) -> xr.Dataset:
    """One canonical dataset from the files of a CDS download (lazy; see the module docstring)."""
    timed = [(name, ds, _time_name(ds, name)) for name, ds in parts]
    _same_grid(timed, url)
    columns: dict[str, tuple[NDArray[Any], list[tuple[str, xr.Dataset, str]], NDArray[Any]]] = {}
    for v in VARIABLES:
        holding = [p for p in timed if v in p[1].data_vars]
        if holding:
            times, keep = _pick(holding)
            columns[v] = (times, holding, keep)
    if not columns:
        raise AssetReadError(
            f"the ERA5 NetCDF files of {url} hold none of {list(VARIABLES)} "
            f"(files: {[name for name, _ in parts]})"
        )
    common = columns[next(iter(columns))][0]
    for times, _, _ in columns.values():
        common = np.intersect1d(common, times)
    first = timed[0][1]
    data = {v: _column(v, common, *columns[v]) for v in columns}
    coords: dict[str, Any] = {
        "time": common,
        "latitude": first["latitude"],
        "longitude": first["longitude"],
    }
    if any("expver" in ds.variables for _, ds, _ in timed):
        coords["expver"] = ("time", _expver(common, *columns[next(iter(columns))]))
    attrs = {"source": url, "era5_layout": "cds"}
    absent = [v for v in VARIABLES if v not in columns]
    if absent:
        attrs["unavailable"] = (
            f"{absent}: not in the files {[name for name, _ in parts]}; a CDS download is an "
            "accum and an instant file: give both (their folder, a glob or the .zip)"
        )
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _expver(
    common: NDArray[Any],
    times: NDArray[Any],
    holding: list[tuple[str, xr.Dataset, str]],
    keep: NDArray[np.intp],
) -> NDArray[np.str_]:
    """The ``expver`` of each step kept ('' where a file has none)."""
    codes = [
        np.asarray(ds["expver"].values).astype(str)
        if "expver" in ds.variables
        else np.full(ds.sizes[t], "")
        for _, ds, t in holding
    ]
    return np.concatenate(codes)[keep][np.searchsorted(times, common)]


def _column(
    v: str,
    common: NDArray[Any],
    times: NDArray[Any],
    holding: list[tuple[str, xr.Dataset, str]],
    keep: NDArray[np.intp],
) -> xr.Variable:
    sizes = [ds.sizes[t] for _, ds, t in holding]
    part = np.repeat(np.arange(len(holding)), sizes)[keep]
    row = np.concatenate([np.arange(n) for n in sizes])[keep]
    at = np.searchsorted(times, common)
    variables = [ds[v].variable for _, ds, _ in holding]
    for (name, _, time), variable in zip(holding, variables, strict=True):
        if variable.dims[0] != time:
            raise AssetReadError(
                f"{v} of the ERA5 NetCDF {name} has dimensions {variable.dims}; "
                f"'{time}' must come first"
            )
    attrs = dict(variables[0].attrs)
    if v in SUMMED:
        attrs = _per_step(attrs, 1, "CDS hourly: the amount over the hour ending at valid_time")
    array = indexing.LazilyIndexedArray(Rows(variables, part[at], row[at]))
    dims = ("time", *variables[0].dims[1:])
    chunk = min(sizes)
    return xr.Variable(dims, array, attrs, encoding={"chunks": (chunk, *variables[0].shape[1:])})


def _same_grid(timed: list[tuple[str, xr.Dataset, str]], url: str) -> None:
    name0, ds0, _ = timed[0]
    for name, ds, _ in timed[1:]:
        for axis in ("latitude", "longitude"):
            if not np.array_equal(ds[axis].values, ds0[axis].values):
                raise AssetReadError(
                    f"the ERA5 NetCDF files {name0} and {name} of {url} have different "
                    f"{axis} grids; download them on one grid"
                )


def _check_named(ds: xr.Dataset, layout: str, name: str) -> None:
    """A named layout needs its time dimension and some of its variable names."""
    names = list(LONG_NAMES) if layout in ("arco", "weatherbench2") else list(VARIABLES)
    times = ("valid_time", "time") if layout == "cds" else ("time",)
    if not any(t in ds.dims for t in times) or not any(n in ds.data_vars for n in names):
        raise AssetReadError(
            f"{name} is not in the {layout} ERA5 layout: it needs a {' or '.join(times)} "
            f"dimension and some of {names} (it has dimensions {sorted(map(str, ds.dims))}, "
            f"variables {sorted(map(str, ds.data_vars))[:12]}); name another with {OPTION} or "
            "leave it to auto"
        )


def open_era5(
    url: str, layout: Era5Layout | str = "auto", storage_options: dict[str, Any] | None = None
) -> Era5Source:
    """Open an ERA5 source lazily as the canonical dataset (see the module docstring).

    Parameters
    ----------
    url : str
        A Zarr store, or NetCDF: a file, a glob, a folder of ``.nc`` files or a ``.zip`` of them;
        a path or an fsspec URL.
    layout : {"auto", "cubestream", "arco", "cds", "weatherbench2"}
        The layout, or ``"auto"`` to detect it.
    storage_options : dict, optional
        fsspec options for URLs.

    Returns
    -------
    Era5Source
        The url, the layout used and the canonical dataset (nothing read but coordinates).

    Raises
    ------
    AssetNotFoundError
        If the source does not exist.
    AssetReadError
        If it cannot be read, or its layout is unknown, ambiguous or not the one named.
    ValueError
        If ``layout`` is not one of the layouts.
    """
    if layout not in ERA5_LAYOUTS:
        raise ValueError(f"era5 layout must be one of {list(ERA5_LAYOUTS)}, not {layout!r}")
    parts, netcdf = open_parts(url, storage_options)
    if layout == "auto":
        checked = [detect_layout(ds, name) for name, ds in parts]
        layout = checked[0]
        if netcdf and set(checked) != {"cds"}:
            raise AssetReadError(
                f"the NetCDF files of {url} are detected as {checked}; NetCDF is read as the "
                f"cds layout only ({OPTION})"
            )
    else:
        for name, ds in parts:
            _check_named(ds, layout, name)
    dataset = ADAPTERS[layout].normalise(parts, url)
    dataset.attrs = {**dataset.attrs, "era5_layout": layout, "source": url}
    return Era5Source(url=url, layout=layout, dataset=dataset)
