"""The box grid inside each Sentinel-2 tile, and the candidate boxes of an area.

A box is a minicube's footprint: 128 x 128 pixels of 30 m, 3840 m a side, aligned to the tile's
30 m pixel grid from its upper-left corner ``(x0, y0)``. Box ``(row, col)`` of a tile spans
``x_min = x0 + col * 3840``, ``y_max = y0 - row * 3840`` in the tile's UTM CRS; rows and columns
run 0..27 (28 x 3840 m = 107,520 m of the tile's 109,800 m).

The overlap rule (a contract: no ground is ever sampled twice)
--------------------------------------------------------------
Neighbouring Sentinel-2 tiles overlap by 9.8 km. A box is *core*, and only core boxes are
candidates, when both of these hold:

1. **Inside its own 100 km square.** Within one UTM zone the tiles are MGRS 100 km squares, which
   tile the plane without overlap (the southern CRS counts northings from 10,000,000 m; with
   ``y - 1e7`` both hemispheres share one frame). A tile's upper-left corner sits 0, 20 or 40 m
   west and 0, 20 or 40 m north of its square's corner (x0 = 399960, 399980 or 400000; y0 = ...000,
   ...020 or ...040 on the official grid). A box is kept if it lies inside the tile's square shifted
   80 m west and north (:data:`SQUARE_MARGIN_M`); the shifted squares still tile the plane, so two
   boxes of different tiles of one zone never overlap. On the official grid this is exactly rows
   and columns 0..25 (:data:`CORE_BOXES`): 26 x 3840 m = 99,840 m end 120 to 200 m before the
   next tile's first box; boxes 26 and 27 fall in the overlap strip and are dropped. The tests
   check the corner offsets of every tile of the grid rather than trusting this.
2. **On its own side of the zone border.** Across zone borders tiles overlap irregularly. A box
   is kept if all four corners lie in its tile's UTM zone: zone ``n`` spans longitudes
   ``[-180 + 6 (n - 1), -180 + 6 n)``, with the Norway (32V) and Svalbard (31X-37X) exceptions.
   A zone border meridian is a curve whose distance from the central meridian is largest at the
   equator, so a box with its four corners on one side lies wholly on that side: boxes of
   different zones that pass this test are separated by the border. A box that reaches across
   its zone border is kept only if it touches no 100 km square (shifted as in rule 1) of any tile
   of another zone, tested on its corners and edge midpoints transformed into that tile's CRS,
   with 1 m of slack. This matters: the ESA grid starts each zone's tiles at easting ~200 km,
   and within about 26 degrees of the equator the zone border lies west of that (at ~166 km on
   the equator), so a strip up to 34 km wide east of every border is covered only by the
   western zone's tiles; a plain meridian cut would never sample it. Two kept boxes never
   overlap: every kept box lies inside its own tile's square; a box kept across the border
   touches no square of another zone, so no box of another zone; and boxes inside their own
   zones are split by the border.

The column ``core`` holds this rule; it depends on the grid only, not on the area sampled. Ground
in the 120-200 m seams between squares and in strips along zone borders (up to one box wide) is
never sampled. Boxes that straddle the antimeridian are never core.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from cubestream.grid import Tile, tile
from cubestream.sample._squares import reaches_other_zone
from cubestream.sample._utm import SQUARE_M, SQUARE_MARGIN_M, transformer, utm_frame, utm_zone
from cubestream.sample.area import Area, dedupe_tiles, tiles_in_area

__all__ = [
    "BOXES_PER_SIDE",
    "BOX_COLUMNS",
    "BOX_PIXELS",
    "BOX_SIZE_M",
    "CORE_BOXES",
    "RESOLUTION",
    "SQUARE_MARGIN_M",
    "candidate_boxes",
    "tile_boxes",
]

BOX_PIXELS = 128
"""Side of a box in pixels."""
RESOLUTION = 30
"""Pixel size in metres."""
BOX_SIZE_M = BOX_PIXELS * RESOLUTION
"""Side of a box in metres (3840)."""
BOXES_PER_SIDE = 28
"""Rows and columns of boxes in a tile (0..27)."""
CORE_BOXES = 26
"""Rows and columns of core boxes in a tile of the official grid (0..25)."""
BOX_COLUMNS = (
    "cube_id",
    "tile",
    "epsg",
    "row",
    "col",
    "x_min",
    "y_min",
    "x_max",
    "y_max",
    "lon",
    "lat",
    "min_lon",
    "min_lat",
    "max_lon",
    "max_lat",
    "core",
)
"""Columns of :func:`tile_boxes` and :func:`candidate_boxes`, in order."""

_CHUNK_TILES = 128
"""Tiles transformed in one call; bounds the memory of the intermediate arrays."""
_LATTICE = 2 * BOXES_PER_SIDE + 1
"""Points per side of the half-box lattice: corners, edge midpoints and centres of all boxes."""
_RIM = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (2, 2))
"""Lattice offsets of a box's four corners and four edge midpoints."""
_SUFFIXES = np.array(
    [f"{r:02d}{c:02d}" for r in range(BOXES_PER_SIDE) for c in range(BOXES_PER_SIDE)]
)

_DTYPES = {
    "tile_index": np.int64,
    "row": np.int64,
    "col": np.int64,
    **dict.fromkeys(BOX_COLUMNS[5:15], np.float64),
    "core": np.bool_,
}
"""Columns computed per chunk of tiles, before the tile ids are attached."""

_Array = NDArray[np.float64]


def tile_boxes(tile_or_id: Tile | str) -> pd.DataFrame:
    """Every box of one tile, 28 x 28 rows, with the ``core`` flag of the overlap rule.

    Parameters
    ----------
    tile_or_id : Tile or str
        A tile of the official grid, or its id (for example ``"37MBU"``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BOX_COLUMNS`, sorted by (row, col).

    Raises
    ------
    TileNotFoundError
        If a tile id is not in the official grid.
    """
    tiles = _resolve([tile_or_id])
    return _frame(tiles, [_boxes(tiles, 0)])


def candidate_boxes(area: Area, tiles: Sequence[Tile | str] | None = None) -> pd.DataFrame:
    """The core boxes of the area's tiles whose centre lies inside the area.

    Parameters
    ----------
    area : Area
        The area to sample.
    tiles : sequence of Tile or str, optional
        The tiles to take boxes from, as tiles or ids (deduplicated with
        :func:`~cubestream.sample.area.dedupe_tiles`); by default the area's tiles,
        :func:`~cubestream.sample.area.tiles_in_area`.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`BOX_COLUMNS` (``core`` all true), sorted by (tile, row, col), with a
        fresh range index.

    Raises
    ------
    TileNotFoundError
        If a tile id is not in the official grid.
    """
    tile_list = tiles_in_area(area) if tiles is None else dedupe_tiles(_resolve(tiles))
    parts = []
    for start, chunk in _chunks(tile_list):
        boxes = _boxes(chunk, start)
        core = np.flatnonzero(boxes["core"])
        keep = core[area.contains(boxes["lon"][core], boxes["lat"][core])]
        parts.append({name: column[keep] for name, column in boxes.items()})
    return _frame(tile_list, parts)


def _resolve(tiles: Sequence[Tile | str]) -> list[Tile]:
    return [t if isinstance(t, Tile) else tile(t) for t in tiles]


def _chunks(tiles: Sequence[Tile]) -> Iterator[tuple[int, list[Tile]]]:
    """Runs of consecutive tiles of one EPSG, at most ``_CHUNK_TILES`` long, with their start."""
    start = 0
    for _, run in itertools.groupby(tiles, key=lambda t: t.epsg):
        group = list(run)
        for offset in range(0, len(group), _CHUNK_TILES):
            chunk = group[offset : offset + _CHUNK_TILES]
            yield start, chunk
            start += len(chunk)


def _boxes(tiles: Sequence[Tile], start: int) -> dict[str, NDArray[Any]]:
    """All boxes of tiles of one EPSG, flat in (tile, row, col) order; ``tile_index`` from start."""
    epsg = tiles[0].epsg
    x0 = np.array([t.x0 for t in tiles])
    y0 = np.array([t.y0 for t in tiles])
    lon, lat = _lattice(epsg, x0, y0)
    shape = (len(tiles), BOXES_PER_SIDE, BOXES_PER_SIDE)
    index = np.arange(BOXES_PER_SIDE)
    row = np.broadcast_to(index[None, :, None], shape)
    col = np.broadcast_to(index[None, None, :], shape)
    x_min = x0[:, None, None] + col * BOX_SIZE_M
    y_max = y0[:, None, None] - row * BOX_SIZE_M
    rim_lon = np.stack([_at(lon, i, j) for i, j in _RIM], axis=-1)
    rim_lat = np.stack([_at(lat, i, j) for i, j in _RIM], axis=-1)
    columns: dict[str, NDArray[Any]] = {
        "tile_index": np.broadcast_to(start + np.arange(len(tiles))[:, None, None], shape),
        "row": row,
        "col": col,
        "x_min": x_min,
        "y_min": y_max - BOX_SIZE_M,
        "x_max": x_min + BOX_SIZE_M,
        "y_max": y_max,
        "lon": _at(lon, 1, 1),
        "lat": _at(lat, 1, 1),
        "min_lon": rim_lon.min(axis=-1),
        "min_lat": rim_lat.min(axis=-1),
        "max_lon": rim_lon.max(axis=-1),
        "max_lat": rim_lat.max(axis=-1),
        "core": _core(epsg, x0, y0, lon, lat, rim_lon, rim_lat),
    }
    return {name: np.ascontiguousarray(values).reshape(-1) for name, values in columns.items()}


def _lattice(epsg: int, x0: _Array, y0: _Array) -> tuple[_Array, _Array]:
    """Longitude and latitude of the half-box lattice of each tile, shape (tiles, 57, 57)."""
    steps = np.arange(_LATTICE) * (BOX_SIZE_M / 2)
    shape = (len(x0), _LATTICE, _LATTICE)
    x = np.broadcast_to(x0[:, None, None] + steps[None, None, :], shape).ravel()
    y = np.broadcast_to(y0[:, None, None] - steps[None, :, None], shape).ravel()
    lon, lat = transformer(epsg).transform(x, y)
    return np.asarray(lon).reshape(shape), np.asarray(lat).reshape(shape)


def _at(lattice: _Array, di: int, dj: int) -> _Array:
    """The lattice point at offset (di, dj) from each box's upper-left corner, (tiles, 28, 28)."""
    end = 2 * BOXES_PER_SIDE
    return lattice[:, di : di + end : 2, dj : dj + end : 2]


def _core(
    epsg: int, x0: _Array, y0: _Array, lon: _Array, lat: _Array, rim_lon: _Array, rim_lat: _Array
) -> NDArray[np.bool_]:
    """The overlap rule: rule 1, and rule 2 or, across the zone border, no other zone's square."""
    square = _in_square(epsg, x0, y0)
    core = square & _in_zone(epsg, lon, lat)
    across = square & ~core
    if across.any():
        zone, _ = utm_frame(epsg, 0.0)
        core[across] = ~reaches_other_zone(zone, rim_lon[across], rim_lat[across])
    return core


def _in_square(epsg: int, x0: _Array, y0: _Array) -> NDArray[np.bool_]:
    """Rule 1: boxes inside the tile's 100 km square shifted ``SQUARE_MARGIN_M`` west and north."""
    north = np.array([utm_frame(epsg, y)[1] for y in y0])
    square_x = np.round(x0 / SQUARE_M) * SQUARE_M - SQUARE_MARGIN_M
    square_y = np.round(north / SQUARE_M) * SQUARE_M + SQUARE_MARGIN_M
    offsets = np.arange(BOXES_PER_SIDE) * BOX_SIZE_M
    x_min = x0[:, None] + offsets
    y_max = north[:, None] - offsets
    cols = (x_min >= square_x[:, None]) & (x_min + BOX_SIZE_M <= square_x[:, None] + SQUARE_M)
    rows = (y_max <= square_y[:, None]) & (y_max - BOX_SIZE_M >= square_y[:, None] - SQUARE_M)
    return rows[:, :, None] & cols[:, None, :]


def _in_zone(epsg: int, lon: _Array, lat: _Array) -> NDArray[np.bool_]:
    """Rule 2: boxes whose four corners lie in the tile's own UTM zone."""
    zone, _ = utm_frame(epsg, 0.0)
    ok: NDArray[np.bool_] = utm_zone(lon[:, ::2, ::2], lat[:, ::2, ::2]) == zone
    return ok[:, :-1, :-1] & ok[:, :-1, 1:] & ok[:, 1:, :-1] & ok[:, 1:, 1:]


def _frame(tiles: Sequence[Tile], parts: list[dict[str, NDArray[Any]]]) -> pd.DataFrame:
    """One table from per-chunk columns (already in (tile, row, col) order), freeing as it goes."""
    columns = _concat(parts)
    tile_index = columns.pop("tile_index")
    ids = np.array([t.tile_id for t in tiles], dtype=str)
    epsgs = np.array([t.epsg for t in tiles], dtype=np.int64)
    cell = columns["row"] * BOXES_PER_SIDE + columns["col"]
    data = {
        "cube_id": np.strings.add(ids[tile_index], _SUFFIXES[cell]).astype(object),
        "tile": ids.astype(object)[tile_index],
        "epsg": epsgs[tile_index],
        **{name: columns.pop(name) for name in BOX_COLUMNS[3:]},
    }
    return pd.DataFrame(data, columns=list(BOX_COLUMNS), copy=False)


def _concat(parts: list[dict[str, NDArray[Any]]]) -> dict[str, NDArray[Any]]:
    """Concatenate the chunks column by column, dropping each chunk's column once copied."""
    if not parts:
        return {name: np.empty(0, dtype=dtype) for name, dtype in _DTYPES.items()}
    return {name: np.concatenate([p.pop(name) for p in parts]) for name in _DTYPES}
