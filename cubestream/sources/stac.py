"""Find a tile's Sentinel-2 items: a STAC API through pystac-client, or a local items file.

A bbox search also returns the items of neighbouring tiles (they overlap by 9.8 km), so the
results are read by their provider's adapter (:mod:`cubestream.sources.sentinel2`) and kept when
their MGRS tile is the one asked for; the cloud-cover limit is applied on the client, since not
every STAC API implements the ``query`` or ``filter`` extensions.

An items file is newline-delimited JSON (one item a line), a FeatureCollection, a single item or
a JSON list of items, as the catalogues' clients save them.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from cubestream.errors import StacSearchError
from cubestream.sources.config import RetryPolicy
from cubestream.sources.sentinel2 import Provider, S2Item, names_tile, to_s2_item

__all__ = ["read_items_file", "search_items", "search_raw"]


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


def read_items_file(path: Path) -> list[dict[str, Any]]:
    """Every item of a local items file (ND-JSON, FeatureCollection, one item or a list).

    Raises
    ------
    StacSearchError
        If the file is missing or a line or document is not a JSON STAC item; the message names
        the file and the line.
    """
    if not path.exists():
        raise StacSearchError(f"STAC items file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and whole.get("type") == "FeatureCollection":
        docs = list(whole.get("features") or [])
    elif isinstance(whole, dict):
        docs = [whole]
    elif isinstance(whole, list):
        docs = whole
    else:
        docs = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise StacSearchError(f"{path}:{number}: not a JSON STAC item ({exc})") from exc
    for number, doc in enumerate(docs, start=1):
        if not isinstance(doc, dict) or doc.get("type") != "Feature":
            raise StacSearchError(
                f"{path}: document {number} is not a STAC item (type 'Feature'); "
                "an items file holds items, one per line, or a FeatureCollection"
            )
    return docs


def _in_range(item: dict[str, Any], start: dt.date, end: dt.date) -> bool:
    when = str((item.get("properties") or {}).get("datetime") or "")
    try:
        day = dt.date.fromisoformat(when[:10])
    except ValueError as exc:
        raise StacSearchError(
            f"STAC item {item.get('id')!r} has no valid properties.datetime ({when!r})"
        ) from exc
    return start <= day <= end


def search_raw(
    source: str,
    bbox: tuple[float, float, float, float] | None,
    start: dt.date,
    end: dt.date,
    *,
    collection: str = "sentinel-2-l2a",
    policy: RetryPolicy | None = None,
) -> list[dict[str, Any]]:
    """The items of ``source`` in the time range (and bbox, for an API), as served."""
    if source.startswith(("http://", "https://")):
        if bbox is None:
            raise StacSearchError(f"searching the STAC API {source} needs a bbox")
        policy = policy or RetryPolicy.from_env()
        return _api_items(source, collection, bbox, start, end, policy)
    return [i for i in read_items_file(Path(source)) if _in_range(i, start, end)]


def search_items(
    source: str,
    tile_id: str,
    bbox: tuple[float, float, float, float],
    start: dt.date,
    end: dt.date,
    *,
    collection: str = "sentinel-2-l2a",
    provider: Provider | None = None,
    max_cloud_cover: float | None = None,
    policy: RetryPolicy | None = None,
) -> list[S2Item]:
    """The items of one tile between ``start`` and ``end``, sorted by datetime then id.

    Parameters
    ----------
    source : str
        A STAC API URL (``http(s)://``) or a local items file.
    tile_id : str
        MGRS tile; items of other tiles are dropped.
    bbox : tuple of float
        WGS84 bounds to search (the tile's boxes).
    start, end : datetime.date
        Inclusive time range.
    collection : str
        Collection id.
    provider : Provider, optional
        The catalogue's schema; detected per item by default.
    max_cloud_cover : float, optional
        Drop items with a larger ``eo:cloud_cover``.
    policy : RetryPolicy, optional
        Retries for the API (default: :meth:`RetryPolicy.from_env`).

    Raises
    ------
    ItemSchemaError, ProviderError
        If an item of the search cannot be read (the message names it).
    """
    raw = search_raw(source, bbox, start, end, collection=collection, policy=policy)
    items = [to_s2_item(i, provider) for i in raw if names_tile(i, tile_id)]
    if max_cloud_cover is not None:
        items = [i for i in items if (i.cloud_cover or 0.0) <= max_cloud_cover]
    return sorted(items, key=lambda i: (i.datetime, i.id))
