"""Sentinel-2 L2A items of every real catalogue, as one :class:`S2Item` the build reads.

Each catalogue spells the same product differently; :mod:`cubestream.sources.providers` holds one
:class:`~cubestream.sources.providers.Catalogue` per catalogue (its collection, asset keys, how to
recognise its items, its offset metadata, its href signing) in the registry :data:`PROVIDERS`.

The catalogue is picked from the item (each catalogue's predicate says whether, and why, it
recognises it) or named by the user; an item no catalogue recognises, or one several would take,
is an error naming it. ``s2:tile_id`` is never read as the tile: on real Earth Search items it is
the per-scene PDI granule id. The tile found is checked against every other statement of it in
the item (the tile in the PDI ids, ``proj:epsg`` or ``proj:code``, the footprint) and a
disagreement is an error.

The DN offset stated by the metadata (:class:`MetadataOffset`) is decided by the catalogue's rule,
see :func:`metadata_offset`; :mod:`cubestream.sources.offsets` then verifies it on the pixels.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from cubestream.errors import ItemSchemaError, ProviderError
from cubestream.sources._tiles import check_epsg, check_footprint, item_tile, names_tile
from cubestream.sources.providers import PROVIDERS, Catalogue, MetadataOffset, get_provider
from cubestream.sources.providers.base import (
    BANDS,
    BOA_ADD_OFFSET_DN,
    DEFAULT_SCALE,
    SCL,
    raster_band,
)

__all__ = [
    "ASSET_KEYS",
    "BANDS",
    "BOA_ADD_OFFSET_DN",
    "DEFAULT_SCALE",
    "PROVIDERS",
    "SCL",
    "MetadataOffset",
    "Provider",
    "S2Item",
    "detect_provider",
    "item_tile",
    "metadata_offset",
    "names_tile",
    "to_s2_item",
]

Provider: TypeAlias = str
"""A catalogue's name: a key of :data:`PROVIDERS` (``earth-search``, ``cdse``...)."""

_BASELINE_IN_ID = re.compile(r"_N(\d{2})\.?(\d{2})(?:_|\.|$)")


class _AssetKeys(Mapping[str, Mapping[str, str]]):
    """Per provider: ESA band name -> asset key, read from :data:`PROVIDERS` as it stands."""

    def __getitem__(self, name: str) -> Mapping[str, str]:
        return PROVIDERS[name].asset_keys

    def __iter__(self) -> Iterator[str]:
        return iter(PROVIDERS)

    def __len__(self) -> int:
        return len(PROVIDERS)


ASSET_KEYS: Mapping[str, Mapping[str, str]] = _AssetKeys()
"""Per provider: ESA band name -> asset key (each catalogue's ``asset_keys``)."""


@dataclass(frozen=True, kw_only=True)
class S2Item:
    """One Sentinel-2 L2A item, whatever catalogue it came from.

    Attributes
    ----------
    id, collection : str
        As the catalogue names them.
    provider : Provider
        The adapter that read it.
    tile : str
        MGRS tile, e.g. ``"37MBU"``.
    datetime : str
        Acquisition time (ISO 8601) as the item gives it.
    epsg : int or None
        The item's CRS (``proj:epsg`` / ``proj:code``), when it states it.
    baseline : str or None
        Processing baseline (``"05.11"``).
    hrefs : dict of str to str
        ESA band name (:data:`BANDS` and ``"SCL"``) -> asset href, unsigned.
    scale : float
        Reflectance per DN.
    offset : MetadataOffset
        The DN offset the metadata states.
    cloud_cover : float or None
        ``eo:cloud_cover``.
    """

    id: str
    collection: str
    provider: Provider
    tile: str
    datetime: str
    epsg: int | None
    baseline: str | None
    hrefs: dict[str, str]
    scale: float
    offset: MetadataOffset
    cloud_cover: float | None
    bbox: tuple[float, float, float, float] | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def day(self) -> dt.date:
        """The UTC day of the acquisition."""
        return dt.date.fromisoformat(self.datetime[:10])

    def stac(self) -> dict[str, Any]:
        """A minimal STAC item with the assets keyed by ESA band name, for stackstac."""
        return {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": self.id,
            "collection": self.collection,
            "geometry": self.raw.get("geometry"),
            "bbox": list(self.bbox) if self.bbox else self.raw.get("bbox"),
            "properties": {"datetime": self.datetime},
            "assets": {
                name: {"href": href, "type": "image/tiff; application=geotiff"}
                for name, href in self.hrefs.items()
            },
            "links": [],
        }


def _fail(item: Mapping[str, Any], what: str, hint: str) -> ItemSchemaError:
    return ItemSchemaError(f"STAC item {item.get('id')!r}: {what}; {hint}")


def detect_provider(item: Mapping[str, Any]) -> Provider:
    """The provider whose schema ``item`` follows: the one catalogue that recognises it.

    Raises
    ------
    ProviderError
        If no catalogue of :data:`PROVIDERS`, or more than one, recognises the item.
    """
    found = {
        name: reason
        for name, catalogue in PROVIDERS.items()
        if (reason := catalogue.recognise(item)) is not None
    }
    if len(found) == 1:
        return next(iter(found))
    assets = item.get("assets") or {}
    what = (
        "several adapters match it: " + ", ".join(f"{k} ({v})" for k, v in found.items())
        if found
        else "no adapter knows it"
    )
    raise ProviderError(
        f"STAC item {item.get('id')!r} of collection {str(item.get('collection', ''))!r} (assets "
        f"{sorted(assets)[:12]}): {what}; name the catalogue with --provider "
        f"({', '.join(PROVIDERS)})"
    )


def _baseline(item: Mapping[str, Any]) -> str | None:
    """The processing baseline: ``s2:processing_baseline``, ``processing:version`` or a PDI id."""
    props = item.get("properties") or {}
    for key in ("s2:processing_baseline", "processing:version"):
        value = props.get(key)
        if value is not None and re.fullmatch(r"\d{2}\.\d{2}", str(value)):
            return str(value)
    for text in (props.get("s2:product_uri"), props.get("s2:granule_id"), item.get("id")):
        if text and (match := _BASELINE_IN_ID.search(str(text))):
            number = f"{match.group(1)}.{match.group(2)}"
            if number != "99.99":  # reprocessing placeholders carry no baseline
                return number
    return None


def metadata_offset(
    item: Mapping[str, Any], provider: Provider, baseline: str | None, blue: Mapping[str, Any]
) -> MetadataOffset:
    """The DN offset the metadata of ``item`` states, by its provider's rule.

    Each catalogue's module states its rule (``earth-search``: its harmonisation flag where
    present; the others: the blue asset's ``raster:bands`` ``offset / scale``); where the
    metadata states none, the processing baseline decides.

    Raises
    ------
    ProviderError
        If ``provider`` is not in :data:`PROVIDERS`.
    """
    return get_provider(provider).metadata_offset(item, baseline, blue)


def _check_bands_agree(item: Mapping[str, Any], catalogue: Catalogue) -> float | None:
    """The reflectance bands' common scale; bands with another scale or offset are an error.

    The L1 store keeps one DN encoding (``scale_factor`` 1e-4) and subtracts one offset per item,
    so an item whose bands are scaled or offset differently cannot be stored as it is.
    """
    assets = item.get("assets") or {}
    found = {band: raster_band(assets[catalogue.asset_keys[band]]) for band in BANDS}
    scales = {scale for scale, _ in found.values() if scale is not None}
    offsets = {offset for _, offset in found.values() if offset is not None}
    if len(scales) > 1 or len(offsets) > 1:
        raise _fail(
            item,
            f"its bands differ in raster:bands scale/offset: {found}",
            "cubestream stores one DN encoding per item; report the item to the catalogue",
        )
    scale = scales.pop() if scales else None
    if scale is not None and abs(scale - DEFAULT_SCALE) > 1e-12:
        raise _fail(
            item,
            f"its reflectance scale is {scale:g}, not {DEFAULT_SCALE:g} (BOA_QUANTIFICATION_VALUE "
            "10000 of every Sentinel-2 L2A baseline)",
            "the item is not Sentinel-2 L2A DN; check the collection",
        )
    return scale


def _hrefs(item: Mapping[str, Any], catalogue: Catalogue) -> dict[str, str]:
    assets = item.get("assets") or {}
    keys = {band: catalogue.asset_keys[band] for band in (*BANDS, SCL)}
    missing = [f"{band} ({key!r})" for band, key in keys.items() if key not in assets]
    if missing:
        raise _fail(
            item,
            f"lacks the assets {missing} of a {catalogue.name} item",
            "the item is incomplete in the catalogue; leave its day out (--end/--start) or "
            "its tile out (--tiles), and report it",
        )
    hrefs = {}
    for band, key in keys.items():
        href = assets[key].get("href") if isinstance(assets[key], dict) else None
        if not href:
            raise _fail(item, f"asset {key!r} has no href", "the catalogue's item is malformed")
        hrefs[band] = str(href)
    return hrefs


def to_s2_item(
    item: Mapping[str, Any],
    provider: Provider | None = None,
    *,
    rewrite_href: Callable[[str], str] | None = None,
) -> S2Item:
    """Read one STAC item (a dict) of any supported catalogue.

    Parameters
    ----------
    item : dict
        The STAC item as the catalogue serves it.
    provider : str, optional
        Its catalogue, a name in :data:`PROVIDERS`; detected from the item
        (:func:`detect_provider`) by default.
    rewrite_href : callable, optional
        Applied to each href (for example to point ``s3://`` hrefs at a mirror).

    Raises
    ------
    ItemSchemaError
        If a field the provider's schema needs is missing, or the item's fields disagree.
    ProviderError
        If the provider is unknown, or cannot be told from the item.
    """
    catalogue = get_provider(provider or detect_provider(item))
    props = item.get("properties") or {}
    if not props.get("datetime"):
        raise _fail(item, "has no properties.datetime", "the catalogue's item is malformed")
    tile = item_tile(item)
    epsg = check_epsg(item, tile)
    bbox = check_footprint(item, tile)
    hrefs = _hrefs(item, catalogue)
    if rewrite_href:
        hrefs = {band: rewrite_href(href) for band, href in hrefs.items()}
    blue = (item.get("assets") or {})[catalogue.asset_keys["B02"]]
    scale = _check_bands_agree(item, catalogue)
    baseline = _baseline(item)
    cloud = props.get("eo:cloud_cover")
    return S2Item(
        id=str(item["id"]),
        collection=str(item.get("collection", "")),
        provider=catalogue.name,
        tile=tile,
        datetime=str(props["datetime"]),
        epsg=epsg,
        baseline=baseline,
        hrefs=hrefs,
        scale=scale or DEFAULT_SCALE,
        offset=catalogue.metadata_offset(item, baseline, blue),
        cloud_cover=None if cloud is None else float(cloud),
        bbox=bbox,
        raw=dict(item),
    )
