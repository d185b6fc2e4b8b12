"""A replica world: the spec resolved against the Sentinel-2 grid, its statics and its weather.

The acquisition plan reproduces the awkward cases of the real archive: dates missing for some
tiles, split datatakes (two items for one tile and day, each covering part of the tile), the
processing-baseline change to 04.00 (DN offset +1000), and no-data beyond the imaged area.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np
import xarray as xr

from cubestream import grid
from cubestream.replica.drivers import simulate
from cubestream.replica.spec import ReplicaSpec, Window
from cubestream.replica.statics import Statics

__all__ = ["Acquisition", "World"]

DRIVER_RESOLUTION = 0.1
"""Spacing (degrees) of the grid the weather, soil moisture and greenness are simulated on."""


@dataclass(frozen=True, kw_only=True)
class Acquisition:
    """One STAC item to write: a tile seen on one day, maybe only part of it.

    Attributes
    ----------
    tile_id, day, satellite, sequence : str, date, str, int
        Identify the item (``S2A_37MBU_20220105_0_L2A``).
    baseline : str
        Processing baseline (``"03.01"`` or ``"04.00"``).
    part : {"full", "upper", "lower"}
        Which part of the tile this item covers (split datatakes cover a part each).
    swath_edge : float
        Where the orbit's swath edge cuts the imaged area on that day, as a fraction of its width
        (pixels east of the slanted line ``col - 0.3 row = swath_edge`` are no-data); 0: no edge.
    """

    tile_id: str
    day: dt.date
    satellite: str
    sequence: int
    baseline: str
    part: str
    swath_edge: float

    @property
    def offset(self) -> int:
        """DN offset of the baseline (``BOA_ADD_OFFSET`` is -1000 from baseline 04.00 on)."""
        return 1000 if self.baseline >= "04.00" else 0


@dataclass(frozen=True, eq=False)
class World:
    """The spec of a replica with everything derived from it."""

    spec: ReplicaSpec

    @functools.cached_property
    def tiles(self) -> dict[str, grid.Tile]:
        """The world's tiles from the official grid."""
        return {tile_id: grid.tile(tile_id) for tile_id in self.spec.tiles}

    def window(self, tile_id: str) -> Window:
        """The imaged pixel window of a tile on its 30 m grid."""
        return self.spec.data_windows.get(tile_id, Window(row=0, col=0, height=3660, width=3660))

    @functools.cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        """WGS84 bounds of all tiles."""
        tiles = list(self.tiles.values())
        return (
            min(t.min_lon for t in tiles),
            min(t.min_lat for t in tiles),
            max(t.max_lon for t in tiles),
            max(t.max_lat for t in tiles),
        )

    @functools.cached_property
    def statics(self) -> Statics:
        """Static fields, with the volcano inside the first tile's imaged window."""
        from pyproj import Transformer

        first = self.tiles[self.spec.tiles[0]]
        win = self.window(first.tile_id)
        rng = np.random.default_rng([self.spec.seed, 3])
        row = win.row + win.height * rng.uniform(0.3, 0.7)
        col = win.col + win.width * rng.uniform(0.3, 0.7)
        to_ll = Transformer.from_crs(first.epsg, 4326, always_xy=True)
        lon, lat = to_ll.transform(first.x0 + 30 * col, first.y0 - 30 * row)
        return Statics(seed=self.spec.seed, volcano=(float(lon), float(lat)))

    @functools.cached_property
    def driver_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell centres ``(lon, lat)`` of the driver grid (lat descending), with margin."""
        margin = max(self.spec.era5_margin_deg, 0.3)
        min_lon, min_lat, max_lon, max_lat = self.bbox
        step = DRIVER_RESOLUTION
        lon = np.arange(np.floor((min_lon - margin) / step), np.ceil((max_lon + margin) / step) + 1)
        lat = np.arange(
            np.ceil((max_lat + margin) / step), np.floor((min_lat - margin) / step) - 1, -1
        )
        return np.round(lon * step, 6), np.round(lat * step, 6)

    @functools.cached_property
    def drivers(self) -> xr.Dataset:
        """Daily weather, soil moisture and greenness over the driver grid."""
        lon, lat = self.driver_grid
        return simulate(self.statics, lon, lat, self.spec.start, self.spec.end, self.spec.seed)

    @functools.cached_property
    def days(self) -> list[dt.date]:
        """Every day of the archive."""
        n = (self.spec.end - self.spec.start).days + 1
        return [self.spec.start + dt.timedelta(days=k) for k in range(n)]

    def mislabelled_days(self, tile_id: str) -> frozenset[dt.date]:
        """Days of a tile whose STAC items carry a wrong offset label (baseline 04.00 or later).

        ``spec.mislabelled_offsets`` of them (or all, if the tile has fewer such days), drawn
        from the seed; every item of such a day (both parts of a split datatake) is mislabelled.
        """
        days = sorted({a.day for a in self.acquisitions(tile_id) if a.offset})
        index = self.spec.tiles.index(tile_id)
        rng = np.random.default_rng([self.spec.seed, 13, index])
        count = min(self.spec.mislabelled_offsets, len(days))
        chosen = rng.choice(len(days), size=count, replace=False).tolist() if count else []
        return frozenset(days[k] for k in chosen)

    def acquisitions(self, tile_id: str) -> list[Acquisition]:
        """The items of one tile, in time order, with the archive's awkward cases."""
        index = self.spec.tiles.index(tile_id)
        rng = np.random.default_rng([self.spec.seed, 11, index])
        step = self.spec.revisit_days
        days = self.days[index % step :: step]
        n_missing = min(self.spec.missing_dates, max(len(days) - 2, 0))
        missing = set(rng.choice(len(days), size=n_missing, replace=False).tolist())
        kept = [d for k, d in enumerate(days) if k not in missing]
        n_split = min(self.spec.split_datatakes, len(kept))
        split = set(rng.choice(len(kept), size=n_split, replace=False).tolist())
        out = []
        for k, day in enumerate(kept):
            satellite = "S2A" if (day - self.spec.start).days // step % 2 == 0 else "S2B"
            baseline = "04.00" if day >= self.spec.baseline_change else "03.01"
            edge = float(rng.uniform(0.45, 0.9)) if rng.random() < 0.15 else 0.0
            parts = ("upper", "lower") if k in split else ("full",)
            for seq, part in enumerate(parts):
                out.append(
                    Acquisition(
                        tile_id=tile_id,
                        day=day,
                        satellite=satellite,
                        sequence=seq,
                        baseline=baseline,
                        part=part,
                        swath_edge=edge,
                    )
                )
        return out
