"""Cube footprints in other CRSs: the bounds of each box's projected outline (pure)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pyproj import Transformer

__all__ = ["EDGE_POINTS", "cube_epsg", "projected_bounds"]

EDGE_POINTS = 9
"""Points per box edge projected (corners included): a 3.84 km edge bends by millimetres."""


def cube_epsg(cubes: pd.DataFrame) -> int:
    """The one EPSG code of ``cubes``; raises ``ValueError`` if they have several."""
    codes = cubes["epsg"].unique()
    if len(codes) != 1:
        raise ValueError(f"the cubes of one call must share one CRS, not EPSG {list(codes)}")
    return int(codes[0])


def projected_bounds(cubes: pd.DataFrame, crs: int | str) -> NDArray[np.float64]:
    """Bounds ``(cube, [x_min, y_min, x_max, y_max])`` of each box projected to ``crs``.

    Parameters
    ----------
    cubes : pandas.DataFrame
        ``epsg``, ``x_min``, ``y_min``, ``x_max``, ``y_max`` per cube (one CRS for all).
    crs : int or str
        Target CRS (EPSG code or any pyproj CRS string); axis order is x/east first.

    Returns
    -------
    numpy.ndarray
        The bounding box of each box's outline, densified with :data:`EDGE_POINTS` per edge.
    """
    to_crs = Transformer.from_crs(cube_epsg(cubes), crs, always_xy=True)
    t = np.linspace(0.0, 1.0, EDGE_POINTS)
    x0, x1 = cubes["x_min"].to_numpy()[:, None], cubes["x_max"].to_numpy()[:, None]
    y0, y1 = cubes["y_min"].to_numpy()[:, None], cubes["y_max"].to_numpy()[:, None]
    ring_x = np.hstack([x0 + (x1 - x0) * t, x1 + 0 * t, x1 - (x1 - x0) * t, x0 + 0 * t])
    ring_y = np.hstack([y0 + 0 * t, y0 + (y1 - y0) * t, y1 + 0 * t, y1 - (y1 - y0) * t])
    px, py = to_crs.transform(ring_x, ring_y)
    return np.stack([px.min(1), py.min(1), px.max(1), py.max(1)], axis=1)
