"""The replica's directory layout: :mod:`cubestream.layout`, under its historical name."""

from cubestream.layout import (
    BUCKET,
    CATALOGUES_DIR,
    COLLECTION,
    COLLECTION_FILE,
    ERA5_KEY,
    IMAGED_FILE,
    ITEMS_FILE,
    OBJECTS_DIR,
    SMAP_VERSIONS,
    catalogue_files,
    item_id,
    s2_key,
    smap_key,
    srtm_key,
    strata_key,
)

__all__ = [
    "BUCKET",
    "CATALOGUES_DIR",
    "COLLECTION",
    "COLLECTION_FILE",
    "ERA5_KEY",
    "IMAGED_FILE",
    "ITEMS_FILE",
    "OBJECTS_DIR",
    "SMAP_VERSIONS",
    "catalogue_files",
    "item_id",
    "s2_key",
    "smap_key",
    "srtm_key",
    "strata_key",
]
