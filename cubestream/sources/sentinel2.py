"""Sentinel-2 L2A items of every real catalogue, as one :class:`S2Item` the build reads.

Each catalogue spells the same product differently. One adapter per provider knows its spelling:

======================  ======================  ========================  ==================
provider                collection              band assets               tile from
======================  ======================  ========================  ==================
``earth-search``        ``sentinel-2-l2a``      ``blue`` ... ``swir22``,  ``grid:code``,
(Earth Search v1)                               ``scl``                   ``mgrs:*``
``earth-search-c1``     ``sentinel-2-c1-l2a``   ``blue`` ... ``swir22``,  ``grid:code``,
(Earth Search C1)                               ``scl``                   ``mgrs:*``
``planetary-computer``  ``sentinel-2-l2a``      ``B02`` ... ``B12``,      ``s2:mgrs_tile``
                                                ``SCL``
``cdse``                ``sentinel-2-l2a``      ``B02_10m`` ...           ``grid:code``
(Copernicus Data Space)                         ``B12_20m``, ``SCL_20m``
======================  ======================  ========================  ==================

The adapter is picked from the item (collection id, ``earthsearch:*`` properties, asset keys) or
named by the user; an item no adapter recognises, or one several would take, is an error naming
it. ``s2:tile_id`` is never read as the tile: on real Earth Search items it is the per-scene PDI
granule id. The tile found is checked against every other statement of it in the item (the tile
in the PDI ids, ``proj:epsg`` or ``proj:code``, the footprint) and a disagreement is an error.

The DN offset stated by the metadata (:class:`MetadataOffset`) is decided per provider, see
:func:`metadata_offset`; :mod:`cubestream.sources.offsets` then verifies it on the pixels.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from cubestream.errors import ItemSchemaError, ProviderError
from cubestream.sources._tiles import check_epsg, check_footprint, item_tile, names_tile

__all__ = [
    "ASSET_KEYS",
    "BANDS",
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

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
"""ESA names of the reflectance bands the build reads."""
SCL = "SCL"
Provider = Literal["earth-search", "earth-search-c1", "planetary-computer", "cdse"]
PROVIDERS: tuple[Provider, ...] = (
    "earth-search",
    "earth-search-c1",
    "planetary-computer",
    "cdse",
)
DEFAULT_SCALE = 1e-4
"""Reflectance per DN of every Sentinel-2 L2A product (``BOA_QUANTIFICATION_VALUE`` 10000)."""
BOA_ADD_OFFSET_DN = 1000
"""The DN added to every reflectance from processing baseline 04.00 (25 January 2022) on."""

_COMMON = {
    "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge1", "B06": "rededge2",
    "B07": "rededge3", "B8A": "nir08", "B11": "swir16", "B12": "swir22", "SCL": "scl",
}  # fmt: skip
_CDSE = {
    "B02": "B02_10m", "B03": "B03_10m", "B04": "B04_10m", "B05": "B05_20m", "B06": "B06_20m",
    "B07": "B07_20m", "B8A": "B8A_20m", "B11": "B11_20m", "B12": "B12_20m", "SCL": "SCL_20m",
}  # fmt: skip
ASSET_KEYS: dict[Provider, dict[str, str]] = {
    "earth-search": _COMMON,
    "earth-search-c1": _COMMON,
    "planetary-computer": {name: name for name in (*BANDS, SCL)},
    "cdse": _CDSE,
}
"""Per provider: ESA band name -> asset key (CDSE: the native-resolution asset of each band)."""

_FLAGS = ("earthsearch:boa_offset_applied", "sentinel:boa_offset_applied")
"""Earth Search's harmonisation flag (``sentinel:`` in items of its first v1 pipeline)."""
_BASELINE_IN_ID = re.compile(r"_N(\d{2})\.?(\d{2})(?:_|\.|$)")


@dataclass(frozen=True, kw_only=True)
class MetadataOffset:
    """The DN offset an item's metadata states, and why.

    Attributes
    ----------
    dn : int or None
        DN to subtract from the reflectance bands (1000 when the +1000 of baseline 04.00 is in the
        pixels); ``None`` when the metadata says nothing usable.
    reason : str
        Which fields gave it, for the report and ``cubestream stac check``.
    """

    dn: int | None
    reason: str


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
    """The provider whose schema ``item`` follows (see the module docstring).

    Raises
    ------
    ProviderError
        If no adapter, or more than one, recognises the item.
    """
    collection = str(item.get("collection", ""))
    assets = item.get("assets") or {}
    props = item.get("properties") or {}
    earthsearch = any(str(k).startswith("earthsearch:") for k in props) or any(
        "sentinel-cogs" in str(a.get("href", "")) for a in assets.values() if isinstance(a, dict)
    )
    found: list[Provider] = []
    if collection == "sentinel-2-c1-l2a":
        found.append("earth-search-c1")
    elif "blue" in assets and "scl" in assets and (earthsearch or collection == "sentinel-2-l2a"):
        found.append("earth-search")
    if "B02" in assets and "SCL" in assets:
        found.append("planetary-computer")
    if "B02_10m" in assets and "SCL_20m" in assets:
        found.append("cdse")
    if len(found) == 1:
        return found[0]
    what = "several adapters match it: " + ", ".join(found) if found else "no adapter knows it"
    raise ProviderError(
        f"STAC item {item.get('id')!r} of collection {collection!r} (assets "
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


def _raster_band(asset: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(scale, offset)`` of an asset's first band (STAC raster v1 ``raster:bands`` or v2)."""
    bands = asset.get("raster:bands") or asset.get("bands") or []
    first = bands[0] if bands and isinstance(bands[0], dict) else {}
    scale = first.get("scale", first.get("raster:scale", asset.get("raster:scale")))
    offset = first.get("offset", first.get("raster:offset", asset.get("raster:offset")))
    return (
        None if scale is None else float(scale),
        None if offset is None else float(offset),
    )


def _baseline_offset(baseline: str | None, prefix: str = "") -> MetadataOffset:
    if baseline is None:
        return MetadataOffset(dn=None, reason=f"{prefix}no processing baseline in the item")
    dn = BOA_ADD_OFFSET_DN if baseline >= "04.00" else 0
    relation = ">=" if dn else "<"
    return MetadataOffset(dn=dn, reason=f"{prefix}processing baseline {baseline} {relation} 04.00")


def metadata_offset(
    item: Mapping[str, Any], provider: Provider, baseline: str | None, blue: Mapping[str, Any]
) -> MetadataOffset:
    """The DN offset the metadata of ``item`` states, per provider.

    - ``earth-search``: ``earthsearch:boa_offset_applied`` (or the older
      ``sentinel:boa_offset_applied``) is the metadata's word where present (true: the
      pixels were harmonised, the -0.1 still in ``raster:bands`` is wrong, as Element84 said in
      earth-search#9); else the processing baseline.
    - the others: the blue asset's ``raster:bands`` ``offset / scale`` when present, else the
      processing baseline.
    """
    props = item.get("properties") or {}
    flag = next((key for key in _FLAGS if key in props), None)
    if provider == "earth-search" and flag is not None:
        if props[flag] is True:
            return MetadataOffset(dn=0, reason=f"{flag} true (pixels harmonised)")
        return _baseline_offset(baseline, f"{flag} false, ")
    scale, offset = _raster_band(blue)
    if offset is not None:
        dn = round(-offset / (scale or DEFAULT_SCALE))
        return MetadataOffset(
            dn=dn, reason=f"raster:bands offset {offset:g} / scale {scale or DEFAULT_SCALE:g}"
        )
    return _baseline_offset(baseline)


def _check_bands_agree(item: Mapping[str, Any], provider: Provider) -> float | None:
    """The reflectance bands' common scale; bands with another scale or offset are an error.

    The L1 store keeps one DN encoding (``scale_factor`` 1e-4) and subtracts one offset per item,
    so an item whose bands are scaled or offset differently cannot be stored as it is.
    """
    assets = item.get("assets") or {}
    found = {band: _raster_band(assets[ASSET_KEYS[provider][band]]) for band in BANDS}
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


def _hrefs(item: Mapping[str, Any], provider: Provider) -> dict[str, str]:
    assets = item.get("assets") or {}
    keys = ASSET_KEYS[provider]
    missing = [f"{band} ({key!r})" for band, key in keys.items() if key not in assets]
    if missing:
        raise _fail(
            item,
            f"lacks the assets {missing} of a {provider} item",
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
    provider : Provider, optional
        Its catalogue; detected from the item (:func:`detect_provider`) by default.
    rewrite_href : callable, optional
        Applied to each href (for example to point ``s3://`` hrefs at a mirror).

    Raises
    ------
    ItemSchemaError
        If a field the provider's schema needs is missing, or the item's fields disagree.
    ProviderError
        If the provider cannot be told from the item.
    """
    provider = provider or detect_provider(item)
    if provider not in PROVIDERS:
        raise ProviderError(f"unknown provider {provider!r}; choose one of {', '.join(PROVIDERS)}")
    props = item.get("properties") or {}
    if not props.get("datetime"):
        raise _fail(item, "has no properties.datetime", "the catalogue's item is malformed")
    tile = item_tile(item)
    epsg = check_epsg(item, tile)
    bbox = check_footprint(item, tile)
    hrefs = _hrefs(item, provider)
    if rewrite_href:
        hrefs = {band: rewrite_href(href) for band, href in hrefs.items()}
    blue = (item.get("assets") or {})[ASSET_KEYS[provider]["B02"]]
    scale = _check_bands_agree(item, provider)
    baseline = _baseline(item)
    cloud = props.get("eo:cloud_cover")
    return S2Item(
        id=str(item["id"]),
        collection=str(item.get("collection", "")),
        provider=provider,
        tile=tile,
        datetime=str(props["datetime"]),
        epsg=epsg,
        baseline=baseline,
        hrefs=hrefs,
        scale=scale or DEFAULT_SCALE,
        offset=metadata_offset(item, provider, baseline, blue),
        cloud_cover=None if cloud is None else float(cloud),
        bbox=bbox,
        raw=dict(item),
    )
