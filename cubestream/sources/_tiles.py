"""The MGRS tile of a Sentinel-2 item, from every field that states it, checked.

``grid:code``, ``mgrs:*`` and ``s2:mgrs_tile`` name the tile; ``s2:tile_id``, ``s2:granule_id``,
``s2:product_uri`` and the item id may hold it inside a PDI name (``..._T20EPT_N05.11``).
``s2:tile_id`` is never read as the tile itself: on real Earth Search items it is the per-scene
PDI granule id. The tile found is checked against the item's ``proj:epsg``/``proj:code`` and its
footprint on the official grid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cubestream.errors import ItemSchemaError

__all__ = ["check_epsg", "check_footprint", "item_tile", "names_tile"]

_TILE = re.compile(r"^\d{2}[C-HJ-NP-X][A-HJ-NP-Z]{2}$")
_TILE_IN_ID = re.compile(r"_T(\d{2}[C-HJ-NP-X][A-HJ-NP-Z]{2})(?:_|$)")


def _fail(item: Mapping[str, Any], what: str, hint: str) -> ItemSchemaError:
    return ItemSchemaError(f"STAC item {item.get('id')!r}: {what}; {hint}")


def _tile_statements(item: Mapping[str, Any]) -> dict[str, str]:
    """Every place the item names its MGRS tile, and the tile each gives."""
    props = item.get("properties") or {}
    out: dict[str, str] = {}
    code = str(props.get("grid:code", ""))
    if code.startswith("MGRS-"):
        out["grid:code"] = code.removeprefix("MGRS-")
    if "mgrs:utm_zone" in props:
        zone, band, square = (
            props.get("mgrs:utm_zone"),
            props.get("mgrs:latitude_band"),
            props.get("mgrs:grid_square"),
        )
        out["mgrs:*"] = f"{int(str(zone)):02d}{band}{square}"
    if "s2:mgrs_tile" in props:
        out["s2:mgrs_tile"] = str(props["s2:mgrs_tile"]).removeprefix("T")
    for key in ("s2:tile_id", "s2:granule_id", "s2:product_uri"):
        value = str(props.get(key, ""))
        if _TILE.match(value):
            out[key] = value
        elif match := _TILE_IN_ID.search(value.removesuffix(".SAFE")):
            out[key] = match.group(1)
    if match := _TILE_IN_ID.search(str(item.get("id", ""))):
        out["id"] = match.group(1)
    return out


def names_tile(item: Mapping[str, Any], tile_id: str) -> bool:
    """Whether some field of ``item`` names ``tile_id`` (a cheap filter before reading it)."""
    return tile_id in _tile_statements(item).values()


def item_tile(item: Mapping[str, Any]) -> str:
    """The MGRS tile of an item, from every field that states it, which must agree.

    ``grid:code``, ``mgrs:*`` and ``s2:mgrs_tile`` name the tile; ``s2:tile_id``,
    ``s2:granule_id``, ``s2:product_uri`` and the id may hold it inside a PDI name
    (``..._T20EPT_N05.11``). An item whose fields disagree, or that names no tile, is an error.
    """
    statements = _tile_statements(item)
    tiles = set(statements.values())
    if len(tiles) == 1:
        return tiles.pop()
    if not tiles:
        raise _fail(
            item,
            "names no MGRS tile (grid:code, mgrs:*, s2:mgrs_tile, or a PDI id with _Txxxxx_)",
            "the catalogue's items lack the tile; check that the collection is Sentinel-2 L2A",
        )
    raise _fail(
        item,
        f"its fields name different tiles: {statements}",
        "the item is inconsistent; report it to the catalogue and leave its tile out (--tiles)",
    )


def check_epsg(item: Mapping[str, Any], tile: str) -> int | None:
    """The item's EPSG, checked against the UTM zone and hemisphere of its tile."""
    props = item.get("properties") or {}
    epsg: Any = props.get("proj:epsg")
    if epsg is None and str(props.get("proj:code", "")).upper().startswith("EPSG:"):
        epsg = str(props["proj:code"]).split(":", 1)[1]
    if epsg is None:
        return None
    zone, band = int(tile[:2]), tile[2]
    wanted = (32600 if band >= "N" else 32700) + zone
    if int(epsg) != wanted:
        raise _fail(
            item,
            f"proj:epsg {epsg} does not match tile {tile} (UTM zone {zone}, EPSG:{wanted})",
            "the item's tile or CRS is wrong; report it to the catalogue",
        )
    return int(epsg)


def check_footprint(item: Mapping[str, Any], tile: str) -> tuple[float, float, float, float]:
    """The item's WGS84 bbox, checked to overlap its tile's footprint on the official grid."""
    from cubestream import grid

    bbox = item.get("bbox")
    if not bbox or len(bbox) < 4:
        raise _fail(item, "has no bbox", "the catalogue's item is malformed")
    lo = (float(bbox[0]), float(bbox[1]), float(bbox[-2]), float(bbox[-1]))
    ref = grid.tile(tile)
    if ref.max_lon - ref.min_lon > 180:  # antimeridian tiles: bounds wrap, nothing to compare
        return lo
    margin = 0.05
    if (
        lo[0] > ref.max_lon + margin
        or lo[2] < ref.min_lon - margin
        or lo[1] > ref.max_lat + margin
        or lo[3] < ref.min_lat - margin
    ):
        raise _fail(
            item,
            f"its bbox {lo} lies outside tile {tile} "
            f"({ref.min_lon:.3f}, {ref.min_lat:.3f}, {ref.max_lon:.3f}, {ref.max_lat:.3f})",
            "the item's tile or footprint is wrong; report it to the catalogue",
        )
    return lo
