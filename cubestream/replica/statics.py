"""The static world: terrain, climate zones, land cover and geomorphons, as functions of ground.

Generating rules (all fields are seeded value noise anchored to longitude/latitude, so every raster
that samples them agrees where it overlaps):

- Elevation ``z`` (m): ``1400 + 900 n(60 km) + 350 n(15 km) + 120 n(4 km) + 30 n(0.6 km)`` plus one
  volcano, a Gaussian cone ``3300 exp(-(d / 8 km)^2)`` placed by the seed inside the first tile;
  clipped at 0.
- Wetness ``w`` in [0, 1]: ``0.5 + 0.35 n(90 km) + 0.12 n(20 km) + 0.12 (z - 1400) / 1000``.
  Mean annual precipitation ``MAP = 150 + 1500 w`` (mm) and temperature ``T0 = 31 - 6.5 z / 1000``
  (degrees C) follow from it.
- Climate zone (Koppen-Geiger codes of Beck et al. 2018): ``BWh`` (4) if MAP < 350, ``BSh`` (6) if
  MAP < 650, ``Cwb`` (12) if T0 < 18, ``Aw`` (3) if MAP < 1150, else ``Am`` (2).
- Land cover (ESA WorldCover codes): water (80) in lakes where ``n(12 km) > 0.62``, herbaceous
  wetland (90) on their shores, built-up (50) in towns where ``n(3 km) > 0.78``; elsewhere a
  vegetation potential ``v = w + 0.2 n(2 km) + 0.08 n(0.3 km)`` gives bare (60) below 0.22,
  shrubland (20) below 0.42, grassland (30) below 0.58, cropland (40) in farmed zones
  ``n(6 km) > 0.1`` with ``v < 0.8``, else tree cover (10); snow and ice (70) above 4600 m.
- Geomorphons (Jasiewicz and Stepinski classes 1 flat ... 10 pit) from the slope and the Laplacian
  of the DEM on a raster grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cubestream.replica.noise import KM_PER_DEG, fbm, value_noise
from cubestream.sample.legends import GEOMORPHONS

__all__ = [
    "CLIMATE_CLASSES",
    "GEOMORPHON_CLASSES",
    "LANDCOVER_CLASSES",
    "Statics",
    "geomorphons",
]

CLIMATE_CLASSES = {2: "Am", 3: "Aw", 4: "BWh", 6: "BSh", 12: "Cwb"}
LANDCOVER_CLASSES = {
    10: "tree cover",
    20: "shrubland",
    30: "grassland",
    40: "cropland",
    50: "built-up",
    60: "bare / sparse vegetation",
    70: "snow and ice",
    80: "permanent water bodies",
    90: "herbaceous wetland",
}
GEOMORPHON_CLASSES = GEOMORPHONS

Array = NDArray[np.floating]


@dataclass(frozen=True, kw_only=True)
class Statics:
    """Static fields of a seeded world.

    Attributes
    ----------
    seed : int
        World seed.
    volcano : tuple of float
        ``(lon, lat)`` of the volcano summit.
    """

    seed: int
    volcano: tuple[float, float]

    def elevation(self, lon: Array, lat: Array) -> NDArray[np.float32]:
        """Ground elevation in metres."""
        relief = fbm(lon, lat, (60, 15, 4, 0.6), (900, 350, 120, 30), self.seed + 1)
        relief *= np.float32(900 + 350 + 120 + 30)
        dx = (np.asarray(lon) - self.volcano[0]) * KM_PER_DEG * np.cos(np.radians(self.volcano[1]))
        dy = (np.asarray(lat) - self.volcano[1]) * KM_PER_DEG
        cone = 3300 * np.exp(-(dx**2 + dy**2) / 8.0**2)
        ground: Array = np.maximum(1400 + relief + cone, 0)
        return ground.astype(np.float32)

    def wetness(
        self, lon: Array, lat: Array, elevation: Array | None = None
    ) -> NDArray[np.float32]:
        """Long-term wetness in [0, 1] (drives rainfall, climate and vegetation)."""
        z = self.elevation(lon, lat) if elevation is None else elevation
        w = 0.5 + 0.35 * value_noise(lon, lat, 90, self.seed + 2)
        w = w + 0.12 * value_noise(lon, lat, 20, self.seed + 3) + 0.12 * (z - 1400) / 1000
        clipped: Array = np.clip(w, 0, 1)
        return clipped.astype(np.float32)

    def climate(self, lon: Array, lat: Array) -> NDArray[np.uint8]:
        """Koppen-Geiger climate zone code."""
        z = self.elevation(lon, lat)
        annual_rain = 150 + 1500 * self.wetness(lon, lat, z)
        t0 = 31 - 6.5 * z / 1000
        out = np.full(z.shape, 2, dtype=np.uint8)
        out[annual_rain < 1150] = 3
        out[t0 < 18] = 12
        out[annual_rain < 650] = 6
        out[annual_rain < 350] = 4
        return out

    def landcover(self, lon: Array, lat: Array) -> NDArray[np.uint8]:
        """ESA WorldCover land-cover code."""
        z = self.elevation(lon, lat)
        w = self.wetness(lon, lat, z)
        potential = w + 0.2 * value_noise(lon, lat, 2, self.seed + 4)
        potential += 0.08 * value_noise(lon, lat, 0.3, self.seed + 5)
        farmed = value_noise(lon, lat, 6, self.seed + 6) > 0.1
        out = np.full(z.shape, 10, dtype=np.uint8)
        out[potential < 0.8] = np.where(farmed, 40, 10)[potential < 0.8]
        out[potential < 0.58] = 30
        out[potential < 0.42] = 20
        out[potential < 0.22] = 60
        lake = value_noise(lon, lat, 12, self.seed + 7)
        out[value_noise(lon, lat, 3, self.seed + 8) > 0.78] = 50
        out[(lake > 0.55) & (lake <= 0.62)] = 90
        out[lake > 0.62] = 80
        out[z > 4600] = 70
        return out


def geomorphons(elevation: NDArray[np.floating], spacing_m: float) -> NDArray[np.uint8]:
    """Classify a DEM grid into the ten geomorphon landforms.

    A compact stand-in for the line-of-sight algorithm: flat where the slope is under 2 degrees;
    otherwise the sign and size of the Laplacian (convex or concave) and whether the cell is a local
    extremum decide between peak, ridge, shoulder, spur, slope, hollow, footslope, valley and pit.
    """
    z = np.asarray(elevation, dtype=np.float64)
    gy, gx = np.gradient(z, spacing_m)
    slope = np.degrees(np.arctan(np.hypot(gx, gy)))
    padded = np.pad(z, 1, mode="edge")
    laplacian = (
        padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * z
    ) / spacing_m**2
    neighbours = np.stack(
        [padded[i : i + z.shape[0], j : j + z.shape[1]] for i in range(3) for j in range(3)]
    )
    is_max = z >= neighbours.max(axis=0)
    is_min = z <= neighbours.min(axis=0)
    scale = np.nanstd(laplacian) or 1.0
    curv = laplacian / scale
    out = np.full(z.shape, 6, dtype=np.uint8)
    out[curv < -0.3] = 5
    out[curv < -1.0] = 3
    out[(curv < -0.3) & (slope < 6)] = 4
    out[curv > 0.3] = 7
    out[curv > 1.0] = 9
    out[(curv > 0.3) & (slope < 6)] = 8
    out[is_max & (curv < 0)] = 2
    out[is_min & (curv > 0)] = 10
    out[slope < 2] = 1
    return out
