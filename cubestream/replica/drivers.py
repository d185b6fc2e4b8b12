"""The dynamic world: weather, soil moisture and vegetation greenness on a 0.1 degree grid, daily.

Generating equations (day ``t``, grid cell ``c``; every random term is a spatially smoothed Gaussian
field drawn from the seed, so weather is coherent over tens of kilometres):

- Rain climatology (East-African bimodal: long rains around day 110, short rains around day 320):
  ``clim(t) = 0.05 + exp(-((d - 110) / 28)^2) + 0.7 exp(-((d - 320) / 25)^2)``, scaled so a year
  sums to the cell's mean annual precipitation ``MAP``. Expected rain ``R = MAP clim(t)`` (mm); a
  day is wet with probability ``p = 1 - exp(-R / 6)`` and a wet day brings ``R / p`` times an
  exponential variate.
- Temperature (degrees C): ``T = T0(z) + 2 cos(2 pi (d - 75) / 365) + a(t) - 1.5 wet``, with an
  AR(1) anomaly ``a(t) = 0.8 a(t - 1) + 0.6 eps``; diurnal amplitude ``6 - 3 cloudiness``.
- Cloudiness ``k = clip(0.15 + 0.5 p + 0.3 wet, 0, 1)``; shortwave radiation
  ``Rs = (0.25 + 0.5 (1 - k)) Ra`` from the FAO-56 extraterrestrial radiation ``Ra``.
- Potential evaporation (Hargreaves): ``PET = 0.0023 (T + 17.8) sqrt(2 amp) 0.408 Ra`` (mm/day).
- Soil moisture (m3/m3; porosity 0.45, field capacity 0.32, wilting point 0.10): the 5 cm surface
  layer gains ``P (1 - s / 0.45) / 50`` and loses ``0.3 PET beta(s) / 50`` and drainage
  ``0.15 (s - 0.32)+``; the root zone relaxes to the surface with a 20-day memory and loses
  ``0.004 beta(r) PET / 5``; ``beta(x) = clip((x - 0.10) / (0.32 - 0.10), 0, 1)``.
- Greenness (fractional green cover) of each land-cover class ``k`` with parameters
  ``(g_min, g_max, tau, lag)``: ``target = g_min + (g_max - g_min) beta(r(t - lag))^0.8 fT(T)``,
  ``fT = exp(-((T - 24) / 14)^2)``, and ``g(t) = g(t - 1) + (target - g(t - 1)) / tau``: vegetation
  responds to root-zone moisture with a lag and a memory, faster for grass and crops than for trees.

The simulation spins up for a year before the first day so no transient shows.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import xarray as xr
from numpy.typing import NDArray
from scipy import ndimage, special

from cubestream.replica.statics import Statics

__all__ = ["GREENNESS_PARAMS", "POROSITY", "WILTING", "FIELD_CAPACITY", "simulate"]

POROSITY, FIELD_CAPACITY, WILTING = 0.45, 0.32, 0.10
SPIN_UP_DAYS = 365
GREENNESS_PARAMS: dict[int, tuple[float, float, float, int]] = {
    # land cover: (g_min, g_max, tau days, lag days)
    10: (0.55, 0.88, 40.0, 20),
    20: (0.12, 0.50, 25.0, 10),
    30: (0.05, 0.65, 12.0, 5),
    40: (0.03, 0.80, 10.0, 5),
    50: (0.04, 0.15, 30.0, 10),
    60: (0.02, 0.10, 20.0, 10),
    70: (0.0, 0.0, 1.0, 0),
    80: (0.0, 0.0, 1.0, 0),
    90: (0.35, 0.75, 20.0, 5),
}


def _smooth_normal(rng: np.random.Generator, shape: tuple[int, int]) -> NDArray[np.float64]:
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma=2.0, mode="wrap")
    return np.asarray(field / (field.std() or 1.0))


def _extraterrestrial(lat: NDArray[np.float64], doy: int) -> NDArray[np.float64]:
    """FAO-56 extraterrestrial radiation Ra (MJ m-2 day-1)."""
    phi = np.radians(lat)
    dr = 1 + 0.033 * np.cos(2 * np.pi * doy / 365)
    decl = 0.409 * np.sin(2 * np.pi * doy / 365 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(decl), -1, 1))
    return np.asarray(
        24
        * 60
        / np.pi
        * 0.082
        * dr
        * (ws * np.sin(phi) * np.sin(decl) + np.cos(phi) * np.cos(decl) * np.sin(ws))
    )


def _rain_climatology() -> NDArray[np.float64]:
    d = np.arange(1, 367)
    clim = 0.05 + np.exp(-(((d - 110) / 28) ** 2)) + 0.7 * np.exp(-(((d - 320) / 25) ** 2))
    return np.asarray(clim / clim[:365].sum())


def _beta(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(np.clip((x - WILTING) / (FIELD_CAPACITY - WILTING), 0, 1))


def simulate(
    statics: Statics,
    lon: NDArray[np.float64],
    lat: NDArray[np.float64],
    start: dt.date,
    end: dt.date,
    seed: int,
) -> xr.Dataset:
    """Run the daily world on the grid ``lat x lon`` from ``start`` to ``end`` (inclusive).

    Returns
    -------
    xarray.Dataset
        Dimensions ``day, lat, lon`` (and ``landcover`` for ``greenness``); variables ``t2m``
        (daily mean, K), ``t2m_amp`` (K), ``tp`` (mm), ``ssr`` (J m-2, net shortwave), ``pev``
        (mm, potential evaporation), ``evap`` (mm, actual), ``sp`` (Pa), ``cloudiness``,
        ``sm_surface``, ``sm_rootzone`` (m3 m-3), ``greenness`` (fraction).
    """
    glon, glat = np.meshgrid(lon, lat)
    z = statics.elevation(glon, glat).astype(np.float64)
    annual_rain = 150 + 1500 * statics.wetness(glon, glat, z).astype(np.float64)
    t0 = 31 - 6.5 * z / 1000
    pressure = 101325 * (1 - 2.25577e-5 * z) ** 5.25588
    clim = _rain_climatology()
    classes = np.array(sorted(GREENNESS_PARAMS))
    params = np.array([GREENNESS_PARAMS[c] for c in classes])
    first = start - dt.timedelta(days=SPIN_UP_DAYS)
    n_days = (end - first).days + 1
    keep = (end - start).days + 1
    rng = np.random.default_rng([seed, 17])
    shape = glon.shape
    out = {
        name: np.zeros((keep, *shape), dtype=np.float32)
        for name in ("t2m", "t2m_amp", "tp", "ssr", "pev", "evap", "sp", "cloudiness")
    }
    out["sm_surface"] = np.zeros((keep, *shape), dtype=np.float32)
    out["sm_rootzone"] = np.zeros((keep, *shape), dtype=np.float32)
    green = np.zeros((keep, len(classes), *shape), dtype=np.float32)
    max_lag = int(params[:, 3].max())
    root_history = np.full((max_lag + 1, *shape), 0.2)
    anomaly = np.zeros(shape)
    s = np.full(shape, 0.2)
    r = np.full(shape, 0.2)
    g = params[:, 0][:, None, None] * np.ones((1, *shape))
    for i in range(n_days):
        day = first + dt.timedelta(days=i)
        doy = day.timetuple().tm_yday
        expected = annual_rain * clim[doy - 1]
        p_wet = 1 - np.exp(-expected / 6.0)
        u_wet = special.ndtr(_smooth_normal(rng, shape))
        u_amount = special.ndtr(_smooth_normal(rng, shape))
        wet = u_wet < p_wet
        rain = np.where(wet, expected / np.maximum(p_wet, 1e-6) * -np.log1p(-u_amount), 0.0)
        anomaly = 0.8 * anomaly + 0.6 * _smooth_normal(rng, shape)
        temp = t0 + 2 * np.cos(2 * np.pi * (doy - 75) / 365) + anomaly - 1.5 * wet
        cloud = np.clip(0.15 + 0.5 * p_wet + 0.3 * wet, 0, 1)
        amp = 6 - 3 * cloud
        ra = _extraterrestrial(glat, doy)
        rs = (0.25 + 0.5 * (1 - cloud)) * ra
        pet = 0.0023 * (temp + 17.8) * np.sqrt(2 * amp) * 0.408 * ra
        s = s + rain * (1 - s / POROSITY) / 50 - 0.3 * pet * _beta(s) / 50
        s = np.clip(s - 0.15 * np.maximum(s - FIELD_CAPACITY, 0), 0.03, POROSITY)
        r = np.clip(r + (s - r) / 20 - 0.004 * _beta(r) * pet / 5, 0.05, POROSITY)
        evap = pet * (0.3 * _beta(s) + 0.6 * _beta(r))
        root_history = np.roll(root_history, 1, axis=0)
        root_history[0] = r
        f_t = np.exp(-(((temp - 24) / 14) ** 2))
        lagged = root_history[params[:, 3].astype(int)]
        target = params[:, 0, None, None] + (params[:, 1] - params[:, 0])[:, None, None] * (
            _beta(lagged) ** 0.8 * f_t
        )
        g = g + (target - g) / params[:, 2, None, None]
        k = i - (n_days - keep)
        if k < 0:
            continue
        values = {
            "t2m": temp + 273.15,
            "t2m_amp": amp,
            "tp": rain,
            "ssr": 0.8 * rs * 1e6,
            "pev": pet,
            "evap": evap,
            "sp": pressure + 150 * anomaly,
            "cloudiness": cloud,
            "sm_surface": s,
            "sm_rootzone": r,
        }
        for name, value in values.items():
            out[name][k] = value
        green[k] = g
    days = np.array([np.datetime64(start) + np.timedelta64(k, "D") for k in range(keep)])
    coords = {"day": days, "lat": lat, "lon": lon, "landcover": classes}
    data_vars: dict[str, tuple[tuple[str, ...], np.ndarray]] = {
        name: (("day", "lat", "lon"), value) for name, value in out.items()
    }
    data_vars["greenness"] = (("day", "landcover", "lat", "lon"), green)
    data_vars["elevation"] = (("lat", "lon"), z.astype(np.float32))
    return xr.Dataset(data_vars, coords=coords)
