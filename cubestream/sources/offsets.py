"""The reflectance offset of each item: stated by the metadata, verified on the pixels.

From processing baseline 04.00 (25 January 2022) on, L2A digital numbers carry ``+1000``
(``BOA_ADD_OFFSET`` -1000): reflectance is ``(DN - 1000) / 10000``. Some catalogues subtract it
("harmonise") and say so in a flag; the flag is known to be wrong for whole periods
(Element84/earth-search#66 and #71, cirrus-geo/cirrus-earth-search#33), and a wrong guess shifts
every reflectance by 0.1 and silently ruins kNDVI for those dates.

The pixels tell. Over dark surfaces (scene classes :data:`DARK_CLASSES`: dark area, vegetation,
water) blue-band reflectance lies well below 0.1, so:

- with the ``+1000`` in the data, their valid DN are nearly all ``>= 1000`` (below means a
  negative reflectance, which only a few pixels have);
- without it, nearly all are ``< 1000``.

:func:`probe_item` reads the blue band and the scene classes of one item on a coarse grid over the
tile's boxes (COG overviews: a few hundred kB) and returns the :class:`PixelEvidence`;
:func:`decide` combines it with the metadata under the policy:

``trust``
    the metadata alone; no pixel is read.
``verify`` (default)
    the metadata, checked on the pixels: where they disagree conclusively the pixels win and the
    disagreement is reported; where the pixels are inconclusive (no dark surface seen: a cloudy
    or desert scene) the metadata stands, reported as unverified.
``detect``
    the pixels alone; where they are inconclusive the metadata stands (reported), and an item
    with neither is an error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from cubestream.errors import OffsetError
from cubestream.sources.sentinel2 import BOA_ADD_OFFSET_DN, MetadataOffset, S2Item

__all__ = [
    "DARK_CLASSES",
    "OFFSET_POLICIES",
    "OffsetDecision",
    "OffsetPolicy",
    "PixelEvidence",
    "decide",
    "pixel_evidence",
    "probe_item",
]

OffsetPolicy = Literal["trust", "verify", "detect"]
OFFSET_POLICIES: tuple[OffsetPolicy, ...] = ("trust", "verify", "detect")
DARK_CLASSES = (2, 4, 6)
"""Scene classes whose blue reflectance lies well below 0.1: dark area, vegetation, water."""
MIN_PIXELS = 50
"""Dark pixels needed for the pixels to decide."""
PRESENT_BELOW = 0.1
"""At most this share of dark pixels below 1000 DN: the +1000 is in the data."""
ABSENT_BELOW = 0.5
"""At least this share below 1000 DN: the +1000 is not in the data."""
PROBE_RESOLUTION = 240.0
"""Coarsest metres per pixel of the probe read (served from the COGs' overviews)."""
PROBE_MIN_PIXELS = 128
"""Pixels the probe grid has at least along the shorter side of its bounds (down to 30 m)."""


@dataclass(frozen=True, kw_only=True)
class PixelEvidence:
    """What the dark pixels of one item say about its offset.

    Attributes
    ----------
    pixels : int
        Valid blue pixels of the dark classes seen.
    share_below : float
        Share of them with DN below 1000 (NaN when ``pixels`` is 0).
    """

    pixels: int
    share_below: float

    @property
    def offset_in_data(self) -> bool | None:
        """True: the +1000 is in the DN; False: it is not; None: the pixels cannot tell."""
        if self.pixels < MIN_PIXELS:
            return None
        if self.share_below <= PRESENT_BELOW:
            return True
        if self.share_below >= ABSENT_BELOW:
            return False
        return None


@dataclass(frozen=True, kw_only=True)
class OffsetDecision:
    """The DN offset subtracted from one item, and how it was decided.

    Attributes
    ----------
    item : str
        Item id.
    dn : int
        DN subtracted from its reflectance bands.
    metadata : int or None
        What the metadata stated.
    reason : str
        The metadata's reason, and what the pixels said.
    status : str
        ``"trusted"``, ``"verified"``, ``"unverified"`` (pixels inconclusive), ``"corrected"``
        (metadata and pixels disagree; the pixels were followed) or ``"detected"``.
    evidence : PixelEvidence or None
        The pixels' evidence, when read.
    """

    item: str
    dn: int
    metadata: int | None
    reason: str
    status: str
    evidence: PixelEvidence | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the build report."""
        out = asdict(self)
        if self.evidence is not None:
            share = self.evidence.share_below
            out["evidence"] = {
                "pixels": self.evidence.pixels,
                "share_below_1000": None if np.isnan(share) else round(share, 4),
            }
        return out


def pixel_evidence(blue: NDArray[Any], scl: NDArray[Any]) -> PixelEvidence:
    """The evidence of a blue band and its scene classes on the same grid (0 = no data)."""
    dark = np.isin(scl, DARK_CLASSES) & (blue > 0)
    values = blue[dark]
    share = float(np.mean(values < BOA_ADD_OFFSET_DN)) if values.size else float("nan")
    return PixelEvidence(pixels=int(values.size), share_below=share)


def decide(
    item: str, meta: MetadataOffset, evidence: PixelEvidence | None, policy: OffsetPolicy
) -> OffsetDecision:
    """The offset of one item under ``policy`` (see the module docstring).

    Raises
    ------
    OffsetError
        If neither the metadata nor the pixels give the offset, or the policy needs pixel
        evidence that was not read.
    """
    if policy not in OFFSET_POLICIES:
        raise OffsetError(f"offset policy {policy!r} is not one of {', '.join(OFFSET_POLICIES)}")
    if policy == "trust":
        if meta.dn is None:
            raise OffsetError(
                f"item {item!r}: {meta.reason}, so its offset is unknown; "
                "use --offset detect to take it from the pixels"
            )
        return OffsetDecision(
            item=item, dn=meta.dn, metadata=meta.dn, reason=meta.reason, status="trusted"
        )
    if evidence is None:
        raise OffsetError(f"item {item!r}: offset policy {policy!r} needs the pixels, not read")
    seen = evidence.offset_in_data
    said = _said(evidence)
    if seen is None:
        if meta.dn is None:
            raise OffsetError(
                f"item {item!r}: {meta.reason} and {said}; the offset is unknown: leave the "
                "item's day out of the build (--start/--end) or report it to the catalogue"
            )
        status = "unverified"
        return OffsetDecision(
            item=item,
            dn=meta.dn,
            metadata=meta.dn,
            reason=f"{meta.reason}; {said}",
            status=status,
            evidence=evidence,
        )
    dn = BOA_ADD_OFFSET_DN if seen else 0
    if policy == "detect" or meta.dn is None:
        status = "detected"
    else:
        status = "verified" if dn == meta.dn else "corrected"
    return OffsetDecision(
        item=item,
        dn=dn,
        metadata=meta.dn,
        reason=f"{meta.reason}; {said}",
        status=status,
        evidence=evidence,
    )


def _said(evidence: PixelEvidence) -> str:
    seen = evidence.offset_in_data
    if seen is None:
        return f"the pixels cannot tell ({evidence.pixels} dark pixels, {_share(evidence)} < 1000)"
    verdict = "+1000 in the data" if seen else "no +1000 in the data"
    return f"pixels: {verdict} ({_share(evidence)} of {evidence.pixels} dark pixels < 1000 DN)"


def _share(evidence: PixelEvidence) -> str:
    return "n/a" if np.isnan(evidence.share_below) else f"{100 * evidence.share_below:.1f} %"


def probe_item(
    item: S2Item,
    epsg: int,
    bounds: tuple[float, float, float, float],
    gdal_options: dict[str, Any],
    resolution: float | None = None,
) -> PixelEvidence:
    """Read ``item``'s blue band and scene classes over ``bounds`` (tile CRS) on a coarse grid.

    Both are read onto the same grid with nearest resampling (GDAL serves them from the COGs'
    overviews), so the probe costs a few hundred kB per item. The grid is
    :data:`PROBE_RESOLUTION` metres, finer where the bounds are small (at least
    :data:`PROBE_MIN_PIXELS` a side, at most 30 m), so that a tile with few cubes still shows
    enough dark pixels.
    """
    from cubestream.sources._probe import read_coarse

    if resolution is None:
        side = min(bounds[2] - bounds[0], bounds[3] - bounds[1])
        resolution = max(30.0, min(PROBE_RESOLUTION, side / PROBE_MIN_PIXELS))
    blue = read_coarse(item.hrefs["B02"], epsg, bounds, resolution, gdal_options)
    scl = read_coarse(item.hrefs["SCL"], epsg, bounds, resolution, gdal_options)
    return pixel_evidence(blue, scl)
