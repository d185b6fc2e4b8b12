"""Earth Search Collection 1 (Element84) ``sentinel-2-c1-l2a``: recognised by its collection id.

Asset keys as Earth Search v1 (``blue`` ... ``scl``), STAC 1.1, the tile in ``grid:code`` and
``mgrs:*``, no harmonisation flag: the offset is the blue asset's ``raster:bands`` offset, else
the processing baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cubestream.sources.providers.base import Catalogue, ReplicaSchema
from cubestream.sources.providers.earth_search import C1_COLLECTION, COMMON_NAME_KEYS

__all__ = ["EARTH_SEARCH_C1"]


def _recognise(item: Mapping[str, Any]) -> str | None:
    if str(item.get("collection", "")) == C1_COLLECTION:
        return f"collection {C1_COLLECTION}"
    return None


EARTH_SEARCH_C1 = Catalogue(
    name="earth-search-c1",
    title="Earth Search Collection 1",
    collection=C1_COLLECTION,
    asset_keys=COMMON_NAME_KEYS,
    recognise=_recognise,
    replica=ReplicaSchema(
        writer="cubestream.replica._catalogue_schemas:earth_search_c1", mislabellable=True
    ),
)
