"""Temporal samples: where each 45-step window of a cube may start, and which ones are drawn.

The time axis of a sample
    Step ``t`` (``t = 0 .. 44``) is the day ``d_t = start + 10 t`` (the store's ``time``
    coordinate holds ``10 t``, ``start_time`` holds ``start``). Step ``t`` stands for the ten days
    ``(d_t - 10, d_t]``: its ``mask`` says whether a valid observation fell in them, its
    ``weather`` aggregates them, its reflectance is interpolated at ``d_t``. A window therefore
    uses the 450 days ``[start - 9, start + 440]`` (:func:`window_days`).

The window rule
    1. The record of a tile is the time range its L1 group was built for (``build.start`` to
       ``build.end``), cut to the ``--start``/``--end`` of the L2 build if given.
    2. Only *full calendar years* of the record are admitted (1 January to 31 December, both in
       the record): a partial year would over-represent the seasons it holds.
    3. A window starts on the first day of a meteorological season (1 December, 1 March,
       1 June, 1 September) and all its 450 days lie inside the admitted years. These starts
       are the candidates (:func:`candidate_starts`): for the two years 2020-2021, the windows
       starting 2020-03-01, 2020-06-01 and 2020-09-01.
    4. Each cube draws ``windows_per_cube`` distinct candidates, uniformly without replacement,
       with a generator seeded by ``(seed, crc32(cube_id))`` (:func:`draw_starts`): the draw of
       a cube does not depend on the other cubes, the tiles built or the order of the build.
       Fewer candidates than asked give all of them (the build report says so).

Five seasons in 450 days
    Nominally, steps ``9 k .. 9 k + 8`` of a window are its ``k``-th season (``k = 0 .. 4``):
    five consecutive seasons of nine steps (90 days), in order from the season it starts in. A
    calendar season has 90 to 92 days (four of them 365 or 366), so counted by the calendar the
    first four seasons are covered in full and the fifth for 75 or 76 of its 90 to 92 days:
    :func:`season_of` of the step days runs through the five seasons in order, each for eight to
    ten steps (the tests check this for every candidate start).
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence

import numpy as np

from cubestream.l2.schema import STEP_DAYS, STEPS

__all__ = [
    "SEASONS",
    "SEASON_STARTS",
    "candidate_starts",
    "draw_starts",
    "full_years",
    "season_of",
    "step_days",
    "window_days",
]

SEASONS = ("DJF", "MAM", "JJA", "SON")
"""Meteorological seasons, by the months they hold."""
SEASON_STARTS = {"DJF": 12, "MAM": 3, "JJA": 6, "SON": 9}
"""Month in which each season starts (on its first day)."""
EPOCH = dt.date(1970, 1, 1)


def season_of(day: dt.date) -> str:
    """Meteorological season of ``day`` (``DJF``, ``MAM``, ``JJA`` or ``SON``)."""
    return SEASONS[(day.month % 12) // 3]


def to_days(day: dt.date) -> int:
    """Days since 1970-01-01."""
    return (day - EPOCH).days


def from_days(days: int) -> dt.date:
    """Inverse of :func:`to_days`."""
    return EPOCH + dt.timedelta(days=int(days))


def window_days(start: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day (inclusive) whose observations and weather a window uses."""
    first = start - dt.timedelta(days=STEP_DAYS - 1)
    return first, start + dt.timedelta(days=(STEPS - 1) * STEP_DAYS)


def step_days(start: int) -> np.ndarray:
    """The step days ``d_t = start + 10 t`` (days since 1970) of a window starting on ``start``."""
    return int(start) + STEP_DAYS * np.arange(STEPS, dtype=np.int64)


def full_years(first: dt.date, last: dt.date) -> tuple[int, ...]:
    """Calendar years lying wholly inside ``[first, last]``."""
    lo = first.year if (first.month, first.day) == (1, 1) else first.year + 1
    hi = last.year if (last.month, last.day) == (12, 31) else last.year - 1
    return tuple(range(lo, hi + 1))


def candidate_starts(first: dt.date, last: dt.date) -> list[dt.date]:
    """Season starts whose 450-day windows lie inside the full years of ``[first, last]``."""
    years = full_years(first, last)
    if not years:
        return []
    lo, hi = dt.date(years[0], 1, 1), dt.date(years[-1], 12, 31)
    starts = [
        dt.date(year, month, 1)
        for year in range(years[0], years[-1] + 1)
        for month in sorted(SEASON_STARTS.values())
    ]
    return [s for s in starts if lo <= window_days(s)[0] and window_days(s)[1] <= hi]


def draw_starts(
    cube_id: str, candidates: Sequence[dt.date], count: int, seed: int
) -> list[dt.date]:
    """``count`` distinct candidates for ``cube_id`` (all of them if fewer), in time order.

    The generator is seeded by ``(seed, crc32(cube_id))``: the same cube, candidates and seed
    always give the same starts.
    """
    if count < 1:
        raise ValueError(f"windows per cube must be at least 1, not {count}")
    rng = np.random.default_rng([seed, zlib.crc32(cube_id.encode())])
    n = min(count, len(candidates))
    picked = rng.choice(len(candidates), size=n, replace=False) if n else np.empty(0, int)
    return sorted(candidates[int(i)] for i in picked)
