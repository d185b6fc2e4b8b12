"""Find a tile's Sentinel-2 items: a STAC API through pystac-client, or a local items file.

A bbox search also returns the items of neighbouring tiles (they overlap by 9.8 km), so the
results are filtered on the item's MGRS tile; the cloud-cover limit is applied on the client,
since not every STAC API implements the ``query`` or ``filter`` extensions.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cubestream.errors import StacSearchError
from cubestream.l1.config import RetryPolicy

__all__ = ["item_tile", "search_items"]


def item_tile(item: dict[str, Any]) -> str:
    """The MGRS tile of an item (``s2:tile_id``, ``grid:code`` or the ``mgrs:*`` triple)."""
    props = item.get("properties", {})
    if "s2:tile_id" in props:
        return str(props["s2:tile_id"])
    if str(props.get("grid:code", "")).startswith("MGRS-"):
        return str(props["grid:code"]).removeprefix("MGRS-")
    if "mgrs:utm_zone" in props:
        zone, band, square = (
            props["mgrs:utm_zone"],
            props["mgrs:latitude_band"],
            props["mgrs:grid_square"],
        )
        return f"{int(zone):02d}{band}{square}"
    raise StacSearchError(f"item {item.get('id')!r} names no MGRS tile (s2:tile_id, grid:code)")


def _retryable(exc: BaseException) -> bool:
    text = str(exc)
    return any(code in text for code in ("429", "500", "502", "503", "504", "timed out")) or (
        isinstance(exc, ConnectionError | TimeoutError | OSError)
    )


def _api_items(
    url: str,
    collection: str,
    bbox: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    policy: RetryPolicy,
) -> list[dict[str, Any]]:
    from pystac_client import Client

    def run() -> list[dict[str, Any]]:
        client = Client.open(url)
        search = client.search(
            collections=[collection], bbox=bbox, datetime=f"{start}/{end}", limit=500
        )
        return list(search.items_as_dicts())

    try:
        return policy.call(run, _retryable, f"STAC search at {url}")
    except Exception as exc:
        raise StacSearchError(
            f"STAC search at {url} (collection {collection!r}, bbox {bbox}, {start}/{end}) "
            f"failed: {exc}; check the URL and that the API is up"
        ) from exc


def _file_items(path: Path, start: dt.date, end: dt.date) -> list[dict[str, Any]]:
    if not path.exists():
        raise StacSearchError(f"STAC items file {path} does not exist")
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise StacSearchError(f"{path}:{number}: not a JSON STAC item ({exc})") from exc
        day = dt.date.fromisoformat(str(item["properties"]["datetime"])[:10])
        if start <= day <= end:
            items.append(item)
    return items


def search_items(
    source: str,
    tile_id: str,
    bbox: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    *,
    collection: str = "sentinel-2-l2a",
    max_cloud_cover: float | None = None,
    policy: RetryPolicy | None = None,
) -> list[dict[str, Any]]:
    """The items of one tile between ``start`` and ``end``, sorted by datetime then id.

    Parameters
    ----------
    source : str
        A STAC API URL (``http(s)://``) or a local ``.json``/``.ndjson`` items file.
    tile_id : str
        MGRS tile; items of other tiles are dropped.
    bbox : tuple of float
        WGS84 bounds to search (the tile's boxes).
    start, end : datetime.date
        Inclusive time range.
    collection : str
        Collection id.
    max_cloud_cover : float, optional
        Drop items with a larger ``eo:cloud_cover``.
    policy : RetryPolicy, optional
        Retries for the API (default: :meth:`RetryPolicy.from_env`).
    """
    if source.startswith(("http://", "https://")):
        items = _api_items(source, collection, bbox, start, end, policy or RetryPolicy.from_env())
    else:
        items = _file_items(Path(source), start, end)
    items = [i for i in items if item_tile(i) == tile_id]
    if max_cloud_cover is not None:
        items = [i for i in items if i["properties"].get("eo:cloud_cover", 0) <= max_cloud_cover]
    return sorted(items, key=lambda i: (i["properties"]["datetime"], i["id"]))
