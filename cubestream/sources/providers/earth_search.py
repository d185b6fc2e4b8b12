"""Earth Search v1 (Element84) ``sentinel-2-l2a``: common-name asset keys, a harmonisation flag.

Asset keys ``blue`` ... ``swir22``, ``scl``; the tile in ``grid:code`` and ``mgrs:*``
(``s2:tile_id`` holds the per-scene PDI granule id on its newer items). Its items are recognised
by those keys together with ``earthsearch:*`` properties, ``sentinel-cogs`` hrefs or the
``sentinel-2-l2a`` collection id. The offset: ``earthsearch:boa_offset_applied`` (or the older
``sentinel:boa_offset_applied``) is the metadata's word where present (true: the pixels were
harmonised, and the -0.1 still in ``raster:bands`` is wrong, as Element84 said in
earth-search#9); else the processing baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cubestream.sources.providers.base import (
    Catalogue,
    MetadataOffset,
    ReplicaSchema,
    baseline_offset,
    has_assets,
    raster_bands_or_baseline,
)

__all__ = ["COMMON_NAME_KEYS", "EARTH_SEARCH"]

COMMON_NAME_KEYS = {
    "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
    "B07": "rededge3", "B8A": "nir08", "B11": "swir16", "B12": "swir22", "SCL": "scl",
}  # fmt: skip
"""ESA band name -> Earth Search asset key (v1 and Collection 1)."""
C1_COLLECTION = "sentinel-2-c1-l2a"
"""Earth Search Collection 1's collection id, whose items this adapter leaves to its own."""

_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
"""Earth Search's harmonisation flag (``sentinel:`` in items of its first v1 pipeline)."""


def _recognise(item: Mapping[str, Any]) -> str | None:
    collection = str(item.get("collection", ""))
    if collection == C1_COLLECTION or not has_assets(item, "blue", "scl"):
        return None
    props = item.get("properties") or {}
    assets = item.get("assets") or {}
    if any(str(k).startswith("earthsearch:") for k in props):
        return "asset keys blue and scl with earthsearch:* properties"
    if any(
        "sentinel-cogs" in str(a.get("href", "")) for a in assets.values() if isinstance(a, dict)
    ):
        return "asset keys blue and scl with sentinel-cogs hrefs"
    if collection == "sentinel-2-l2a":
        return "asset keys blue and scl in collection sentinel-2-l2a"
    return None


def _offset(
    item: Mapping[str, Any], baseline: str | None, blue: Mapping[str, Any]
) -> MetadataOffset:
    props = item.get("properties") or {}
    flag = next((key for key in _FLAGS if key in props), None)
    if flag is None:
        return raster_bands_or_baseline(item, baseline, blue)
    if props[flag] is True:
        return MetadataOffset(dn=0, reason=f"{flag} true (pixels harmonised)")
    return baseline_offset(baseline, f"{flag} false, ")


EARTH_SEARCH = Catalogue(
    name="earth-search",
    title="Earth Search v1",
    collection="sentinel-2-l2a",
    asset_keys=COMMON_NAME_KEYS,
    recognise=_recognise,
    metadata_offset=_offset,
    replica=ReplicaSchema(
        writer="cubestream.replica._catalogue_schemas:earth_search", mislabellable=True
    ),
)
