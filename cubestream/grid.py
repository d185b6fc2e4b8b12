"""The official Sentinel-2 tile grid (ESA MGRS tiling), offline.

The grid comes from ESA's tiling-grid KML (``S2A_OPER_GIP_TILPAR_MPC__...kml``), which the
``s2tiling`` package ships zipped. Each placemark gives the tile id, its UTM EPSG code and its
footprint in UTM metres (``UTM_WKT``) and in WGS84 (``LL_WKT``). Tile corners are *not* multiples
of 100 km (for example x = 399960, y = 800020), so they are read from the grid, never rounded.

The 108 MB KML is parsed once and cached as a compact Parquet index (about 57k rows).
"""

from __future__ import annotations

import importlib.util
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cubestream.errors import GridError, TileNotFoundError

__all__ = [
    "TILE_PIXELS_30M",
    "TILE_SIZE_M",
    "Tile",
    "cache_dir",
    "load_grid",
    "tile",
    "tiles_in_bbox",
]

TILE_SIZE_M = 109_800
"""Side of a Sentinel-2 tile in metres."""
TILE_PIXELS_30M = TILE_SIZE_M // 30
"""Side of a Sentinel-2 tile in 30 m pixels (3660)."""

_GRID_VERSION = 1
_FIELD = r"<b>{name}</b></font></td><td[^>]*>\s*<font[^>]*>([^<]*)</font>"
_PATTERNS = {
    name: re.compile(_FIELD.format(name=name)) for name in ("TILE_ID", "EPSG", "UTM_WKT", "LL_WKT")
}
_NUMBER_PAIR = re.compile(r"(-?\d+(?:\.\d+)?)\s+(-?\d+(?:\.\d+)?)")


@dataclass(frozen=True, kw_only=True)
class Tile:
    """One Sentinel-2 tile of the official grid.

    Attributes
    ----------
    tile_id : str
        MGRS tile id, for example ``"37MBU"``.
    epsg : int
        EPSG code of the tile's UTM zone.
    x0, y0 : float
        Upper-left corner of the tile in the UTM CRS (metres).
    min_lon, min_lat, max_lon, max_lat : float
        WGS84 bounds of the tile footprint (longitudes may wrap at the antimeridian).
    """

    tile_id: str
    epsg: int
    x0: float
    y0: float
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @property
    def utm_bounds(self) -> tuple[float, float, float, float]:
        """Bounds ``(x_min, y_min, x_max, y_max)`` in the tile's UTM CRS."""
        return (self.x0, self.y0 - TILE_SIZE_M, self.x0 + TILE_SIZE_M, self.y0)

    def transform(self, resolution: float = 30.0) -> tuple[float, ...]:
        """Affine transform coefficients (GDAL order a, b, c, d, e, f) at ``resolution``."""
        return (resolution, 0.0, self.x0, 0.0, -resolution, self.y0)

    def shape(self, resolution: float = 30.0) -> tuple[int, int]:
        """Pixel shape ``(rows, cols)`` of the tile at ``resolution`` metres."""
        n = round(TILE_SIZE_M / resolution)
        return (n, n)


def cache_dir() -> Path:
    """Directory for cubestream's caches (``$CUBESTREAM_CACHE`` or ``~/.cache/cubestream``)."""
    root = os.environ.get("CUBESTREAM_CACHE") or Path.home() / ".cache" / "cubestream"
    return Path(root)


def _kml_zip() -> Path:
    spec = importlib.util.find_spec("s2tiling")
    if spec is None or not spec.submodule_search_locations:
        raise GridError(
            "the Sentinel-2 grid package 's2tiling' is not installed; run `make env` "
            "(or `pip install s2tiling`) to get the ESA tiling grid"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "s2_tiling.zip"
    if not path.exists():
        raise GridError(f"the ESA grid file is missing from the s2tiling package: {path}")
    return path


def _placemarks(path: Path) -> Iterator[str]:
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.lower().endswith(".kml"))
        text = archive.read(name).decode("utf-8")
    start = text.find("<Placemark>")
    while start != -1:
        end = text.find("</Placemark>", start)
        yield text[start:end]
        start = text.find("<Placemark>", end)


def _parse_placemark(block: str) -> dict[str, object]:
    fields = {}
    for name, pattern in _PATTERNS.items():
        match = pattern.search(block)
        if match is None:
            raise GridError(f"ESA grid placemark without {name}: {block[:120]!r}")
        fields[name] = match.group(1).strip()
    utm = np.array(_NUMBER_PAIR.findall(str(fields["UTM_WKT"])), dtype=float)
    ll = np.array(_NUMBER_PAIR.findall(str(fields["LL_WKT"])), dtype=float)
    return {
        "tile_id": fields["TILE_ID"],
        "epsg": int(str(fields["EPSG"])),
        "x0": utm[:, 0].min(),
        "y0": utm[:, 1].max(),
        "min_lon": ll[:, 0].min(),
        "min_lat": ll[:, 1].min(),
        "max_lon": ll[:, 0].max(),
        "max_lat": ll[:, 1].max(),
    }


def _build_index() -> pd.DataFrame:
    rows = [_parse_placemark(block) for block in _placemarks(_kml_zip())]
    frame = pd.DataFrame(rows).drop_duplicates("tile_id").sort_values("tile_id")
    return frame.reset_index(drop=True)


_CACHE: dict[Path, pd.DataFrame] = {}


def load_grid() -> pd.DataFrame:
    """Return the whole grid as a table, one row per tile, parsing and caching it on first use.

    Returns
    -------
    pandas.DataFrame
        Columns ``tile_id, epsg, x0, y0, min_lon, min_lat, max_lon, max_lat``.
    """
    path = cache_dir() / f"s2_grid_v{_GRID_VERSION}.parquet"
    if path in _CACHE:
        return _CACHE[path]
    if path.exists():
        frame = pd.read_parquet(path)
    else:
        frame = _build_index()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(path)
    _CACHE[path] = frame
    return frame


def _to_tile(row: pd.Series) -> Tile:
    return Tile(
        tile_id=str(row["tile_id"]),
        epsg=int(row["epsg"]),
        x0=float(row["x0"]),
        y0=float(row["y0"]),
        min_lon=float(row["min_lon"]),
        min_lat=float(row["min_lat"]),
        max_lon=float(row["max_lon"]),
        max_lat=float(row["max_lat"]),
    )


def tile(tile_id: str) -> Tile:
    """Look up one tile by its MGRS id.

    Raises
    ------
    TileNotFoundError
        If the id is not in the official grid.
    """
    frame = load_grid()
    hits = frame[frame["tile_id"] == tile_id.upper().removeprefix("T")]
    if hits.empty:
        raise TileNotFoundError(
            f"tile {tile_id!r} is not in the Sentinel-2 grid; ids look like '37MBU' "
            "(UTM zone, latitude band, 100 km square)"
        )
    return _to_tile(hits.iloc[0])


def tiles_in_bbox(bbox: tuple[float, float, float, float]) -> list[Tile]:
    """Tiles whose WGS84 bounds intersect ``bbox = (min_lon, min_lat, max_lon, max_lat)``.

    Tiles that straddle the antimeridian are left out (their longitude span exceeds 180 degrees).
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    frame = load_grid()
    regular = (frame["max_lon"] - frame["min_lon"]) < 180
    hits = frame[
        regular
        & (frame["min_lon"] < max_lon)
        & (frame["max_lon"] > min_lon)
        & (frame["min_lat"] < max_lat)
        & (frame["max_lat"] > min_lat)
    ]
    return [_to_tile(row) for _, row in hits.iterrows()]
