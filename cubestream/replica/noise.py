"""Seeded value noise anchored to the ground (longitude, latitude).

Every random field of the replica is a function of ground position, not of a raster grid, so two
overlapping Sentinel-2 tiles (even in different UTM zones), the SRTM tiles and the strata rasters
all see the same world where they overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["KM_PER_DEG", "fbm", "value_noise"]

KM_PER_DEG = 111.32
"""Kilometres per degree of latitude (used to turn length scales into degrees)."""

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _hash(ix: NDArray[np.int64], iy: NDArray[np.int64], salt: int) -> NDArray[np.float32]:
    """SplitMix64-style hash of lattice points, mapped to [-1, 1)."""
    with np.errstate(over="ignore"):
        h = ix.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        h ^= iy.astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        h ^= np.uint64(salt & 0xFFFFFFFFFFFFFFFF) * np.uint64(0x165667B19E3779F9)
        h ^= h >> np.uint64(30)
        h *= _M1
        h ^= h >> np.uint64(27)
        h *= _M2
        h ^= h >> np.uint64(31)
    return ((h >> np.uint64(40)).astype(np.float32) / np.float32(2**23)) - np.float32(1.0)


def value_noise(
    lon: NDArray[np.floating], lat: NDArray[np.floating], scale_km: float, salt: int
) -> NDArray[np.float32]:
    """Smooth noise in [-1, 1] with features about ``scale_km`` wide.

    Parameters
    ----------
    lon, lat : array
        Ground positions in degrees (any shape, broadcast together).
    scale_km : float
        Lattice spacing in kilometres.
    salt : int
        Seed of this field; different salts give independent fields.
    """
    step = scale_km / KM_PER_DEG
    u = np.asarray(lon, dtype=np.float64) / step
    v = np.asarray(lat, dtype=np.float64) / step
    iu = np.floor(u)
    iv = np.floor(v)
    fu = (u - iu).astype(np.float32)
    fv = (v - iv).astype(np.float32)
    fu = fu * fu * (3 - 2 * fu)
    fv = fv * fv * (3 - 2 * fv)
    x0 = iu.astype(np.int64)
    y0 = iv.astype(np.int64)
    top = _hash(x0, y0, salt) * (1 - fu) + _hash(x0 + 1, y0, salt) * fu
    bottom = _hash(x0, y0 + 1, salt) * (1 - fu) + _hash(x0 + 1, y0 + 1, salt) * fu
    return np.asarray(top * (1 - fv) + bottom * fv, dtype=np.float32)


def fbm(
    lon: NDArray[np.floating],
    lat: NDArray[np.floating],
    scales_km: Sequence[float],
    weights: Sequence[float],
    salt: int,
) -> NDArray[np.float32]:
    """Weighted sum of value-noise octaves, normalised to roughly [-1, 1]."""
    total = np.zeros(np.broadcast_shapes(np.shape(lon), np.shape(lat)), dtype=np.float32)
    for octave, (scale, weight) in enumerate(zip(scales_km, weights, strict=True)):
        total += np.float32(weight) * value_noise(lon, lat, scale, salt * 131 + octave)
    return total / np.float32(sum(weights))
