"""One sample: read a cube's window from L1, then make every L2 variable from it.

:func:`read_window` is the only function that touches bytes: for one :class:`SampleSpec` it
reads, from the cube's tile group, the acquisitions of ``[d_0 - reach, d_44 + reach]`` (cut to
the record), the daily weather of ``[d_0 - 9, d_44]`` and the static layers. Two pure functions
follow:

- :func:`screen` (SCL, weather and DEM only, no reflectance) decides whether the window is
  usable: at least ``min_valid_fraction`` of its ``(step, y, x)`` with a valid SCL class in
  their ten days, a value of every weather variable, a finite elevation somewhere;
- :func:`make_sample` makes ``s2``, ``kndvi``, ``mask``, ``dist_mask``, ``weather``, ``dem``,
  ``landcover``, ``geomorphons`` and ``valid_fraction`` (:mod:`.masks`, :mod:`.fill`,
  :mod:`.kndvi`, :mod:`.weather`). DEM pixels without a value (NaN) get the median of the
  cube's elevations. Every output is finite.

Memory per sample (128 x 128 px, 5-day revisit, reach 90 days: about 130 acquisitions): DN
38 MB, reflectance 77 MB, outputs 35 MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cubestream.errors import UnusableSampleError
from cubestream.l2.config import Era5Point
from cubestream.l2.fill import fill_steps, reflectance
from cubestream.l2.kndvi import NIR, RED, kndvi
from cubestream.l2.masks import INVALID_SCL, days_to_next, step_mask, valid_observations
from cubestream.l2.plan import WEATHER_SOURCES, SampleSpec, strings
from cubestream.l2.schema import BANDS, STEP_DAYS
from cubestream.l2.weather import (
    era5_at,
    fill_step_gaps,
    statistic_of,
    ten_daily,
)
from cubestream.l2.windows import step_days
from cubestream.storage import open_group

__all__ = ["Recipe", "Window", "make_sample", "read_window", "screen"]


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """How a sample is made (every field is part of the build's signature).

    Attributes
    ----------
    weather : dict of str to str
        Weather variables in store order -> their L1 source (``era5`` or ``smap``).
    invalid_scl : tuple of int
        SCL classes that make an observation invalid (:data:`~.masks.INVALID_SCL`).
    reach_days : int
        Days read before the first and after the last step: how far gap filling looks for
        observations beyond the window's ends, and the cap of ``dist_mask``.
    min_valid_fraction : float
        Windows with a smaller share of ``(step, y, x)`` holding a valid SCL class are skipped.
    kndvi_normalise : bool
        Divide kNDVI by ``tanh(1)``.
    era5_point : {"nearest", "window_mean"}
        ERA5 cell nearest the cube's centre, or the mean of the tile's window.
    """

    weather: dict[str, str] = field(default_factory=dict)
    invalid_scl: tuple[int, ...] = INVALID_SCL
    reach_days: int = 90
    min_valid_fraction: float = 0.1
    kndvi_normalise: bool = False
    era5_point: Era5Point = "nearest"

    def __post_init__(self) -> None:
        if self.reach_days < STEP_DAYS:
            raise ValueError(f"reach_days must be at least {STEP_DAYS}, not {self.reach_days}")
        if not 0.0 <= self.min_valid_fraction <= 1.0:
            raise ValueError(f"min_valid_fraction must lie in [0, 1]: {self.min_valid_fraction}")
        if self.era5_point not in ("nearest", "window_mean"):
            raise ValueError(f"era5_point must be 'nearest' or 'window_mean': {self.era5_point}")


@dataclass(frozen=True)
class Window:
    """What :func:`read_window` read for one sample."""

    days: np.ndarray
    """Acquisition days ``(time,)``, days since 1970."""
    scl: np.ndarray
    """``(time, y, x)`` uint8."""
    dn: np.ndarray | None
    """``(time, band, y, x)`` uint16 in :data:`BANDS` order, or None (screening)."""
    scale: float
    offset: float
    weather_days: np.ndarray
    """``(day,)``: every day of ``[d_0 - 9, d_44]``."""
    weather: np.ndarray
    """``(day, variable)`` float32, NaN where L1 has no value."""
    dem: np.ndarray
    landcover: np.ndarray
    geomorphons: np.ndarray


def _open(url: str, storage_options: dict[str, Any] | None, tile: str) -> Any:
    return open_group(url, storage_options)[tile]


def _daily(
    group: Any, spec: SampleSpec, source: str, names: list[str], days: np.ndarray, recipe: Recipe
) -> np.ndarray:
    """``(day, len(names))`` of one weather source on ``days`` (NaN where absent)."""
    variable, names_coord, day_coord, _ = WEATHER_SOURCES[source]
    have = [str(v) for v in strings(group[names_coord][...])]
    columns = [have.index(n) for n in names]
    axis = np.asarray(group[day_coord][...], np.int64)
    lo = int(np.searchsorted(axis, days[0], side="left"))
    hi = int(np.searchsorted(axis, days[-1], side="right"))
    out = np.full((len(days), len(names)), np.nan, np.float32)
    if hi <= lo:
        return out
    if source == "smap":
        values = np.asarray(group[variable][spec.cube, lo:hi], np.float32)
    else:
        block = np.asarray(group[variable][lo:hi], np.float32)
        values = era5_at(
            block,
            np.asarray(group["latitude"][...]),
            np.asarray(group["longitude"][...]),
            spec.lon,
            spec.lat,
            recipe.era5_point,
        )
    rows = np.searchsorted(days, axis[lo:hi])
    out[rows] = values[:, columns]
    return out


def read_window(
    url: str,
    storage_options: dict[str, Any] | None,
    spec: SampleSpec,
    recipe: Recipe,
    *,
    pixels: bool = True,
) -> Window:
    """Read what the sample ``spec`` needs from the L1 store (reflectance only if ``pixels``)."""
    group = _open(url, storage_options, spec.tile)
    steps = step_days(spec.start)
    first = max(int(steps[0]) - recipe.reach_days, spec.record[0])
    last = min(int(steps[-1]) + recipe.reach_days, spec.record[1])
    time = np.asarray(group["time"][...], np.int64)
    t0 = int(np.searchsorted(time, first, side="left"))
    t1 = int(np.searchsorted(time, last, side="right"))
    dn = None
    s2 = group["s2"]
    if pixels:
        bands = [str(b) for b in strings(group["band"][...])]
        order = [bands.index(b) for b in BANDS]
        dn = np.asarray(s2[spec.cube, t0:t1])
        if order != list(range(len(bands))):
            dn = dn[:, order]
    days = np.arange(int(steps[0]) - STEP_DAYS + 1, int(steps[-1]) + 1, dtype=np.int64)
    names = list(recipe.weather)
    weather = np.full((len(days), len(names)), np.nan, np.float32)
    for source in sorted(set(recipe.weather.values())):
        mine = [n for n in names if recipe.weather[n] == source]
        weather[:, [names.index(n) for n in mine]] = _daily(group, spec, source, mine, days, recipe)
    return Window(
        days=time[t0:t1],
        scl=np.asarray(group["scl"][spec.cube, t0:t1]),
        dn=dn,
        scale=float(s2.attrs.get("scale_factor", 1e-4)),
        offset=float(s2.attrs.get("add_offset", 0.0)),
        weather_days=days,
        weather=weather,
        dem=np.asarray(group["dem"][spec.cube], np.float32),
        landcover=np.asarray(group["landcover"][spec.cube], np.uint8),
        geomorphons=np.asarray(group["geomorphons"][spec.cube], np.uint8),
    )


def _weather(window: Window, spec: SampleSpec, recipe: Recipe) -> np.ndarray:
    names = list(recipe.weather)
    steps = step_days(spec.start)
    values = ten_daily(window.weather_days, window.weather, steps, [statistic_of(n) for n in names])
    return fill_step_gaps(values, names)


def _dem(dem: np.ndarray) -> np.ndarray:
    finite = np.isfinite(dem)
    if not finite.any():
        raise UnusableSampleError("the cube has no elevation (DEM all NaN)")
    if finite.all():
        return dem
    return np.where(finite, dem, np.median(dem[finite])).astype(np.float32)


def screen(window: Window, spec: SampleSpec, recipe: Recipe) -> float:
    """Check that the window is usable; return its share of ``(step, y, x)`` with a valid SCL.

    Raises
    ------
    UnusableSampleError
        With the reason: too few valid observations, a weather variable without any value,
        no elevation.
    """
    valid = valid_observations(window.scl, None, recipe.invalid_scl)
    fraction = float(1.0 - step_mask(window.days, valid, step_days(spec.start)).mean())
    if fraction < recipe.min_valid_fraction or fraction == 0.0:
        raise UnusableSampleError(
            f"too few valid observations: {fraction:.3f} of the window's (step, pixel) have one, "
            f"below min_valid_fraction {recipe.min_valid_fraction}"
        )
    _weather(window, spec, recipe)
    _dem(window.dem)
    return fraction


def make_sample(window: Window, spec: SampleSpec, recipe: Recipe) -> dict[str, np.ndarray]:
    """Every L2 variable of the sample (leading ``sample`` dimension left out)."""
    if window.dn is None:
        raise ValueError("make_sample needs the reflectance: read_window(..., pixels=True)")
    steps = step_days(spec.start)
    valid = valid_observations(window.scl, window.dn, recipe.invalid_scl)
    mask = step_mask(window.days, valid, steps)
    s2, _ = fill_steps(
        window.days, reflectance(window.dn, window.scale, window.offset), valid, steps
    )
    target = kndvi(
        s2[:, BANDS.index(RED)], s2[:, BANDS.index(NIR)], normalise=recipe.kndvi_normalise
    )
    return {
        "s2": s2,
        "kndvi": target,
        "mask": mask,
        "dist_mask": days_to_next(window.days, valid, steps, recipe.reach_days),
        "weather": _weather(window, spec, recipe),
        "dem": _dem(window.dem),
        "landcover": window.landcover,
        "geomorphons": window.geomorphons,
        "valid_fraction": np.asarray(1.0 - mask.mean(), np.float32),
    }
