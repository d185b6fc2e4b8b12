"""Valid observations from the scene classification, and the per-step ``mask`` and ``dist_mask``.

An observation (a pixel on an acquisition day) is *valid* when its SCL class is not in the
invalid set and every band holds data (DN > 0). The invalid set is a setting; the default:

=====  ==========================================  =========
SCL    class                                       default
=====  ==========================================  =========
0      no data                                     invalid
1      saturated or defective                      invalid
2      dark area pixels (topographic shadow)       valid
3      cloud shadows                               invalid
4      vegetation                                  valid
5      not vegetated (bare soil)                   valid
6      water                                       valid
7      unclassified                                valid
8      cloud, medium probability                   invalid
9      cloud, high probability                     invalid
10     thin cirrus                                 invalid
11     snow or ice                                 invalid
=====  ==========================================  =========

With the step days ``d_t`` of a window (:mod:`cubestream.l2.windows`) and the acquisition days
``a_i`` of the L1 record:

- ``mask[t] = 0`` if some valid observation has ``d_t - 10 < a_i <= d_t``, else ``1``;
- ``dist_mask[t] = min(a_i - d_t)`` over the valid observations with ``a_i >= d_t`` (``0``
  when one falls on ``d_t`` itself), capped at ``cap`` days: the build reads ``cap`` days past
  the window's last step, so every value below the cap is exact, and the cap means "``cap`` days
  or more" (also where the record ends first).

Everything is vectorised over pixels: a cumulative count of valid observations along time gives
``mask`` and a reversed running minimum of valid indices gives ``dist_mask``; memory is a few
``(time, y, x)`` integer arrays.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cubestream.l2.config import INVALID_SCL
from cubestream.l2.schema import STEP_DAYS

__all__ = [
    "INVALID_SCL",
    "days_to_next",
    "gather",
    "next_valid",
    "previous_valid",
    "step_mask",
    "valid_observations",
]


def valid_observations(
    scl: np.ndarray, dn: np.ndarray | None = None, invalid: Sequence[int] = INVALID_SCL
) -> np.ndarray:
    """Valid observations, ``(time, y, x)`` bool.

    Parameters
    ----------
    scl : numpy.ndarray
        Scene classes ``(time, y, x)``.
    dn : numpy.ndarray, optional
        Reflectance DN ``(time, band, y, x)``; an observation with a 0 (no data) in any band is
        invalid.
    invalid : sequence of int
        The invalid SCL classes.
    """
    valid = ~np.isin(scl, np.asarray(invalid, dtype=scl.dtype))
    if dn is not None:
        valid &= (dn > 0).all(axis=1)
    return valid


def previous_valid(valid: np.ndarray) -> np.ndarray:
    """Index of the latest valid observation at or before each time index; -1 if none."""
    index = np.arange(valid.shape[0], dtype=np.int32).reshape(-1, *([1] * (valid.ndim - 1)))
    return np.maximum.accumulate(np.where(valid, index, np.int32(-1)), axis=0)


def next_valid(valid: np.ndarray) -> np.ndarray:
    """Index of the earliest valid observation at or after each time index; ``len`` if none."""
    n = valid.shape[0]
    index = np.arange(n, dtype=np.int32).reshape(-1, *([1] * (valid.ndim - 1)))
    later = np.where(valid, index, np.int32(n))[::-1]
    return np.minimum.accumulate(later, axis=0)[::-1]


def gather(index: np.ndarray, positions: np.ndarray, outside: int) -> np.ndarray:
    """``index[positions]`` along time, ``outside`` where a position is out of range."""
    n = index.shape[0]
    if n == 0:
        return np.full((len(positions), *index.shape[1:]), outside, np.int32)
    inside = (positions >= 0) & (positions < n)
    out = index[np.clip(positions, 0, n - 1)]
    shape = (len(positions),) + (1,) * (index.ndim - 1)
    return np.where(inside.reshape(shape), out, np.int32(outside))


def step_mask(days: np.ndarray, valid: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``mask (step, y, x)`` uint8: 1 where no valid observation falls in ``(d_t - 10, d_t]``.

    Parameters
    ----------
    days : numpy.ndarray
        Acquisition days ``(time,)``, increasing (days since 1970).
    valid : numpy.ndarray
        Valid observations ``(time, y, x)``.
    steps : numpy.ndarray
        Step days ``d_t``.
    """
    count = np.zeros((valid.shape[0] + 1, *valid.shape[1:]), np.int32)
    np.cumsum(valid, axis=0, dtype=np.int32, out=count[1:])
    hi = np.searchsorted(days, steps, side="right")
    lo = np.searchsorted(days, steps - STEP_DAYS, side="right")
    same: NDArray[np.bool_] = count[hi] == count[lo]
    return same.astype(np.uint8)


def days_to_next(days: np.ndarray, valid: np.ndarray, steps: np.ndarray, cap: int) -> np.ndarray:
    """``dist_mask (step, y, x)`` int16: days from ``d_t`` to the next valid observation.

    Parameters
    ----------
    days, valid, steps : numpy.ndarray
        As in :func:`step_mask`.
    cap : int
        Largest value (see the module docstring).
    """
    n = valid.shape[0]
    if n == 0:
        return np.full((len(steps), *valid.shape[1:]), cap, np.int16)
    ahead = gather(next_valid(valid), np.searchsorted(days, steps, side="left"), n)
    found = ahead < n
    day = np.asarray(days, np.int64)[np.clip(ahead, 0, n - 1)]
    shape = (len(steps),) + (1,) * (valid.ndim - 1)
    distance = np.where(found, day - np.asarray(steps).reshape(shape), cap)
    return np.minimum(distance, cap).astype(np.int16)
