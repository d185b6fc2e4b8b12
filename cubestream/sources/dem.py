"""Elevation archives as users have them: one small protocol, one adapter per kind of source.

Every adapter answers two questions for :func:`cubestream.l1.dem.dem_cubes`, which mosaics and
warps what they open onto each cube's 30 m grid: which rasters cover a longitude/latitude box
(:meth:`DemSource.rasters`), and how to open one of them (:meth:`DemSource.open`, ``None`` for a
tile that does not exist, as over the ocean).

============  ==================================================================================
kind          what the location is
============  ==================================================================================
srtm          a folder (or ``s3://``/``http(s)://`` prefix) of 1 x 1 degree SRTM tiles named by
              their south-west corner: ``S02E036.tif``, ``S02E036.hgt`` or ``S02E036.hgt.zip``,
              directly or in an ``srtm/`` sub-folder
copernicus    a folder of Copernicus DEM COGs, ``Copernicus_DSM_COG_10_S02_00_E036_00_DEM.tif``
              (GLO-30; ``_30_`` for GLO-90), directly or each in a folder of the same stem (as
              in the ``copernicus-dem-30m`` bucket)
vrt           one raster of any CRS and resolution: a VRT mosaic, a GeoTIFF
stac          a STAC API (``stac+https://host/path``, collection after ``#``, default
              ``cop-dem-glo-30``) or a local items file (``.json``/``.ndjson``), searched by the
              cubes' bounds; asset ``data``
============  ==================================================================================

:func:`open_dem_source` picks the kind from the location (``kind="auto"``) or takes it as named.
``auto`` never guesses: a ``.vrt``/``.tif`` file (local, or a URL) is one raster, a local
``.json``/``.ndjson`` file a STAC items file, ``stac+...`` a STAC API; a local folder is listed
and must hold tiles of exactly one naming; a remote prefix, which cannot always be listed, is
probed tile by tile under each naming, and the first naming found is kept. An empty source, or
one holding two namings, is an error naming the location and what was looked for.

Pixel grids. SRTM tiles have ``3600 / s + 1`` pixels a side (``s`` arc-seconds, 1 or 3): the
pixel centres lie on the degree lines, so neighbours share their edge row and column. The
Copernicus COGs keep the same centres (the first pixel centre is the tile's north-west corner;
``proj:transform`` in the real ``cop-dem-glo-30`` items starts half a pixel west and north of
the degree lines) but drop the shared east column and south row, so tiles are ``3600 / s``
pixels a side below 50 degrees of latitude; the GeoTIFFs say ``AREA_OR_POINT=Point`` and GDAL
gives the area-convention transform. Both therefore lie on one lattice and mosaic without
resampling; a tool that ignores the point convention would shift them by half a pixel (15 m at
1 arc-second). Above 50 degrees the Copernicus longitude spacing widens (1.5x, 2x, ...): tiles of
two such bands do not share a lattice and are reported as off-grid.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, get_args

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.errors import RasterioIOError

from cubestream.errors import AssetNotFoundError, AssetReadError, SourceKindError
from cubestream.sources.kinds import DemKind

__all__ = [
    "DEFAULT_STAC_COLLECTION",
    "DemKind",
    "DemSource",
    "RasterSource",
    "StacSource",
    "TileFolder",
    "cells_for",
    "copernicus_name",
    "gdal_path",
    "open_dem_source",
    "srtm_name",
]

DEFAULT_STAC_COLLECTION = "cop-dem-glo-30"
STAC_ASSET = "data"
_NOT_FOUND = (
    "No such file",
    "key does not exist",
    "HTTP response code: 404",
    "does not exist in the file system",
)
_SCHEMES = {"s3://": "/vsis3/", "http://": "/vsicurl/http://", "https://": "/vsicurl/https://"}
_SRTM = re.compile(r"[NS]\d{2}[EW]\d{3}")
_COPERNICUS = re.compile(r"Copernicus_DSM_COG_(?P<res>10|30)_[NS]\d{2}_00_[EW]\d{3}_00_DEM")
_RASTER_SUFFIXES = (".vrt", ".tif", ".tiff")
_ITEMS_SUFFIXES = (".json", ".ndjson", ".geojson")

SRTM_PATTERNS = (
    "srtm/{srtm}.tif",
    "{srtm}.tif",
    "srtm/{srtm}.hgt",
    "{srtm}.hgt",
    "srtm/{srtm}.hgt.zip",
    "{srtm}.hgt.zip",
)
"""Where an SRTM tile may lie below its folder, ``{srtm}`` being ``S02E036``."""
COPERNICUS_PATTERNS = tuple(
    pattern.format(res=res)
    for res in ("10", "30")
    for pattern in (
        "Copernicus_DSM_COG_{res}_{{cop}}_DEM/Copernicus_DSM_COG_{res}_{{cop}}_DEM.tif",
        "Copernicus_DSM_COG_{res}_{{cop}}_DEM.tif",
    )
)
"""Where a Copernicus tile may lie below its folder, ``{cop}`` being ``S02_00_E036_00``."""
Bounds = NDArray[np.float64]


# --- names --------------------------------------------------------------------------------------


def srtm_name(lon: int, lat: int) -> str:
    """SRTM name of the 1 x 1 degree cell with south-west corner ``(lon, lat)``: ``S02E036``."""
    return f"{'N' if lat >= 0 else 'S'}{abs(lat):02d}{'E' if lon >= 0 else 'W'}{abs(lon):03d}"


def copernicus_name(lon: int, lat: int, arcsec: int = 1) -> str:
    """Copernicus DEM name of a cell: ``Copernicus_DSM_COG_10_S02_00_E036_00_DEM`` (GLO-30).

    ``arcsec=3`` gives the GLO-90 name (``..._COG_30_...``).
    """
    return f"Copernicus_DSM_COG_{arcsec}0_{_cop_cell(lon, lat)}_DEM"


def _cop_cell(lon: int, lat: int) -> str:
    ns, ew = ("N" if lat >= 0 else "S"), ("E" if lon >= 0 else "W")
    return f"{ns}{abs(lat):02d}_00_{ew}{abs(lon):03d}_00"


def cells_for(bbox: Sequence[float]) -> list[tuple[int, int]]:
    """South-west corners ``(lon, lat)`` of the degree cells meeting a lon/lat bbox.

    South to north, then west to east; a bbox edge on a degree line takes no cell beyond it.
    """
    min_lon, min_lat, max_lon, max_lat = bbox
    lons = range(math.floor(min_lon), max(math.ceil(max_lon), math.floor(min_lon) + 1))
    lats = range(math.floor(min_lat), max(math.ceil(max_lat), math.floor(min_lat) + 1))
    return [(lon, lat) for lat in lats for lon in lons]


def gdal_path(location: str) -> str:
    """GDAL path of a location: ``s3://`` and ``http(s)://`` get ``/vsis3/``, ``/vsicurl/``."""
    for scheme, vsi in _SCHEMES.items():
        if location.startswith(scheme):
            return vsi + location[len(scheme) :]
    return location.removeprefix("file://")


def _join(prefix: str, key: str) -> str:
    return f"{prefix.rstrip('/')}/{key}" if prefix else key


def _open(stack: ExitStack, path: str, what: str) -> Any | None:
    """Open ``path``; ``None`` if it does not exist, an error naming it if it cannot be read."""
    if not path.startswith("/vsi") and not os.path.exists(path):
        return None
    try:
        return stack.enter_context(rasterio.open(path))
    except RasterioIOError as exc:
        if any(text in str(exc) for text in _NOT_FOUND):
            return None
        raise AssetReadError(f"cannot read the {what} {path}: {exc}") from exc


# --- the protocol -------------------------------------------------------------------------------


class DemSource(Protocol):
    """Where elevation rasters are, and how to open them."""

    @property
    def kind(self) -> str:
        """``srtm``, ``copernicus``, ``vrt`` or ``stac``."""

    @property
    def location(self) -> str:
        """What the user pointed at."""

    def rasters(self, bounds: Bounds) -> list[list[str]]:
        """Per lon/lat box ``(min_lon, min_lat, max_lon, max_lat)``, the names to open."""

    def open(self, stack: ExitStack, name: str) -> Any | None:
        """The open raster ``name`` (entered in ``stack``); ``None`` if it does not exist."""

    def where(self, name: str) -> str:
        """Where ``name`` was looked for (for messages)."""


# --- tile folders -------------------------------------------------------------------------------


@dataclass
class TileFolder:
    """A folder of 1 x 1 degree tiles named by their south-west corner (SRTM or Copernicus).

    Attributes
    ----------
    kind : {"srtm", "copernicus", "auto"}
        ``auto`` while a remote prefix is still being probed.
    location : str
        Folder path or ``s3://``/``http(s)://`` prefix.
    patterns : tuple of str
        Candidate keys below ``location`` (``{srtm}``/``{cop}`` filled per cell); the first under
        which a tile is found is kept for all others.
    probing : bool
        Whether the naming is still to be found by probing (a remote prefix).
    """

    kind: str
    location: str
    patterns: tuple[str, ...]
    probing: bool = False
    looked: dict[str, list[str]] = field(default_factory=dict)

    def rasters(self, bounds: Bounds) -> list[list[str]]:
        """Cell names (``S02E036``) meeting each box."""
        return [[srtm_name(*cell) for cell in cells_for(box)] for box in bounds]

    def _path(self, name: str, pattern: str) -> str:
        lat = (1 if name[0] == "N" else -1) * int(name[1:3])
        lon = (1 if name[3] == "E" else -1) * int(name[4:7])
        key = pattern.format(srtm=name, cop=_cop_cell(lon, lat))
        path = gdal_path(_join(self.location, key))
        return f"/vsizip/{path}/{name}.hgt" if key.endswith(".hgt.zip") else path

    def open(self, stack: ExitStack, name: str) -> Any | None:
        """Open the tile of cell ``name`` under the first pattern that has it."""
        tried = self.looked.setdefault(name, [])
        for pattern in self.patterns:
            path = self._path(name, pattern)
            tried.append(path)
            archive = path.removeprefix("/vsizip/").rsplit("/", 1)[0]
            if _local_zip(path) and not os.path.exists(archive):
                continue
            opened = _open(stack, path, "DEM tile")
            if opened is not None:
                self.patterns, self.probing = (pattern,), False
                self.kind = "copernicus" if pattern.startswith("Copernicus") else "srtm"
                return opened
        return None

    def where(self, name: str) -> str:
        """The paths tried for ``name``."""
        return " or ".join(self.looked.get(name) or [self._path(name, self.patterns[0])])


def _local_zip(path: str) -> bool:
    """A ``/vsizip/`` path to a local archive (checked for existence before GDAL opens it)."""
    return path.startswith("/vsizip/") and not path.startswith("/vsizip//vsi")


def _classify(name: str) -> tuple[str, str] | None:
    """The kind and pattern of a folder entry's name, or ``None`` if it is no tile name."""
    for suffix in (".tif", ".hgt", ".hgt.zip"):
        stem = name.removesuffix(suffix)
        if stem != name and _SRTM.fullmatch(stem):
            return "srtm", "{srtm}" + suffix
    match = _COPERNICUS.fullmatch(name.removesuffix(".tif"))
    if match is None:
        return None
    res = match["res"]
    if name.endswith(".tif"):
        return "copernicus", f"Copernicus_DSM_COG_{res}_{{cop}}_DEM.tif"
    return (
        "copernicus",
        f"Copernicus_DSM_COG_{res}_{{cop}}_DEM/Copernicus_DSM_COG_{res}_{{cop}}_DEM.tif",
    )


def _listed(folder: Path) -> dict[tuple[str, str], int]:
    """Tiles per (kind, pattern) in a local folder and its ``srtm/`` sub-folder."""
    found: dict[tuple[str, str], int] = {}
    for sub in ("", "srtm/"):
        here = folder / sub
        if not here.is_dir():
            continue
        for entry in os.scandir(here):
            classified = _classify(entry.name)
            if classified is None:
                continue
            kind, pattern = classified
            if entry.is_dir() != ("/" in pattern):
                continue
            if entry.is_dir() and not (Path(entry.path) / f"{entry.name}.tif").exists():
                continue
            key = (kind, sub + pattern)
            found[key] = found.get(key, 0) + 1
    return found


def _local_folder(location: str, kind: str) -> TileFolder:
    found = _listed(Path(location.removeprefix("file://")))
    if kind != "auto":
        found = {key: n for key, n in found.items() if key[0] == kind}
    if not found:
        wanted = {"srtm": SRTM_PATTERNS, "copernicus": COPERNICUS_PATTERNS}
        patterns = [p for k, ps in wanted.items() if kind in ("auto", k) for p in ps]
        raise AssetNotFoundError(
            f"no DEM tiles in the folder {location}: looked for {', '.join(patterns)}"
            " ({srtm} = S02E036, {cop} = S02_00_E036_00); point --dem at the folder of the tiles"
        )
    if len(found) > 1:
        listed = ", ".join(f"{n} x {pattern}" for (_, pattern), n in sorted(found.items()))
        raise SourceKindError(
            f"the folder {location} holds DEM tiles of several namings ({listed}): keep one, or"
            " point --dem at a sub-folder or a VRT"
        )
    (found_kind, pattern), _ = next(iter(found.items()))
    return TileFolder(kind=found_kind, location=location, patterns=(pattern,))


# --- one raster ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RasterSource:
    """One raster (a VRT mosaic, a GeoTIFF) in any CRS; it covers what it covers."""

    location: str
    kind: str = "vrt"

    def rasters(self, bounds: Bounds) -> list[list[str]]:
        """The raster, for every box."""
        return [[self.location] for _ in bounds]

    def open(self, stack: ExitStack, name: str) -> Any | None:
        """Open the raster; it must exist."""
        opened = _open(stack, gdal_path(name), "DEM raster")
        if opened is None:
            raise AssetNotFoundError(f"the DEM raster {name} does not exist")
        return opened

    def where(self, name: str) -> str:
        """The raster's GDAL path."""
        return gdal_path(name)


# --- STAC ---------------------------------------------------------------------------------------


def _intersects(a: Sequence[float], b: Sequence[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@dataclass
class StacSource:
    """A STAC collection of DEM tiles (``cop-dem-glo-30``), from an API or an items file.

    Attributes
    ----------
    location : str
        ``https://...`` STAC API root, or a local ``.json`` (item or FeatureCollection) or
        ``.ndjson`` items file.
    collection : str
        Collection id.
    asset : str
        Asset key of the elevation raster (``data`` in ``cop-dem-glo-30``).
    """

    location: str
    collection: str = DEFAULT_STAC_COLLECTION
    asset: str = STAC_ASSET
    kind: str = "stac"
    items: list[dict[str, Any]] | None = None

    def _search(self, bbox: Sequence[float]) -> list[dict[str, Any]]:
        if "://" not in self.location or self.location.startswith("file://"):
            return _file_items(Path(self.location.removeprefix("file://")), self.collection)
        from pystac_client import Client

        try:
            search = Client.open(self.location).search(
                collections=[self.collection], bbox=list(bbox), limit=500
            )
            return list(search.items_as_dicts())
        except Exception as exc:
            raise AssetReadError(
                f"STAC search for {self.collection!r} at {self.location} (bbox {list(bbox)})"
                f" failed: {exc}; check the URL and the collection id"
            ) from exc

    def rasters(self, bounds: Bounds) -> list[list[str]]:
        """Hrefs of the ``asset`` of the items meeting each box (one search over them all)."""
        union = (bounds[:, 0].min(), bounds[:, 1].min(), bounds[:, 2].max(), bounds[:, 3].max())
        if self.items is None:
            self.items = self._search(union)
        hrefs = [(_item_bbox(item), _href(item, self.asset, self.location)) for item in self.items]
        return [[href for box2, href in hrefs if _intersects(box, box2)] for box in bounds]

    def open(self, stack: ExitStack, name: str) -> Any | None:
        """Open an asset href."""
        return _open(stack, gdal_path(name), f"DEM asset of {self.collection}")

    def where(self, name: str) -> str:
        """The asset's GDAL path."""
        return gdal_path(name)


def _file_items(path: Path, collection: str) -> list[dict[str, Any]]:
    """The items of ``collection`` in a ``.json`` (item or FeatureCollection) or ``.ndjson``."""
    if not path.is_file():
        raise AssetNotFoundError(f"the STAC items file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".ndjson":
            items = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            document = json.loads(text)
            items = document.get("features", [document])
    except json.JSONDecodeError as exc:
        raise AssetReadError(f"{path} is not STAC JSON: {exc}") from exc
    mine = [item for item in items if item.get("collection", collection) == collection]
    if items and not mine:
        found = sorted({str(item.get("collection")) for item in items})
        raise SourceKindError(
            f"the STAC items file {path} holds no item of collection {collection!r} (only"
            f" {found}); name the collection after '#'"
        )
    return mine


def _item_bbox(item: dict[str, Any]) -> list[float]:
    if "bbox" in item:
        return [float(v) for v in item["bbox"]]
    ring = np.asarray(item["geometry"]["coordinates"][0], dtype=np.float64)
    return [ring[:, 0].min(), ring[:, 1].min(), ring[:, 0].max(), ring[:, 1].max()]


def _href(item: dict[str, Any], asset: str, location: str) -> str:
    """The asset's href, relative hrefs resolved against a local items file."""
    try:
        href = str(item["assets"][asset]["href"])
    except KeyError as exc:
        raise AssetReadError(
            f"the STAC item {item.get('id')} from {location} has no asset {asset!r}"
            f" (assets: {sorted(item.get('assets', {}))})"
        ) from exc
    if "://" in href or href.startswith("/") or "://" in location:
        return href
    return str((Path(location).parent / href).resolve())


# --- picking the kind ---------------------------------------------------------------------------


def open_dem_source(location: str, kind: DemKind = "auto") -> DemSource:
    """The DEM source at ``location``, of ``kind`` or of the kind it shows (module docstring).

    Parameters
    ----------
    location : str
        Folder or prefix of tiles, a raster or VRT, a STAC items file, or ``stac+https://...``
        (``#collection`` optional).
    kind : {"auto", "srtm", "copernicus", "vrt", "stac"}
        The kind, or ``auto`` to read it from ``location``.

    Returns
    -------
    DemSource

    Raises
    ------
    SourceKindError
        If ``kind`` is unknown, or ``location`` is ambiguous or not of the kind named.
    AssetNotFoundError
        If a local folder holds no tile of the kind (all that was looked for is named).
    """
    if kind not in get_args(DemKind):
        raise SourceKindError(f"DEM source kind {kind!r} unknown: use one of {get_args(DemKind)}")
    if location.startswith("stac+") or kind == "stac":
        url, _, collection = location.removeprefix("stac+").partition("#")
        return StacSource(location=url, collection=collection or DEFAULT_STAC_COLLECTION)
    remote = "://" in location and not location.startswith("file://")
    local = Path(location.removeprefix("file://"))
    items = Path(location.removeprefix("file://").partition("#")[0])
    if kind == "vrt" or (kind == "auto" and not remote and (local.is_file() or items.is_file())):
        return _single_file(location, items if items.is_file() else local, kind, remote)
    if kind == "auto" and remote and local.name.lower().endswith(_RASTER_SUFFIXES):
        return RasterSource(location=location)
    if remote:
        patterns = {"srtm": SRTM_PATTERNS, "copernicus": COPERNICUS_PATTERNS}
        chosen = [p for k, ps in patterns.items() if kind in ("auto", k) for p in ps]
        return TileFolder(kind=kind, location=location, patterns=tuple(chosen), probing=True)
    if not local.is_dir():
        raise AssetNotFoundError(f"the DEM source {location} is neither a file nor a folder")
    return _local_folder(location, kind)


def _single_file(location: str, local: Path, kind: str, remote: bool) -> DemSource:
    name = local.name.lower()
    if kind == "auto" and name.endswith(_ITEMS_SUFFIXES):
        url, _, collection = location.partition("#")
        return StacSource(location=url, collection=collection or DEFAULT_STAC_COLLECTION)
    if kind == "auto" and not name.endswith(_RASTER_SUFFIXES):
        raise SourceKindError(
            f"the DEM source {location} is a file of no kind known by its name (.vrt, .tif,"
            " .json, .ndjson); name the kind with --dem-source vrt or stac"
        )
    if not remote and not local.is_file():
        raise AssetNotFoundError(f"the DEM raster {location} does not exist")
    return RasterSource(location=location)
