"""Sub-daily shapes shared by the ERA5 and SMAP writers, so both archives tell the same day.

The world is simulated daily (:mod:`cubestream.replica.drivers`); the archives are hourly (ERA5)
and 3-hourly (SMAP). Every sub-daily value is a daily driver value times a fixed shape of the local
solar time ``tl = utc + lon / 15`` (hours):

- daily totals (rain, radiation, evaporation) are split over a UTC day by :func:`day_fractions`,
  whose fractions of one day sum to 1, so summing an archive's intervals over a UTC day gives back
  the driver's daily total exactly. Shapes: ``"sun"`` ``max(0, sin(pi (tl - 6) / 12))`` (daylight
  06-18 local), ``"evaporation"`` ``0.03 + sun`` (a little at night), ``"rain"``
  ``1 + 0.8 cos(2 pi (tl - 16) / 24)`` (afternoon convection).
- daily means with a cycle (temperature, pressure) add
  ``amplitude * cos(2 pi (tl - peak) / period)``, averaged over the archive's interval by
  :func:`cosine_mean` (a 3-hour mean of a 24-hour cycle keeps 97.4 % of its amplitude). Samples
  spaced evenly over a day average to zero, so the daily mean of the archive equals the driver's
  daily mean.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["Shape", "cosine_mean", "day_fractions", "local_hours"]

Shape = Literal["sun", "evaporation", "rain"]
_SAMPLES_PER_HOUR = 60


def local_hours(utc_hours: ArrayLike, lon: ArrayLike) -> NDArray[np.float64]:
    """Local solar time (hours, not wrapped) of UTC hours at longitudes ``lon`` (broadcast)."""
    return np.asarray(utc_hours, dtype=np.float64) + np.asarray(lon, dtype=np.float64) / 15.0


def _shape(kind: Shape, tl: NDArray[np.float64]) -> NDArray[np.float64]:
    sun = np.maximum(0.0, np.sin(np.pi * (tl - 6.0) / 12.0))
    if kind == "sun":
        return np.asarray(sun)
    if kind == "evaporation":
        return np.asarray(0.03 + sun)
    return np.asarray(1.0 + 0.8 * np.cos(2 * np.pi * (tl - 16.0) / 24.0))


def day_fractions(kind: Shape, step_hours: int, lon: ArrayLike) -> NDArray[np.float64]:
    """Fraction of a UTC day's total that falls in each interval ``[k step, (k + 1) step)`` UTC.

    Parameters
    ----------
    kind : {"sun", "evaporation", "rain"}
        Sub-daily shape (see the module docstring).
    step_hours : int
        Interval length in hours; must divide 24.
    lon : array
        Longitudes (degrees), any shape.

    Returns
    -------
    numpy.ndarray
        Shape ``(24 // step_hours, *lon.shape)``; sums to 1 over the first axis. Hourly fractions
        summed by threes equal the 3-hourly fractions (same fine sampling underneath).
    """
    lon = np.asarray(lon, dtype=np.float64)
    fine = (np.arange(24 * _SAMPLES_PER_HOUR) + 0.5) / _SAMPLES_PER_HOUR
    tl = local_hours(fine.reshape((-1,) + (1,) * lon.ndim), lon)
    weights = _shape(kind, tl)
    weights /= weights.sum(axis=0, keepdims=True)
    per_interval = weights.reshape((24 // step_hours, step_hours * _SAMPLES_PER_HOUR, *lon.shape))
    return np.asarray(per_interval.sum(axis=1))


def cosine_mean(
    start_utc: ArrayLike,
    length_hours: float,
    lon: ArrayLike,
    peak_local: float,
    period_hours: float = 24.0,
) -> NDArray[np.float64]:
    """Mean of ``cos(2 pi (tl - peak_local) / period)`` over ``[start, start + length]`` UTC.

    ``length_hours = 0`` gives the instantaneous value at ``start_utc``. Arguments broadcast.
    """
    omega = 2 * np.pi / period_hours
    phase = omega * (local_hours(start_utc, lon) - peak_local)
    if length_hours == 0:
        return np.asarray(np.cos(phase))
    span = omega * length_hours
    return np.asarray((np.sin(phase + span) - np.sin(phase)) / span)
