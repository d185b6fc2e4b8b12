"""Where each part of a world lives, on disk and as object keys in the bucket.

A world directory (the local replica, or a copy of the archives on a parallel file system) is a
contract shared by the replica that writes it, the sampler and the pipeline that read it; it
lives here, outside :mod:`cubestream.replica`, so readers do not import the replica. A world
directory holds::

    replica.json                  the spec and the manifest; written last (marks a complete replica)
    objects/<key>                 every object of the bucket, the key being the path below objects/
        sentinel-2-l2a/<zone>/<band>/<square>/<yyyy>/<m>/<item id>/<asset>.tif   (Earth-search)
        smap/SPL4SMGP.007/<yyyy.mm.dd>/SMAP_L4_SM_gph_<yyyymmddThhmmss>_Vv7032_001.h5 (NSIDC;
            version 8: SPL4SMGP.008/.../..._Vv8010_001.h5; the flat layout has no day folders)
        era5/era5.zarr/...        ERA5 on a regular latitude/longitude grid
        srtm/<S02E036>.tif        SRTM 1 x 1 degree COGs, named by their south-west corner
        strata/<name>.tif         climate zones, land cover, geomorphons (COGs in EPSG:4326)
    stac/collection.json          the Sentinel-2 collection of the spec's catalogue
    stac/items.ndjson             one STAC item per line, in the item schema of the spec's
                                  catalogue (mislabels included); asset hrefs are local paths
    stac/catalogues/<name>.ndjson           the items in each catalogue's schema, mislabels and all
    stac/catalogues/<name>.truth.ndjson     the same with every offset label correct
    stac/catalogues/<name>.collection.json  that catalogue's collection
    imaged.geojson                the imaged window of each tile (WGS84): where minicubes have data
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

__all__ = [
    "BUCKET",
    "COLLECTION",
    "CATALOGUES_DIR",
    "COLLECTION_FILE",
    "ERA5_KEY",
    "IMAGED_FILE",
    "ITEMS_FILE",
    "SMAP_VERSIONS",
    "OBJECTS_DIR",
    "catalogue_files",
    "item_id",
    "s2_key",
    "smap_key",
    "srtm_key",
    "strata_key",
]

BUCKET = "cubestream-replica"
"""The bucket a served world's objects are in (``cubestream replica serve``)."""
COLLECTION = "sentinel-2-l2a"
OBJECTS_DIR = "objects"
COLLECTION_FILE = Path("stac") / "collection.json"
ITEMS_FILE = Path("stac") / "items.ndjson"
CATALOGUES_DIR = Path("stac") / "catalogues"
IMAGED_FILE = Path("imaged.geojson")
ERA5_KEY = "era5/era5.zarr"
SMAP_VERSIONS: dict[int, tuple[str, str]] = {
    7: ("SPL4SMGP.007", "Vv7032"),
    8: ("SPL4SMGP.008", "Vv8010"),
}
"""Product folder and science version id of the SPL4SMGP versions the replica writes."""


def catalogue_files(name: str) -> tuple[Path, Path, Path]:
    """Items, correctly labelled items and collection files of catalogue ``name``."""
    base = CATALOGUES_DIR / name
    return (
        base.with_name(f"{name}.ndjson"),
        base.with_name(f"{name}.truth.ndjson"),
        base.with_name(f"{name}.collection.json"),
    )


def item_id(satellite: str, tile_id: str, day: dt.date, sequence: int) -> str:
    """Earth-search item id, for example ``S2B_37MBU_20220105_0_L2A``."""
    return f"{satellite}_{tile_id}_{day:%Y%m%d}_{sequence}_L2A"


def s2_key(tile_id: str, day: dt.date, item: str, asset: str) -> str:
    """Object key of one Sentinel-2 asset, laid out as in Earth-search's bucket."""
    zone, band, square = tile_id[:2], tile_id[2], tile_id[3:]
    return f"{COLLECTION}/{int(zone)}/{band}/{square}/{day.year}/{day.month}/{item}/{asset}.tif"


def smap_key(start: dt.datetime, version: int = 7, layout: Literal["days", "flat"] = "days") -> str:
    """Object key of the SMAP L4 SPL4SMGP granule whose 3-hour average starts at ``start``.

    The file name carries the centre of the averaging period (01:30, 04:30, ... 22:30 UTC) and
    the science version id of product ``version`` (:data:`SMAP_VERSIONS`); ``layout="days"``
    puts it in NSIDC's day folder, ``"flat"`` directly in the product folder.
    """
    product, science = SMAP_VERSIONS[version]
    centre = start + dt.timedelta(minutes=90)
    name = f"SMAP_L4_SM_gph_{centre:%Y%m%dT%H%M%S}_{science}_001.h5"
    folder = f"smap/{product}" if layout == "flat" else f"smap/{product}/{centre:%Y.%m.%d}"
    return f"{folder}/{name}"


def srtm_key(lon: int, lat: int) -> str:
    """Object key of the SRTM 1 x 1 degree COG with south-west corner ``(lon, lat)``."""
    ns = "N" if lat >= 0 else "S"
    ew = "E" if lon >= 0 else "W"
    return f"srtm/{ns}{abs(lat):02d}{ew}{abs(lon):03d}.tif"


def strata_key(name: str) -> str:
    """Object key of a static strata raster (``climate``, ``landcover``, ``geomorphons``)."""
    return f"strata/{name}.tif"
