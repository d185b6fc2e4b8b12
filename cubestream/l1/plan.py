"""Plan a tile's level-1 build: pure functions from the locations table and STAC items to specs.

Nothing here reads pixels. A :class:`TilePlan` says which cubes a tile holds, which acquisition
days it has, which items make each day (split datatakes are two items of one day), which DN offset
each item carries (:mod:`cubestream.sources.offsets` decides it), and how days group into time
chunks.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cubestream.errors import L1Error
from cubestream.l1.config import NATIVE_READ_BLOCK, READ_BLOCK, IntegrityPolicy
from cubestream.sources.offsets import OffsetDecision, decide
from cubestream.sources.sentinel2 import S2Item

__all__ = ["CUBE_COLUMNS", "IntegrityPolicy", "TilePlan", "even_chunk", "plan_tile"]

CUBE_COLUMNS = (
    "cube_id", "row", "col", "x_min", "y_min", "x_max", "y_max", "lon", "lat",
    "min_lon", "min_lat", "max_lon", "max_lat",
)  # fmt: skip
"""Per-cube columns carried from the locations table into the L1 store."""


@dataclass(frozen=True, kw_only=True)
class TilePlan:
    """Everything needed to build one tile's group, with no pixel read yet."""

    tile: str
    epsg: int
    x0: float
    y0: float
    cubes: pd.DataFrame
    items: tuple[S2Item, ...]
    days: tuple[dt.date, ...]
    item_day: tuple[int, ...]
    decisions: tuple[OffsetDecision, ...]
    days_per_chunk: int
    missing_dates: tuple[dt.date, ...]

    def read_block(self, requested: int | None = None) -> int:
        """Side (px at 30 m) of the tile's read chunks: ``requested``, else from its assets.

        A read chunk should cover whole COG blocks of every asset, or a block on its edge is
        fetched and decoded by two tasks. The archives' COG blocks are 1024 px: 1024 px at 30 m,
        but 341 1/3 px at 10 m and 682 2/3 px at 20 m, which 2048 px at 30 m (61.44 km) covers
        whole. So: :data:`NATIVE_READ_BLOCK` where some asset of the tile's items is finer than
        30 m (its ``gsd``, ``raster:bands`` resolution or ``proj:transform``, as Earth Search,
        Planetary Computer and the replica state them), :data:`READ_BLOCK` otherwise (also where
        no item states its resolution).
        """
        if requested is not None:
            return requested
        finest = min((r for item in self.items for r in _resolutions(item)), default=None)
        return NATIVE_READ_BLOCK if finest is not None and finest < 30 else READ_BLOCK

    @property
    def offsets(self) -> tuple[int, ...]:
        """DN offset subtracted from each item's reflectance."""
        return tuple(d.dn for d in self.decisions)

    @property
    def cubes_bounds(self) -> tuple[float, float, float, float]:
        """UTM bounds of the tile's cubes (what the build reads of each item)."""
        c = self.cubes
        return (
            float(c["x_min"].min()),
            float(c["y_min"].min()),
            float(c["x_max"].max()),
            float(c["y_max"].max()),
        )

    @property
    def day_chunks(self) -> tuple[int, ...]:
        """Days per time chunk (the last chunk may be shorter)."""
        n, k = len(self.days), self.days_per_chunk
        return tuple(min(k, n - start) for start in range(0, n, k))

    @property
    def item_chunks(self) -> tuple[int, ...]:
        """Items per time chunk: the items of the days of each chunk (same-day items together)."""
        block = np.asarray(self.item_day) // self.days_per_chunk
        return tuple(int(v) for v in np.bincount(block, minlength=len(self.day_chunks)))

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """UTM bounds of the boxes' grid (the tile's upper-left corner, 28 boxes a side)."""
        return (self.x0, self.y0 - 28 * 3840, self.x0 + 28 * 3840, self.y0)


def _missing_dates(days: list[dt.date]) -> list[dt.date]:
    """Acquisitions absent from the regular revisit: gaps over 1.5 median gaps."""
    if len(days) < 3:
        return []
    gaps = np.diff([d.toordinal() for d in days])
    step = int(np.median(gaps))
    missing = []
    for day, gap in zip(days[:-1], gaps, strict=True):
        missing += [day + dt.timedelta(days=step * k) for k in range(1, round(gap / step))]
    return missing


def even_chunk(days: int, most: int) -> int:
    """Days per time chunk: at most ``most``, in as few chunks, as even as they can be.

    Zarr stores an edge chunk whole: 6 days in 16-day chunks would encode 16 days per box,
    and 17 days two full chunks. Here 6 days make one chunk of 6, 17 days two of 9 (and 8),
    40 days three of 14; a multiple of ``most`` is left as it is.
    """
    if days <= 0:
        return max(1, most)
    chunks = -(-days // most)
    return -(-days // chunks)


def plan_tile(
    tile: Any,
    cubes: pd.DataFrame,
    items: list[S2Item],
    *,
    days_per_chunk: int = 16,
    decisions: list[OffsetDecision] | None = None,
) -> TilePlan:
    """Plan the build of one tile.

    Parameters
    ----------
    tile : cubestream.grid.Tile
        The tile (corner and EPSG from the official grid).
    cubes : pandas.DataFrame
        The tile's rows of the locations table.
    items : list of S2Item
        The tile's items, sorted by datetime.
    days_per_chunk : int
        Acquisition days per time chunk of the store, at most: the tile's days are cut into
        chunks as even as that allows (:func:`even_chunk`), so the last chunk is not mostly
        padding, which zarr stores and encodes as a whole chunk.
    decisions : list of OffsetDecision, optional
        The offset of each item; by default the metadata's, trusted (an item whose metadata
        states none raises :class:`~cubestream.errors.OffsetError`).
    """
    if not items:
        raise L1Error(f"tile {tile.tile_id} has no Sentinel-2 items in the time range")
    bad = cubes[(cubes["epsg"] != tile.epsg) | (cubes["x_min"] != tile.x0 + cubes["col"] * 3840)]
    if not bad.empty:
        raise L1Error(
            f"cubes {bad['cube_id'].tolist()[:5]} do not sit on tile {tile.tile_id}'s box grid; "
            "the locations table does not match the Sentinel-2 grid"
        )
    if decisions is None:
        decisions = [decide(i.id, i.offset, None, "trust") for i in items]
    if [d.item for d in decisions] != [i.id for i in items]:
        raise L1Error(f"tile {tile.tile_id}: the offset decisions do not match its items")
    day_of = [i.day for i in items]
    days = sorted(set(day_of))
    index = {day: k for k, day in enumerate(days)}
    return TilePlan(
        tile=tile.tile_id,
        epsg=tile.epsg,
        x0=tile.x0,
        y0=tile.y0,
        cubes=cubes.sort_values("cube_id").reset_index(drop=True)[list(CUBE_COLUMNS)],
        items=tuple(items),
        days=tuple(days),
        item_day=tuple(index[d] for d in day_of),
        decisions=tuple(decisions),
        days_per_chunk=even_chunk(len(days), days_per_chunk),
        missing_dates=tuple(_missing_dates(days)),
    )


def _resolutions(item: S2Item) -> list[float]:
    """Pixel sizes (m) the catalogue states for the assets the build reads of ``item``."""
    hrefs = set(item.hrefs.values())
    out = []
    for asset in item.raw.get("assets", {}).values():
        if not isinstance(asset, dict) or asset.get("href") not in hrefs:
            continue
        bands, transform = asset.get("raster:bands"), asset.get("proj:transform")
        band = bands[0] if isinstance(bands, list) and bands and isinstance(bands[0], dict) else {}
        stated = (
            asset.get("gsd"),
            band.get("spatial_resolution"),
            transform[0] if isinstance(transform, list) and transform else None,
        )
        sizes = [v for v in stated if isinstance(v, int | float) and not isinstance(v, bool)]
        if sizes and sizes[0] > 0:
            out.append(float(sizes[0]))
    return out
