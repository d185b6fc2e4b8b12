"""Readers of the real archives, one module per kind of input.

Each module turns what a provider serves (STAC items, files, stores) into the one form the
level-1 build reads, and says clearly which field of which item or file is missing when it cannot:

- :mod:`.stac`: find Sentinel-2 items, through a STAC API or in an items file;
- :mod:`.providers`: the Sentinel-2 L2A catalogues, one module each, registered by name;
- :mod:`.sentinel2`: an item of any registered catalogue as the one form the build reads;
- :mod:`.offsets`: the reflectance offset of each item, from metadata and verified on pixels;
- :mod:`.check`: ``cubestream stac check``, the report of what a catalogue's items resolve to;
- :mod:`.dem`: elevation from SRTM or Copernicus DEM tiles, one raster or VRT, or a STAC collection;
- :mod:`.smap`: SMAP L4 granules (V7, V8) in NSIDC day folders or one flat folder;
- :mod:`.era5`: ERA5 in today's Zarr layout, ARCO-ERA5, new-CDS NetCDF or WeatherBench2;
- :mod:`.config`: the runtime knobs of reading (GDAL options, retries) in one place.

Their entry points are re-exported here (imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cubestream._lazy import lazy_attributes

if TYPE_CHECKING:
    from cubestream.sources.check import check_items
    from cubestream.sources.providers import PROVIDERS, Catalogue, get_provider
    from cubestream.sources.sentinel2 import detect_provider
    from cubestream.sources.smap import find_granules
    from cubestream.sources.stac import read_items_file, search_items

__all__ = [
    "PROVIDERS",
    "Catalogue",
    "check_items",
    "detect_provider",
    "find_granules",
    "get_provider",
    "read_items_file",
    "search_items",
]

_WHERE = {
    "search_items": "stac",
    "read_items_file": "stac",
    "PROVIDERS": "providers",
    "Catalogue": "providers",
    "get_provider": "providers",
    "detect_provider": "sentinel2",
    "check_items": "check",
    "find_granules": "smap",
}

__getattr__ = lazy_attributes(__name__, _WHERE)
