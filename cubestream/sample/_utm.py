"""UTM zone arithmetic shared by the area and box modules (private)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer

from cubestream.errors import GridError

__all__ = [
    "SQUARE_M",
    "SQUARE_MARGIN_M",
    "inverse_transformer",
    "transformer",
    "utm_frame",
    "utm_zone",
]

SQUARE_M = 100_000
"""Side of an MGRS 100 km square, in metres."""
SQUARE_MARGIN_M = 80
"""How far west and north of its 100 km square a tile's core boxes may reach."""
_SOUTH_FALSE_NORTHING = 10_000_000


@lru_cache(maxsize=128)
def transformer(epsg: int) -> Transformer:
    """A cached transformer from ``EPSG:epsg`` to WGS84 longitude/latitude."""
    return Transformer.from_crs(epsg, 4326, always_xy=True)


@lru_cache(maxsize=128)
def inverse_transformer(epsg: int) -> Transformer:
    """A cached transformer from WGS84 longitude/latitude to ``EPSG:epsg``."""
    return Transformer.from_crs(4326, epsg, always_xy=True)


def utm_frame(epsg: int, y: float) -> tuple[int, float]:
    """The UTM zone of a WGS84/UTM EPSG code, and ``y`` as a northern-hemisphere northing.

    Parameters
    ----------
    epsg : int
        32601..32660 (north) or 32701..32760 (south).
    y : float
        Northing in that CRS.

    Returns
    -------
    tuple of int and float
        The zone number and the northing counted from the equator (negative in the south).

    Raises
    ------
    GridError
        If ``epsg`` is not a WGS84/UTM code.
    """
    hemisphere, zone = divmod(epsg, 100)
    if hemisphere not in (326, 327) or not 1 <= zone <= 60:
        raise GridError(
            f"EPSG:{epsg} is not a WGS84 / UTM zone (expected 32601-32660, 32701-32760)"
        )
    return zone, (y - _SOUTH_FALSE_NORTHING if hemisphere == 327 else y)


def utm_zone(lon: NDArray[np.floating], lat: NDArray[np.floating]) -> NDArray[np.int64]:
    """The UTM zone of each point, with the Norway (32V) and Svalbard (31X-37X) exceptions.

    Zone ``n`` spans longitudes ``[-180 + 6 (n - 1), -180 + 6 n)``; between 56N and 64N, 3E-12E
    is zone 32; between 72N and 84N, 0E-42E is split into zones 31, 33, 35 and 37 at 9E, 21E and
    33E.

    Parameters
    ----------
    lon, lat : numpy.ndarray
        Longitudes and latitudes in degrees, of one shape.

    Returns
    -------
    numpy.ndarray of int64
        Zone numbers 1..60, of the shape of ``lon``.
    """
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    zone = (np.floor((lon + 180.0) / 6.0).astype(np.int64) % 60) + 1
    norway = (lat >= 56) & (lat < 64) & (lon >= 3) & (lon < 12)
    svalbard = (lat >= 72) & (lat < 84) & (lon >= 0) & (lon < 42)
    svalbard_zone = np.select([lon < 9, lon < 21, lon < 33], [31, 33, 35], 37)
    zone = np.where(norway, 32, zone)
    return np.where(svalbard, svalbard_zone, zone).astype(np.int64)
