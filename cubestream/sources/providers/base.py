"""What a Sentinel-2 L2A catalogue is to cubestream: a :class:`Catalogue`, and the rules it shares.

A catalogue (a *provider*) is data plus three small rules: its name and collection id, the asset
key of each ESA band, how to recognise one of its items (a predicate that says why), how its
metadata states the DN offset, how to sign its hrefs where they need it, and where the replica's
writer of its item schema lives. Each catalogue is one module of :mod:`cubestream.sources.providers`
building one :class:`Catalogue`; the package registers them by name.

The replica's writer is named by its import path (``"package.module:function"``), not imported:
production code never imports :mod:`cubestream.replica` (``tests/test_layers.py``), the replica
resolves the name itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cubestream.errors import ProviderError

__all__ = [
    "BANDS",
    "BOA_ADD_OFFSET_DN",
    "DEFAULT_SCALE",
    "SCL",
    "Catalogue",
    "HrefSigner",
    "MetadataOffset",
    "OffsetRule",
    "Recogniser",
    "ReplicaSchema",
    "baseline_offset",
    "has_assets",
    "raster_band",
    "raster_bands_or_baseline",
]

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
"""ESA names of the reflectance bands the build reads."""
SCL = "SCL"
"""ESA name of the scene classification asset."""
DEFAULT_SCALE = 1e-4
"""Reflectance per DN of every Sentinel-2 L2A product (``BOA_QUANTIFICATION_VALUE`` 10000)."""
BOA_ADD_OFFSET_DN = 1000
"""The DN added to every reflectance from processing baseline 04.00 (25 January 2022) on."""

_WRITER = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


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


Recogniser = Callable[[Mapping[str, Any]], str | None]
"""``recognise(item)``: why the item follows the catalogue's schema, or ``None`` if it does not."""
OffsetRule = Callable[[Mapping[str, Any], str | None, Mapping[str, Any]], MetadataOffset]
"""``offset(item, baseline, blue_asset)``: the DN offset the item's metadata states."""


@dataclass(frozen=True, kw_only=True)
class HrefSigner:
    """How a catalogue's hrefs are signed before a reader opens them.

    Attributes
    ----------
    needs : callable
        ``needs(href)``: whether ``href`` is one of the catalogue's and lacks its signature.
    sign : callable
        ``sign(href)``: the signed href; raises :class:`~cubestream.errors.SourceError` with what
        to do when it cannot sign.
    """

    needs: Callable[[str], bool]
    sign: Callable[[str], str]


@dataclass(frozen=True, kw_only=True)
class ReplicaSchema:
    """Where the replica's writer of a catalogue's item schema lives, and what it can get wrong.

    Attributes
    ----------
    writer : str
        ``"package.module:function"`` of the writer, called as
        ``writer(canonical_item, scene, mislabel=...)`` by
        :func:`cubestream.replica.catalogues.catalogue_item`.
    mislabellable : bool
        Whether the real catalogue is known to label the offset of its items wrongly, so that the
        replica writes such errors too.
    s3_hrefs : bool
        Whether the catalogue's hrefs are ``s3://`` URLs with the HTTPS URL as an alternate
        (CDSE), rather than HTTPS URLs with an ``s3`` alternate; the replica serves them so.
    """

    writer: str
    mislabellable: bool = False
    s3_hrefs: bool = False

    def __post_init__(self) -> None:
        if not _WRITER.match(self.writer):
            raise ProviderError(
                f"replica writer {self.writer!r} is not 'package.module:function'; name the "
                "function that writes the catalogue's item schema"
            )


def has_assets(item: Mapping[str, Any], *keys: str) -> bool:
    """Whether ``item`` has every asset key in ``keys``."""
    assets = item.get("assets") or {}
    return all(key in assets for key in keys)


def raster_band(asset: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """``(scale, offset)`` of an asset's first band (STAC raster v1 ``raster:bands`` or v2)."""
    bands = asset.get("raster:bands") or asset.get("bands") or []
    first = bands[0] if bands and isinstance(bands[0], dict) else {}
    scale = first.get("scale", first.get("raster:scale", asset.get("raster:scale")))
    offset = first.get("offset", first.get("raster:offset", asset.get("raster:offset")))
    return (
        None if scale is None else float(scale),
        None if offset is None else float(offset),
    )


def baseline_offset(baseline: str | None, prefix: str = "") -> MetadataOffset:
    """The offset the processing baseline implies: 1000 DN from 04.00 on, else 0."""
    if baseline is None:
        return MetadataOffset(dn=None, reason=f"{prefix}no processing baseline in the item")
    dn = BOA_ADD_OFFSET_DN if baseline >= "04.00" else 0
    relation = ">=" if dn else "<"
    return MetadataOffset(dn=dn, reason=f"{prefix}processing baseline {baseline} {relation} 04.00")


def raster_bands_or_baseline(
    item: Mapping[str, Any], baseline: str | None, blue: Mapping[str, Any]
) -> MetadataOffset:
    """The blue asset's ``raster:bands`` ``offset / scale`` when stated, else the baseline's."""
    del item  # the blue asset and the baseline say it all
    scale, offset = raster_band(blue)
    if offset is not None:
        dn = round(-offset / (scale or DEFAULT_SCALE))
        return MetadataOffset(
            dn=dn, reason=f"raster:bands offset {offset:g} / scale {scale or DEFAULT_SCALE:g}"
        )
    return baseline_offset(baseline)


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    """One Sentinel-2 L2A catalogue: how its items spell the product.

    Attributes
    ----------
    name : str
        Its name in the registry and for ``--provider`` (``earth-search``).
    title : str
        What people call it (``Earth Search v1``).
    collection : str
        Its Sentinel-2 L2A collection id.
    asset_keys : mapping of str to str
        ESA band name (:data:`BANDS` and :data:`SCL`) -> the item's asset key.
    recognise : callable
        ``recognise(item)`` -> why the item is one of this catalogue's, or ``None``
        (:data:`Recogniser`). Exactly one catalogue of the registry must recognise an item.
    metadata_offset : callable
        The catalogue's rule for the DN offset its metadata states (:data:`OffsetRule`);
        :func:`raster_bands_or_baseline` by default.
    signer : HrefSigner, optional
        How its hrefs are signed, for catalogues whose blobs need a token.
    replica : ReplicaSchema, optional
        The replica's writer of its item schema; without one the replica does not serve it.
    """

    name: str
    title: str
    collection: str
    asset_keys: Mapping[str, str]
    recognise: Recogniser
    metadata_offset: OffsetRule = raster_bands_or_baseline
    signer: HrefSigner | None = None
    replica: ReplicaSchema | None = None

    def __post_init__(self) -> None:
        missing = [band for band in (*BANDS, SCL) if band not in self.asset_keys]
        if missing:
            raise ProviderError(
                f"catalogue {self.name!r} names no asset key for the bands {missing}; its "
                "asset_keys must map every band the build reads"
            )
