"""The 100 km squares of the grid's tiles, and boxes that reach into another zone's (private).

Used by the zone-border part of the overlap rule (see :mod:`cubestream.sample.boxes`): a box that
crosses its UTM zone border is kept only if it touches no square of a tile of another zone.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from cubestream.grid import load_grid
from cubestream.sample._utm import SQUARE_M, SQUARE_MARGIN_M, inverse_transformer

__all__ = ["reaches_other_zone"]

_TOLERANCE_M = 1.0
"""Slack on a box's bounds in another CRS: its edges, straight in its own CRS, bend slightly."""
_SEARCH_DEG = 0.1
"""Slack on the longitude/latitude search window for squares near the boxes."""
_Mask = NDArray[np.bool_]


@lru_cache(maxsize=1)
def _squares() -> dict[str, NDArray[np.generic]]:
    """Every tile of the grid with its square shifted like the core boxes, in its own CRS."""
    grid = load_grid()
    x0 = grid["x0"].to_numpy(float)
    y0 = grid["y0"].to_numpy(float)
    x_lo = np.round(x0 / SQUARE_M) * SQUARE_M - SQUARE_MARGIN_M
    y_hi = np.round(y0 / SQUARE_M) * SQUARE_M + SQUARE_MARGIN_M
    min_lon = grid["min_lon"].to_numpy(float)
    max_lon = grid["max_lon"].to_numpy(float)
    return {
        "epsg": grid["epsg"].to_numpy(np.int64),
        "x_lo": x_lo,
        "x_hi": x_lo + SQUARE_M,
        "y_lo": y_hi - SQUARE_M,
        "y_hi": y_hi,
        "min_lon": min_lon,
        "max_lon": max_lon,
        "min_lat": grid["min_lat"].to_numpy(float),
        "max_lat": grid["max_lat"].to_numpy(float),
        "regular": (max_lon - min_lon) < 180,
    }


def reaches_other_zone(zone: int, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> _Mask:
    """Whether each box touches the square of a tile of another UTM zone.

    Parameters
    ----------
    zone : int
        The boxes' own UTM zone.
    lon, lat : numpy.ndarray
        Shape (boxes, points): each box's corners and edge midpoints in WGS84 degrees.

    Returns
    -------
    numpy.ndarray of bool
        One flag per box; boxes that straddle the antimeridian are flagged too.
    """
    out: _Mask = (lon.max(axis=1) - lon.min(axis=1)) > 180
    if out.all():
        return out
    squares = _squares()
    near = (
        squares["regular"]
        & (squares["epsg"] % 100 != zone)
        & (squares["min_lon"] < lon[~out].max() + _SEARCH_DEG)
        & (squares["max_lon"] > lon[~out].min() - _SEARCH_DEG)
        & (squares["min_lat"] < lat[~out].max() + _SEARCH_DEG)
        & (squares["max_lat"] > lat[~out].min() - _SEARCH_DEG)
    )
    for epsg in np.unique(squares["epsg"][near]):
        index = np.flatnonzero(near & (squares["epsg"] == epsg))
        x, y = inverse_transformer(int(epsg)).transform(lon, lat)
        out |= _touches(np.asarray(x), np.asarray(y), {k: v[index] for k, v in squares.items()})
    return out


def _touches(
    x: NDArray[np.float64], y: NDArray[np.float64], squares: dict[str, NDArray[np.generic]]
) -> _Mask:
    """Whether each box's bounds (points per row of ``x``, ``y``, with slack) meet a square."""
    x_lo = x.min(axis=1)[:, None] - _TOLERANCE_M
    x_hi = x.max(axis=1)[:, None] + _TOLERANCE_M
    y_lo = y.min(axis=1)[:, None] - _TOLERANCE_M
    y_hi = y.max(axis=1)[:, None] + _TOLERANCE_M
    hits = (
        (x_lo < squares["x_hi"])
        & (x_hi > squares["x_lo"])
        & (y_lo < squares["y_hi"])
        & (y_hi > squares["y_lo"])
    )
    return np.asarray(hits.any(axis=1))
