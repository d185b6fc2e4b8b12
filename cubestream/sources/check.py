"""``cubestream stac check SOURCE``: what each Sentinel-2 item of a catalogue resolves to.

Run before launching a large build: for each item one JSON line with its ``id``, ``tile``,
``date``, ``provider``, the ``bands`` (ESA band name -> href of ``B02 B03 B04 B05 B06 B07 B8A B11
B12 SCL``), ``scale``, ``offset`` (DN to subtract, as the metadata states it) and the
``offset_reason``. An item that cannot be read gives a line with its ``id`` and the ``error``
(which field is missing or disagrees, and what to do); the summary on standard error counts
them, and the command exits 1 when any item failed. The offset printed is the metadata's: the
build verifies it on the pixels (``cubestream l1 --offset verify``).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, TextIO

from cubestream.errors import CubestreamError
from cubestream.sources.sentinel2 import BANDS, SCL, Provider, S2Item, to_s2_item
from cubestream.sources.stac import search_raw

__all__ = ["check_items", "item_line"]


def item_line(item: S2Item) -> dict[str, Any]:
    """The JSON line of one readable item."""
    return {
        "id": item.id,
        "tile": item.tile,
        "date": item.day.isoformat(),
        "provider": item.provider,
        "collection": item.collection,
        "bands": {band: item.hrefs[band] for band in (*BANDS, SCL)},
        "scale": item.scale,
        "offset": item.offset.dn,
        "offset_reason": item.offset.reason,
        "baseline": item.baseline,
    }


def check_items(
    source: str,
    *,
    bbox: tuple[float, float, float, float] | None,
    start: dt.date,
    end: dt.date,
    collection: str = "sentinel-2-l2a",
    provider: Provider | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Print one JSON line per item of ``source``; return the number of items that failed."""
    raw = search_raw(source, bbox, start, end, collection=collection)
    failed = 0
    providers: dict[str, int] = {}
    for doc in raw:
        try:
            item = to_s2_item(doc, provider)
        except CubestreamError as exc:
            failed += 1
            out.write(json.dumps({"id": doc.get("id"), "error": str(exc)}) + "\n")
            continue
        providers[item.provider] = providers.get(item.provider, 0) + 1
        out.write(json.dumps(item_line(item)) + "\n")
    summary = f"{len(raw)} items checked, {failed} failed; providers {providers}"
    if not raw:
        summary += " (no item in the time range and bbox: check --start/--end/--bbox)"
    print(f"cubestream stac check: {summary}", file=sys.stderr)
    return failed
