"""The area to sample, and the Sentinel-2 tiles that cover it.

An :class:`Area` is a named polygon in WGS84 longitude/latitude. :func:`parse_area` reads one from
the command line's ``--area`` value: ``"africa"`` (the default), a bounding box
``"min_lon,min_lat,max_lon,max_lat"`` or the path of a GeoJSON file.

Africa, offline
---------------
No package on our registries ships continent outlines for offline use (regionmask, cartopy and
geodatasets all download them at run time), and nothing may be fetched at run time. So
:data:`AFRICA` is a coarse hand-made polygon (about 65 vertices) whose edges run through the *seas*
around the continent, never over land: through the Strait of Gibraltar; through the Mediterranean
south of Spain, the Balearics, Sardinia, Sicily, Pantelleria, Lampedusa, Malta, Crete and Cyprus
but north of the African coast; along the Suez Canal and down the Gulf of Suez (Sinai excluded);
along the axis of the Red Sea (the Saudi and Yemeni coasts and islands excluded, Eritrea's Dahlak
islands included); through Bab-el-Mandeb and the Gulf of Aden (Socotra excluded); out into the
Indian Ocean round Seychelles, Comoros, Madagascar, Mauritius (Rodrigues too) and Reunion; round
the Cape; and up the Atlantic round Sao Tome and Principe, Bioko, Annobon, Cape Verde and the Canary
Islands (Madeira, the Selvagens, the Azores and Saint Helena excluded). The polygon therefore holds
a margin of sea around the land. The real coastline is drawn by the strata step: boxes that are
mostly water or no-data in the land-cover raster are dropped there by a threshold.

Tiles of an area
----------------
:func:`tiles_in_area` returns the tiles of the official grid whose footprint (the tile's
109.8 km UTM square, densified and transformed to WGS84) intersects the area. Tiles that cover
the same ground are kept once: within one UTM zone the tiles are 100 km MGRS squares, the
southern CRS (EPSG 327zz) counting northings from 10,000,000 m where the northern one (326zz)
counts from 0. Northings are normalised to the northern frame (``y - 1e7`` for 327zz), each tile
is keyed by its zone and the 100 km square its upper-left corner belongs to (the corner sits 0 to
40 m west and north of the square's corner), and the lexicographically first tile id of each key
is kept. (On the current ESA grid no two tiles share a key; the rule guards grids that repeat a
square, for example at latitude-band borders or across the equator.)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Polygon, box, shape

from cubestream.errors import AreaError
from cubestream.grid import TILE_SIZE_M, Tile, tiles_in_bbox
from cubestream.sample._utm import SQUARE_M, transformer, utm_frame

__all__ = ["AFRICA", "Area", "dedupe_tiles", "parse_area", "tile_footprints", "tiles_in_area"]

_FOOTPRINT_STEPS = 8
"""Points per footprint edge: the UTM square's edges are curves in longitude/latitude."""


@dataclass(frozen=True, kw_only=True)
class Area:
    """A named area to sample.

    Attributes
    ----------
    name : str
        Short name, for reports (``"africa"``, ``"bbox(...)"`` or a GeoJSON file's stem).
    geometry : shapely.Polygon or shapely.MultiPolygon
        The area in WGS84 longitude/latitude degrees.

    Raises
    ------
    AreaError
        If the geometry is not a valid, non-empty (multi)polygon within [-180, 180] x [-90, 90].
    """

    name: str
    geometry: Polygon | MultiPolygon

    def __post_init__(self) -> None:
        _check_geometry(self.geometry, self.name)
        shapely.prepare(self.geometry)

    def bbox(self) -> tuple[float, float, float, float]:
        """Bounds ``(min_lon, min_lat, max_lon, max_lat)`` of the area."""
        min_lon, min_lat, max_lon, max_lat = self.geometry.bounds
        return (float(min_lon), float(min_lat), float(max_lon), float(max_lat))

    def contains(self, lon: NDArray[np.floating], lat: NDArray[np.floating]) -> NDArray[np.bool_]:
        """Whether each point ``(lon[i], lat[i])`` lies inside the area (vectorised).

        Parameters
        ----------
        lon, lat : numpy.ndarray
            Longitudes and latitudes in degrees, of one shape.

        Returns
        -------
        numpy.ndarray of bool
            Of the shape of ``lon``; points on the boundary count as outside.
        """
        return np.asarray(shapely.contains_xy(self.geometry, lon, lat), dtype=bool)


def _check_geometry(geometry: object, name: str) -> None:
    if not isinstance(geometry, Polygon | MultiPolygon):
        raise AreaError(
            f"area {name!r}: expected a shapely Polygon or MultiPolygon in lon/lat, "
            f"got {type(geometry).__name__}"
        )
    if geometry.is_empty:
        raise AreaError(f"area {name!r} is empty; give a polygon with a non-zero area")
    if not geometry.is_valid:
        raise AreaError(
            f"area {name!r} is not a valid polygon ({shapely.is_valid_reason(geometry)}); "
            "fix it first, for example with shapely.make_valid"
        )
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        raise AreaError(
            f"area {name!r} has bounds {_fmt(geometry.bounds)} outside [-180, 180] x [-90, 90]; "
            "coordinates must be WGS84 longitude, latitude in degrees"
        )


def _fmt(values: Iterable[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"


_AFRICA_VERTICES = (
    # Strait of Gibraltar, then east through the Mediterranean
    (-5.6, 35.95), (-3.0, 35.7), (-1.0, 36.2), (3.0, 37.1), (8.0, 37.6), (10.5, 37.65),
    # Strait of Sicily: west of Pantelleria, Linosa and Lampedusa, east of Tunisia's coast
    (11.4, 37.15), (11.5, 36.5), (11.8, 34.9), (13.0, 33.5),
    # south of Malta, Crete (Gavdos) and Cyprus, north of Libya and Egypt
    (22.5, 33.5), (25.5, 32.6), (32.0, 31.9),
    # the Suez Canal and the Gulf of Suez (Sinai excluded)
    (32.34, 31.4), (32.31, 30.7), (32.40, 30.35), (32.56, 29.93), (32.52, 29.6), (32.88, 29.05),
    (33.3, 28.3), (33.85, 27.75), (34.1, 27.4),
    # the axis of the Red Sea: west of the Saudi coast, Farasan, Jabal al-Tair and Hanish
    (35.2, 26.2), (36.9, 24.0), (38.1, 21.5), (39.2, 19.5), (40.5, 17.0), (41.2, 15.6),
    (42.3, 14.0), (42.9, 13.2),
    # Bab-el-Mandeb (west of Perim), the Gulf of Aden, between Cape Guardafui and Abd al Kuri
    (43.25, 12.65), (43.6, 12.3), (45.0, 11.8), (49.0, 12.3), (51.55, 12.3), (51.75, 11.0),
    # the Indian Ocean: east of Seychelles, Agalega, Cargados Carajos, Rodrigues and Reunion
    (52.0, 9.5), (56.5, -2.5), (57.5, -10.5), (64.0, -18.5), (64.0, -21.0), (56.0, -22.5),
    # south of Madagascar, round the Cape
    (45.0, -27.5), (32.0, -31.0), (26.0, -34.6), (20.0, -35.3), (17.5, -34.5),
    # up the Atlantic: Annobon, Sao Tome and Principe, Bioko, then west round Cape Verde
    (16.0, -30.0), (14.0, -27.0), (11.0, -17.5), (8.0, -6.5), (5.0, -2.0), (4.0, 2.0),
    (-8.0, 3.5), (-13.5, 6.5), (-17.5, 10.0), (-26.0, 14.3), (-26.0, 17.5),
    # the Canary Islands (south of the Selvagens and Madeira), then along Morocco's coast
    (-19.0, 27.3), (-19.0, 29.6), (-12.5, 29.9), (-10.5, 31.0), (-9.0, 33.5), (-6.6, 35.5),
    (-6.1, 35.95),
)  # fmt: skip

AFRICA = Area(name="africa", geometry=Polygon(_AFRICA_VERTICES))
"""Africa and its islands, as a coarse polygon through the surrounding seas (see module doc)."""


def parse_area(value: str = "africa") -> Area:
    """Read an area from ``"africa"``, a bbox string or the path of a GeoJSON file.

    Parameters
    ----------
    value : str
        ``"africa"`` (case-insensitive), ``"min_lon,min_lat,max_lon,max_lat"`` in WGS84 degrees,
        or a GeoJSON file (a FeatureCollection, a Feature or a bare geometry; the union of all
        its polygons is the area).

    Returns
    -------
    Area

    Raises
    ------
    AreaError
        If the value is none of these, the bbox is malformed or out of range, the file cannot be
        read or holds no valid polygon, or no tile of the Sentinel-2 grid intersects the area.
    """
    text = value.strip()
    if text.lower() == "africa":
        return AFRICA
    path = Path(text).expanduser()
    if "," in text and not path.is_file():
        area = _parse_bbox(text)
    elif path.is_file():
        area = _read_geojson(path)
    else:
        raise AreaError(
            f"area {value!r} is neither 'africa', a bbox 'min_lon,min_lat,max_lon,max_lat' "
            "nor an existing GeoJSON file"
        )
    if not tiles_in_area(area):
        raise AreaError(
            f"area {value!r} (bounds {_fmt(area.bbox())}) lies outside the Sentinel-2 grid: "
            "no tile intersects it; the grid spans latitudes from about 84S to 84N"
        )
    return area


def _parse_bbox(text: str) -> Area:
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise AreaError(
            f"bbox {text!r} is not four numbers; expected 'min_lon,min_lat,max_lon,max_lat' "
            "in WGS84 degrees, for example '35.5,-0.6,36.5,0.6'"
        )
    min_lon, min_lat, max_lon, max_lat = numbers
    if min_lon >= max_lon or min_lat >= max_lat:
        raise AreaError(
            f"bbox {text!r} is empty: expected min_lon < max_lon and min_lat < max_lat "
            "(order 'min_lon,min_lat,max_lon,max_lat')"
        )
    if min_lon < -180 or max_lon > 180 or min_lat < -90 or max_lat > 90:
        raise AreaError(
            f"bbox {text!r} is out of range: longitudes must lie in [-180, 180] and "
            "latitudes in [-90, 90] (order 'min_lon,min_lat,max_lon,max_lat')"
        )
    return Area(name=f"bbox({_fmt(numbers)[1:-1]})", geometry=box(*numbers))


def _read_geojson(path: Path) -> Area:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AreaError(f"cannot read the GeoJSON file {path}: {exc}") from exc
    try:
        polygons = list(_polygons(document))
    except (AttributeError, KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
        raise AreaError(
            f"{path} is not valid GeoJSON ({exc}); expected a FeatureCollection, a Feature "
            "or a geometry with Polygon or MultiPolygon coordinates in lon/lat"
        ) from exc
    if not polygons:
        raise AreaError(
            f"{path} holds no Polygon or MultiPolygon; the area must be a polygon in lon/lat"
        )
    for polygon in polygons:
        _check_geometry(polygon, str(path))
    union = shapely.union_all(polygons)
    return Area(name=path.stem, geometry=union)


def _polygons(document: Any) -> Iterable[Polygon]:
    """Every polygon of a GeoJSON document (FeatureCollection, Feature or geometry)."""
    if not isinstance(document, dict) or "type" not in document:
        raise ValueError("the document is not a GeoJSON object with a 'type'")
    kind = document["type"]
    if kind == "FeatureCollection":
        for feature in document["features"]:
            yield from _polygons(feature)
    elif kind == "Feature":
        if document.get("geometry") is not None:
            yield from _polygons(document["geometry"])
    elif kind == "GeometryCollection":
        for geometry in document["geometries"]:
            yield from _polygons(geometry)
    else:
        geometry = shape(document)
        if isinstance(geometry, Polygon):
            yield geometry
        elif isinstance(geometry, MultiPolygon):
            yield from geometry.geoms


def tile_footprints(tiles: Sequence[Tile]) -> NDArray[np.object_]:
    """WGS84 footprints of tiles: each tile's UTM square, densified and transformed.

    Parameters
    ----------
    tiles : sequence of Tile

    Returns
    -------
    numpy.ndarray of shapely.Polygon
        One polygon per tile, in the order given.
    """
    steps = np.arange(_FOOTPRINT_STEPS) / _FOOTPRINT_STEPS * TILE_SIZE_M
    full = np.full(_FOOTPRINT_STEPS, TILE_SIZE_M)
    zero = np.zeros(_FOOTPRINT_STEPS)
    # clockwise from the upper-left corner: east along the top, down, west, up
    dx = np.concatenate([steps, full, TILE_SIZE_M - steps, zero])
    dy = np.concatenate([zero, -steps, -full, steps - TILE_SIZE_M])
    out = np.empty(len(tiles), dtype=object)
    epsgs = np.array([t.epsg for t in tiles])
    x0 = np.array([t.x0 for t in tiles])[:, None]
    y0 = np.array([t.y0 for t in tiles])[:, None]
    for epsg in np.unique(epsgs):
        index = np.flatnonzero(epsgs == epsg)
        lon, lat = transformer(int(epsg)).transform(x0[index] + dx, y0[index] + dy)
        out[index] = shapely.polygons(np.stack([lon, lat], axis=-1))
    return out


def dedupe_tiles(tiles: Iterable[Tile]) -> list[Tile]:
    """Keep one tile per piece of ground: the first id per (zone, 100 km square), sorted by id.

    Parameters
    ----------
    tiles : iterable of Tile

    Returns
    -------
    list of Tile
        Sorted by tile id; see the module docstring for the rule.
    """
    kept: dict[tuple[int, int, int], Tile] = {}
    for tile in sorted(tiles, key=lambda t: t.tile_id):
        zone, y0 = utm_frame(tile.epsg, tile.y0)
        key = (zone, round(tile.x0 / SQUARE_M), round(y0 / SQUARE_M))
        kept.setdefault(key, tile)
    return sorted(kept.values(), key=lambda t: t.tile_id)


def tiles_in_area(area: Area) -> list[Tile]:
    """Tiles of the official grid whose footprint intersects the area, deduplicated.

    Parameters
    ----------
    area : Area

    Returns
    -------
    list of Tile
        Sorted by tile id; empty if no tile intersects the area. Tiles that straddle the
        antimeridian are left out (see :func:`cubestream.grid.tiles_in_bbox`).
    """
    candidates = tiles_in_bbox(area.bbox())
    if not candidates:
        return []
    hits = shapely.intersects(tile_footprints(candidates), area.geometry)
    return dedupe_tiles(t for t, hit in zip(candidates, hits, strict=True) if hit)
