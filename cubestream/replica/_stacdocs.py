"""Check a replica's STAC documents, and write the copy whose assets point at the served bucket.

Private helper of :mod:`cubestream.replica.serve`: everything here is read before any server
starts, so a corrupt replica fails fast with the offending file, line and item named.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cubestream.errors import ReplicaNotFoundError, StacItemError
from cubestream.replica.layout import COLLECTION_FILE, ITEMS_FILE, OBJECTS_DIR, catalogue_files

__all__ = ["StacDocs", "read_stac", "write_served_stac"]


@dataclass(frozen=True, kw_only=True)
class StacDocs:
    """The checked collection and items of a replica.

    Attributes
    ----------
    catalogue : str
        Whose item schema the documents follow (``earth-search``, ``cdse``, ...).
    collection : dict
        The collection document, as read (its id is the catalogue's collection id).
    items : list of dict
        The items, in file order, as read.
    keys : list of dict of str to str
        Per item, the object key of each asset (its path below ``objects/``).
    """

    catalogue: str
    collection: dict[str, Any]
    items: list[dict[str, Any]]
    keys: list[dict[str, str]]

    @property
    def collection_id(self) -> str:
        """The id of the served collection."""
        return str(self.collection["id"])


class _DefectError(Exception):
    """What is wrong with one document; turned into a :class:`StacItemError` by the caller."""


def _fix_hint(root: Path) -> str:
    return f"recreate the replica with `cubestream replica create {root} --overwrite`"


def read_stac(root: Path, catalogue: str | None = None) -> StacDocs:
    """Read and check a replica's collection and every line of its items file.

    Parameters
    ----------
    root : Path
        The replica directory.
    catalogue : str, optional
        Read ``stac/catalogues/<catalogue>.ndjson`` and its collection instead of the spec's
        catalogue (``stac/items.ndjson``, ``stac/collection.json``).

    Returns
    -------
    StacDocs
        The collection, the items and the object key of every asset.

    Raises
    ------
    ReplicaNotFoundError
        If a STAC file or ``objects/`` is missing.
    StacItemError
        If a document is corrupt: the message names the file, the line, the item id when known,
        what is wrong and what to do.
    """
    from cubestream.replica.catalogues import COLLECTIONS, check_catalogue
    from cubestream.replica.spec import load_spec

    spec_catalogue = load_spec(root).catalogue
    if catalogue is None or catalogue == spec_catalogue:
        name, items_file, collection_file = (
            spec_catalogue,
            root / ITEMS_FILE,
            root / COLLECTION_FILE,
        )
    else:
        name = check_catalogue(catalogue)
        relative_items, _, relative_collection = catalogue_files(name)
        items_file, collection_file = root / relative_items, root / relative_collection
    expected = COLLECTIONS[name]
    collection = _read_collection(root, collection_file, expected)
    objects = root / OBJECTS_DIR
    for path in (items_file, objects):
        if not path.exists():
            raise ReplicaNotFoundError(f"{path} is missing: {_fix_hint(root)}")
    items: list[dict[str, Any]] = []
    keys: list[dict[str, str]] = []
    first_line: dict[str, int] = {}
    objects = objects.resolve()
    with items_file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item, item_keys = _read_item(
                root, items_file, number, line, objects, (first_line, expected)
            )
            items.append(item)
            keys.append(item_keys)
    if not items:
        raise StacItemError(f"{items_file} holds no items: {_fix_hint(root)}")
    return StacDocs(catalogue=name, collection=collection, items=items, keys=keys)


def _read_collection(root: Path, path: Path, expected: str) -> dict[str, Any]:
    if not path.is_file():
        raise ReplicaNotFoundError(f"{path} is missing: {_fix_hint(root)}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StacItemError(f"{path} is not valid JSON ({exc}): {_fix_hint(root)}") from exc
    if not isinstance(data, dict) or data.get("type") != "Collection":
        raise StacItemError(f"{path} is not a STAC Collection: {_fix_hint(root)}")
    if data.get("id") != expected:
        raise StacItemError(
            f"{path} holds collection {data.get('id')!r}, not {expected!r}: {_fix_hint(root)}"
        )
    return data


def _read_item(
    root: Path,
    items_file: Path,
    number: int,
    line: str,
    objects: Path,
    seen: tuple[dict[str, int], str],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Parse and check one line of the items file; return the item and its asset keys.

    ``seen`` holds the first line of every item id so far and the expected collection id.
    """
    first_line, collection = seen
    item_id: object = None
    try:
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _DefectError(f"the line is not valid JSON ({exc})") from exc
        if not isinstance(item, dict):
            raise _DefectError("the line is not a JSON object")
        item_id = item.get("id")
        _check_item(item, first_line, collection)
        keys = _asset_keys(item, objects, items_file.parent)
    except _DefectError as problem:
        named = f" (item {item_id!r})" if isinstance(item_id, str) else ""
        raise StacItemError(
            f"{items_file} line {number}{named}: {problem}; {_fix_hint(root)}"
        ) from problem
    first_line[item["id"]] = number
    return item, keys


def _check_item(item: dict[str, Any], first_line: dict[str, int], collection: str) -> None:
    """Raise :class:`_DefectError` for the first required member that is missing or malformed."""
    if item.get("type") != "Feature":
        raise _DefectError(f"type is {item.get('type')!r}, not 'Feature'")
    item_id = item.get("id")
    if not isinstance(item_id, str) or not item_id:
        raise _DefectError("the item has no id")
    if item_id in first_line:
        raise _DefectError(f"duplicate item id, first seen on line {first_line[item_id]}")
    if item.get("collection") != collection:
        raise _DefectError(f"collection is {item.get('collection')!r}, not {collection!r}")
    geometry = item.get("geometry")
    if not isinstance(geometry, dict) or "type" not in geometry or "coordinates" not in geometry:
        raise _DefectError("the geometry is missing or not a GeoJSON geometry")
    bbox = item.get("bbox")
    if not (
        isinstance(bbox, list)
        and len(bbox) in (4, 6)
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in bbox)
    ):
        raise _DefectError(f"bbox {bbox!r} is not a list of 4 (or 6) numbers")
    properties = item.get("properties")
    if not isinstance(properties, dict):
        raise _DefectError("the item has no properties")
    _check_datetime(properties.get("datetime"))
    assets = item.get("assets")
    if not isinstance(assets, dict) or not assets:
        raise _DefectError("the item has no assets")


def _check_datetime(value: object) -> None:
    if not isinstance(value, str):
        raise _DefectError(f"properties.datetime is {value!r}, not an RFC 3339 string")
    try:
        dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise _DefectError(f"properties.datetime {value!r} is not RFC 3339") from exc


def _asset_keys(item: dict[str, Any], objects: Path, base: Path) -> dict[str, str]:
    """Object key of every asset, checking that each href is a local file below ``objects``."""
    keys = {}
    for name, asset in item["assets"].items():
        href = asset.get("href") if isinstance(asset, dict) else None
        if not isinstance(href, str) or not href:
            raise _DefectError(f"asset {name!r} has no href")
        keys[name] = _object_key(name, href, objects, base)
    return keys


def _object_key(name: str, href: str, objects: Path, base: Path) -> str:
    parsed = urllib.parse.urlparse(href)
    if parsed.scheme == "file":
        href = urllib.parse.unquote(parsed.path)
    elif parsed.scheme and len(parsed.scheme) > 1:  # a one-letter "scheme" is a Windows drive
        raise _DefectError(f"asset {name!r} href {href!r} is not a local path")
    path = Path(href)
    path = (path if path.is_absolute() else base / path).resolve()
    if not path.is_relative_to(objects):
        raise _DefectError(f"asset {name!r} href {href!r} is not below {objects}")
    if not path.is_file():
        raise _DefectError(f"asset {name!r} file {href} does not exist")
    return path.relative_to(objects).as_posix()


def write_served_stac(docs: StacDocs, out_dir: Path, *, http_base: str, bucket: str) -> Path:
    """Write the collection and the items with hrefs pointing at the served bucket.

    Each asset's ``href`` becomes ``{http_base}/{bucket}/{key}`` (a plain HTTP URL of the object,
    as in Earth-search) and gains ``alternate: {"s3": {"href": "s3://{bucket}/{key}"}}``; all
    else is kept. Items of a catalogue whose hrefs are ``s3://`` URLs (its ``ReplicaSchema``'s
    ``s3_hrefs``: CDSE) are served its way: ``href`` is the ``s3://`` URL and the HTTP URL goes in
    their ``alternate.https``.

    Parameters
    ----------
    docs : StacDocs
        The checked documents.
    out_dir : Path
        Directory to write ``collection.json`` and ``items.ndjson`` into.
    http_base : str
        Base URL of the S3 API, for example ``http://127.0.0.1:9000``.
    bucket : str
        Bucket the objects are served from.

    Returns
    -------
    Path
        The items file; the collection file is beside it.
    """
    from cubestream.replica.catalogues import replica_schema

    s3_first = replica_schema(docs.catalogue).s3_hrefs
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "collection.json").write_text(json.dumps(docs.collection), encoding="utf-8")
    items_file = out_dir / "items.ndjson"
    with items_file.open("w", encoding="utf-8") as out:
        for item, keys in zip(docs.items, docs.keys, strict=True):
            served = _served_item(item, keys, http_base, bucket, s3_first=s3_first)
            out.write(json.dumps(served) + "\n")
    return items_file


def _served_item(
    item: dict[str, Any], keys: dict[str, str], http_base: str, bucket: str, *, s3_first: bool
) -> dict[str, Any]:
    assets = {}
    for name, asset in item["assets"].items():
        key = keys[name]
        s3 = f"s3://{bucket}/{key}"
        http = f"{http_base}/{bucket}/{urllib.parse.quote(key)}"
        alternate = dict(asset.get("alternate", {}))
        if s3_first:
            alternate["https"] = {**alternate.get("https", {}), "href": http}
            assets[name] = {**asset, "href": s3, "alternate": alternate}
        else:
            alternate["s3"] = {"href": s3}
            assets[name] = {**asset, "href": http, "alternate": alternate}
    return {**item, "assets": assets}
