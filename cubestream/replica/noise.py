"""Seeded value noise anchored to the ground (longitude, latitude).

Every random field of the replica is a function of ground position, not of a raster grid, so two
overlapping Sentinel-2 tiles (even in different UTM zones), the SRTM tiles and the strata rasters
all see the same world where they overlap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["CHUNK", "KM_PER_DEG", "fbm", "value_noise"]

KM_PER_DEG = 111.32
"""Kilometres per degree of latitude (used to turn length scales into degrees)."""

CHUNK = 1 << 21
"""Positions evaluated at a time (2 M: temporaries of 16 MB)."""

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

    The positions are taken :data:`CHUNK` at a time (the noise is a function of each position
    alone, so the result does not depend on the chunking): a 10 m Sentinel-2 tile of 120 M
    pixels then needs no gigabyte temporaries.

    Parameters
    ----------
    lon, lat : array
        Ground positions in degrees (any shape, broadcast together).
    scale_km : float
        Lattice spacing in kilometres.
    salt : int
        Seed of this field; different salts give independent fields.
    """
    lon_b, lat_b = np.broadcast_arrays(np.asarray(lon), np.asarray(lat))
    out = np.empty(lon_b.shape, dtype=np.float32)
    flat_lon, flat_lat, flat_out = lon_b.reshape(-1), lat_b.reshape(-1), out.reshape(-1)
    for start in range(0, flat_out.size, CHUNK):
        part = slice(start, start + CHUNK)
        flat_out[part] = _noise(flat_lon[part], flat_lat[part], scale_km, salt)
    return out


def _noise(
    lon: NDArray[np.floating], lat: NDArray[np.floating], scale_km: float, salt: int
) -> NDArray[np.float32]:
    """:func:`value_noise` of 1-D positions: bilinear, smoothstep-weighted lattice hashes."""
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
    h00, h10, h01, h11 = _corners(x0, y0, salt)
    top = h00 * (1 - fu) + h10 * fu
    bottom = h01 * (1 - fu) + h11 * fu
    return np.asarray(top * (1 - fv) + bottom * fv, dtype=np.float32)


def _corners(
    x0: NDArray[np.int64], y0: NDArray[np.int64], salt: int
) -> tuple[NDArray[np.float32], ...]:
    """Hashes of the four lattice corners of each position.

    Where the positions' lattice cells are fewer than the positions (fine pixels, coarse
    lattice), the hash is computed once per lattice point and looked up; otherwise per position.
    Both give the same bits.
    """
    if x0.size == 0:
        empty = np.empty(0, dtype=np.float32)
        return empty, empty, empty, empty
    xmin, ymin = int(x0.min()), int(y0.min())
    nx, ny = int(x0.max()) - xmin + 2, int(y0.max()) - ymin + 2
    if nx * ny > x0.size:
        return (
            _hash(x0, y0, salt),
            _hash(x0 + 1, y0, salt),
            _hash(x0, y0 + 1, salt),
            _hash(x0 + 1, y0 + 1, salt),
        )
    gx, gy = np.meshgrid(np.arange(xmin, xmin + nx), np.arange(ymin, ymin + ny))
    table = _hash(gx, gy, salt).reshape(-1)
    index = (y0 - ymin) * nx + (x0 - xmin)
    return table[index], table[index + 1], table[index + nx], table[index + nx + 1]


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
