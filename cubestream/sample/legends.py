"""Class legends of the strata rasters: code to name, and the topography groups of geomorphons.

- :data:`CLIMATE`: the Koppen-Geiger classes of Beck et al. (2018), "Present and future
  Koppen-Geiger climate classification maps at 1-km resolution", Scientific Data 5, 180214:
  codes 1 (``Af``) to 30 (``EF``), named by their symbols.
- :data:`LANDCOVER`: the ESA WorldCover (v100/v200) classes, codes 10 to 100.
- :data:`GEOMORPHONS`: the ten landforms of Jasiewicz and Stepinski (2013), codes 1 to 10.
- :data:`TOPOGRAPHY`: the four groups of geomorphons used as the topography stratum, flat,
  convex (peak, ridge, shoulder, spur), slope and concave (hollow, footslope, valley, pit),
  in this order (the order breaks ties, see :mod:`cubestream.sample.strata`).

Code 0 is no-data in all three rasters; :data:`NO_DATA` names it.
"""

from __future__ import annotations

__all__ = [
    "CLIMATE",
    "GEOMORPHONS",
    "LANDCOVER",
    "LEGENDS",
    "NO_DATA",
    "TOPOGRAPHY",
    "topography_lookup",
]

NO_DATA = "no data"
"""Name given to a stratum without any valid pixel (code 0)."""

_KOPPEN = (
    "Af Am Aw BWh BWk BSh BSk Csa Csb Csc Cwa Cwb Cwc Cfa Cfb Cfc "
    "Dsa Dsb Dsc Dsd Dwa Dwb Dwc Dwd Dfa Dfb Dfc Dfd ET EF"
)
CLIMATE: dict[int, str] = dict(enumerate(_KOPPEN.split(), start=1))
"""Koppen-Geiger code (Beck et al. 2018) to symbol, 1 ``Af`` ... 30 ``EF``."""

LANDCOVER: dict[int, str] = {
    10: "tree cover",
    20: "shrubland",
    30: "grassland",
    40: "cropland",
    50: "built-up",
    60: "bare / sparse vegetation",
    70: "snow and ice",
    80: "permanent water bodies",
    90: "herbaceous wetland",
    95: "mangroves",
    100: "moss and lichen",
}
"""ESA WorldCover code to class name."""

GEOMORPHONS: dict[int, str] = {
    1: "flat",
    2: "peak",
    3: "ridge",
    4: "shoulder",
    5: "spur",
    6: "slope",
    7: "hollow",
    8: "footslope",
    9: "valley",
    10: "pit",
}
"""Geomorphon code to landform."""

TOPOGRAPHY: dict[str, tuple[int, ...]] = {
    "flat": (1,),
    "convex": (2, 3, 4, 5),
    "slope": (6,),
    "concave": (7, 8, 9, 10),
}
"""Topography group to the geomorphon codes it holds; groups are numbered 1..4 in this order."""

LEGENDS: dict[str, dict[int, str]] = {
    "climate": CLIMATE,
    "landcover": LANDCOVER,
    "geomorphons": GEOMORPHONS,
}
"""Legend of each strata raster, by raster name."""


def topography_lookup() -> list[int]:
    """Map each geomorphon code 0..255 to its topography group number (0 for none).

    Returns
    -------
    list of int
        256 entries: 1 flat, 2 convex, 3 slope, 4 concave, 0 for no-data and unknown codes.
    """
    lookup = [0] * 256
    for number, codes in enumerate(TOPOGRAPHY.values(), start=1):
        for code in codes:
            lookup[code] = number
    return lookup
