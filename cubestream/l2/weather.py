"""Weather drivers: the daily ERA5 and SMAP values of L1, as one value per 10-daily step.

Where the values come from
    - ERA5 (L1 ``era5 (era5_time, era5_variable, latitude, longitude)``, one window per tile):
      by default the cell whose centre is nearest to the cube's centre (``lon``, ``lat`` of
      L1), so neighbouring cubes of a tile get their own weather; ``era5_point="window_mean"``
      averages the tile's whole window instead (NaN cells left out).
    - SMAP (L1 ``smap (cube, day, smap_variable)``): the cube's own footprint (L1 already
      averaged the 9 km cells over it, weighted by overlap).

Aggregation to a step
    Step ``t`` aggregates the days ``(d_t - 10, d_t]`` (:mod:`cubestream.l2.windows`). The
    statistic follows the daily variable's name: its daily statistic is kept.

    ==========================================  ==========  =====================================
    daily variable (L1)                         statistic   10-daily value
    ==========================================  ==========  =====================================
    ``*_min`` (``t2m_min``, ``surface_temp_     min         minimum of the daily minima
    min``, ``soil_temp_layer1_min``)
    ``*_max`` (``t2m_max``, ...)                max         maximum of the daily maxima
    ``*_sum`` (``tp_sum``, ``e_sum``,           sum         total over the ten days (m, J m-2)
    ``pev_sum``, ``ssr_sum``)
    anything else (``t2m_mean``, ``d2m_mean``,  mean        mean of the daily values (soil
    ``sp_mean``, SMAP ``sm_surface``,                       moisture m3 m-3, temperatures K,
    ``sm_rootzone``, ``surface_temp``, the                  fluxes as daily mean rates)
    SMAP fluxes, ...)
    ==========================================  ==========  =====================================

Missing values
    Days with NaN (a day without SMAP granules, say) are left out: a mean, minimum or maximum
    is taken over the days present and a sum is the mean of the days present times 10. A step
    without any day is interpolated linearly in time from the neighbouring steps of the same
    variable (carried at the window's ends). A variable with no value in the whole window (SMAP
    over open water) makes the sample unusable: it is skipped and reported.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from cubestream.errors import UnusableSampleError
from cubestream.l2.config import Era5Point
from cubestream.l2.schema import STEP_DAYS

__all__ = ["Statistic", "era5_at", "fill_step_gaps", "statistic_of", "ten_daily"]

Statistic = Literal["mean", "min", "max", "sum"]


def statistic_of(name: str) -> Statistic:
    """The 10-daily statistic of a daily variable, from its name (see the module docstring)."""
    for suffix in ("min", "max", "sum"):
        if name.endswith(f"_{suffix}"):
            return suffix
    return "mean"


def era5_at(
    values: np.ndarray,
    latitudes: np.ndarray,
    longitudes: np.ndarray,
    lon: float,
    lat: float,
    how: Era5Point = "nearest",
) -> np.ndarray:
    """Daily ERA5 series ``(day, variable)`` for a cube centred on ``(lon, lat)``.

    Parameters
    ----------
    values : numpy.ndarray
        ``(day, variable, latitude, longitude)``.
    latitudes, longitudes : numpy.ndarray
        Cell centres (degrees; longitudes in any convention, compared modulo 360).
    lon, lat : float
        The cube's centre.
    how : {"nearest", "window_mean"}
        The nearest cell, or the mean of the whole window.
    """
    if how == "window_mean":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.asarray(np.nanmean(values, axis=(2, 3)), np.float32)
    row = int(np.argmin(np.abs(np.asarray(latitudes) - lat)))
    col = int(np.argmin(np.abs((np.asarray(longitudes) - lon + 180.0) % 360.0 - 180.0)))
    return np.asarray(values[:, :, row, col], np.float32)


def ten_daily(
    days: np.ndarray, values: np.ndarray, steps: np.ndarray, statistics: Sequence[Statistic]
) -> np.ndarray:
    """Aggregate daily values to the steps; NaN where a step has no day with a value.

    Parameters
    ----------
    days : numpy.ndarray
        Days of the rows of ``values`` (days since 1970), increasing, without repeats.
    values : numpy.ndarray
        ``(day, variable)``.
    steps : numpy.ndarray
        Step days ``d_t``.
    statistics : sequence of Statistic
        One per variable.

    Returns
    -------
    numpy.ndarray
        ``(step, variable)`` float32.
    """
    days = np.asarray(days, np.int64)
    out = np.full((len(steps), values.shape[1]), np.nan, np.float32)
    if len(days) == 0:
        return out
    wanted = np.asarray(steps, np.int64)[:, None] - np.arange(STEP_DAYS - 1, -1, -1)
    rows = np.clip(np.searchsorted(days, wanted), 0, len(days) - 1)
    block = np.where((days[rows] == wanted)[..., None], values[rows], np.nan)
    reduce: dict[str, Callable[..., np.ndarray]] = {
        "mean": np.nanmean,
        "min": np.nanmin,
        "max": np.nanmax,
        "sum": np.nanmean,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN steps stay NaN
        for v, statistic in enumerate(statistics):
            column = reduce[statistic](block[:, :, v], axis=1)
            out[:, v] = column * STEP_DAYS if statistic == "sum" else column
    return out


def fill_step_gaps(values: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Interpolate the NaN steps of each variable linearly; raise if a variable has no value.

    Raises
    ------
    UnusableSampleError
        If a variable is NaN at every step (named in the message).
    """
    out = values.copy()
    steps = np.arange(values.shape[0])
    for v, name in enumerate(names):
        known = np.isfinite(values[:, v])
        if not known.any():
            raise UnusableSampleError(f"weather variable {name!r} has no value in the window")
        if not known.all():
            out[:, v] = np.interp(steps, steps[known], values[known, v])
    return out
