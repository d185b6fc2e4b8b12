"""The 12 TB workload of the first Africa round, as data, and the scaled replicas the suite runs.

The figures of :data:`AFRICA_12TB` come from the original study: 200 Sentinel-2 tiles and
23,864 minicubes, each tile 3660 x 3660 px at 30 m with 10 bands of uint16 and about 224 dates
(about 12 TB decoded), plus SMAP (16.1 GB) and ERA5 (21 GB) at level 1. A replica
(:func:`replica_workload`) has the same tile geometry with fewer tiles, dates and cubes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["AFRICA_12TB", "Workload", "replica_workload"]


@dataclass(frozen=True, kw_only=True)
class Workload:
    """Sizes of a level-1 to training workload.

    Attributes
    ----------
    name : str
        What it is.
    tiles : int
        Sentinel-2 tiles.
    cubes : int
        Minicubes (128 x 128 px boxes).
    dates_per_tile : int
        Acquisition dates per tile.
    tile_pixels : int
        Side of a tile in px.
    resolution_m : int
        Pixel size.
    bands : int
        Reflectance bands.
    bytes_per_value : int
        Bytes of one reflectance value (uint16).
    cube_pixels : int
        Side of a minicube in px.
    smap_bytes, era5_bytes : int
        Level-1 auxiliary data read once.
    l2_samples_per_cube : int
        Level-2 samples drawn per cube (cubestream's default ``windows_per_cube``).
    l2_sample_pixels : int
        Side of a level-2 sample in px.
    """

    name: str
    tiles: int
    cubes: int
    dates_per_tile: int
    tile_pixels: int = 3660
    resolution_m: int = 30
    bands: int = 10
    bytes_per_value: int = 2
    cube_pixels: int = 128
    smap_bytes: int = 0
    era5_bytes: int = 0
    l2_samples_per_cube: int = 1
    l2_sample_pixels: int = 128

    @property
    def tile_bytes(self) -> int:
        """Decoded bytes of one whole tile: ``[dates, bands, px, px]``."""
        return self.dates_per_tile * self.bands * self.tile_pixels**2 * self.bytes_per_value

    @property
    def total_bytes(self) -> int:
        """Decoded bytes of every tile."""
        return self.tiles * self.tile_bytes

    @property
    def cube_days(self) -> int:
        """Minicubes times dates: the unit of level-1 work."""
        return self.cubes * self.dates_per_tile

    @property
    def window_bytes(self) -> int:
        """Decoded bytes under the cubes' windows (what a level-1 build must produce)."""
        return self.cube_days * self.bands * self.cube_pixels**2 * self.bytes_per_value

    @property
    def l2_samples(self) -> int:
        """Level-2 samples of one epoch."""
        return self.cubes * self.l2_samples_per_cube

    def to_dict(self) -> dict[str, Any]:
        """The fields and the derived sizes, JSON-ready."""
        derived = ("tile_bytes", "total_bytes", "cube_days", "window_bytes", "l2_samples")
        return {**asdict(self), **{name: getattr(self, name) for name in derived}}


AFRICA_12TB = Workload(
    name="first Africa round (12 TB)",
    tiles=200,
    cubes=23_864,
    dates_per_tile=224,
    smap_bytes=16_100_000_000,
    era5_bytes=21_000_000_000,
)
"""The workload of the original study (figures from it, not measured here)."""


def replica_workload(name: str, tiles: int, cubes: int, dates_per_tile: int) -> Workload:
    """The scaled replica a benchmark ran: the study's tile geometry, its own counts."""
    return Workload(name=name, tiles=tiles, cubes=cubes, dates_per_tile=dates_per_tile)
