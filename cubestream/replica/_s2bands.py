"""How each real Sentinel-2 L2A catalogue names and describes the replica's ten assets.

Private table of :mod:`cubestream.replica.catalogues`, copied from the real items under
``tests/data/real/stac/`` (Earth Search v1 of 2023 and 2025, Earth Search Collection 1, Planetary
Computer, Copernicus Data Space). Where a sample lacks a band (the CDSE sample is trimmed to B02,
B04 and SCL), the entry follows the pattern of the bands it has.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BAND_INFO", "BandInfo"]


@dataclass(frozen=True, kw_only=True)
class BandInfo:
    """One asset of the replica as the catalogues describe it.

    Attributes
    ----------
    esa : str
        ESA band name (``B02``, ``SCL``); the Planetary Computer asset key.
    earth_search : str
        Earth Search asset key (``blue``, ``scl``).
    native : int
        Native resolution in metres (the ``_10m`` / ``_20m`` of CDSE asset keys and titles).
    common_name : str
        ``eo:bands`` common name (the red-edge bands are all ``rededge``).
    pc_common_name : str
        Planetary Computer's common name (it calls B8A ``rededge`` too).
    wavelength, fwhm : float
        Centre wavelength and full width at half maximum (micrometres).
    es_title : str
        Earth Search v1 (2025) and Collection 1 title, before `` - 10m``.
    es_description : str
        Earth Search v1 (2023) and CDSE description (``Blue (band 2)``).
    pc_description : str
        Planetary Computer description (``Band 2 - Blue``).
    """

    esa: str
    earth_search: str
    native: int
    common_name: str
    pc_common_name: str
    wavelength: float
    fwhm: float
    es_title: str
    es_description: str
    pc_description: str


def _band(
    esa: str, key: str, native: int, common: str, wl: float, fwhm: float, titles: tuple[str, ...]
) -> BandInfo:
    es_title, es_description, pc_description = titles
    return BandInfo(
        esa=esa,
        earth_search=key,
        native=native,
        common_name=common,
        pc_common_name="rededge" if esa == "B8A" else common,
        wavelength=wl,
        fwhm=fwhm,
        es_title=es_title,
        es_description=es_description,
        pc_description=pc_description,
    )


BAND_INFO: dict[str, BandInfo] = {
    b.esa: b
    for b in (
        _band("B02", "blue", 10, "blue", 0.49, 0.098, ("Blue", "Blue (band 2)", "Band 2 - Blue")),
        _band(
            "B03", "green", 10, "green", 0.56, 0.045, ("Green", "Green (band 3)", "Band 3 - Green")
        ),
        _band("B04", "red", 10, "red", 0.665, 0.038, ("Red", "Red (band 4)", "Band 4 - Red")),
        _band(
            "B05",
            "rededge1",
            20,
            "rededge",
            0.704,
            0.019,
            ("Red Edge 1", "Red edge 1 (band 5)", "Band 5 - Vegetation red edge 1"),
        ),
        _band(
            "B06",
            "rededge2",
            20,
            "rededge",
            0.74,
            0.018,
            ("Red Edge 2", "Red edge 2 (band 6)", "Band 6 - Vegetation red edge 2"),
        ),
        _band(
            "B07",
            "rededge3",
            20,
            "rededge",
            0.783,
            0.028,
            ("Red Edge 3", "Red edge 3 (band 7)", "Band 7 - Vegetation red edge 3"),
        ),
        _band(
            "B8A",
            "nir08",
            20,
            "nir08",
            0.865,
            0.033,
            ("NIR 2", "NIR 2 (band 8A)", "Band 8A - Vegetation red edge 4"),
        ),
        _band(
            "B11",
            "swir16",
            20,
            "swir16",
            1.61,
            0.143,
            ("SWIR 1.6\u03bcm", "SWIR 1 (band 11)", "Band 11 - SWIR (1.6)"),
        ),
        _band(
            "B12",
            "swir22",
            20,
            "swir22",
            2.19,
            0.242,
            ("SWIR 2.2\u03bcm", "SWIR 2 (band 12)", "Band 12 - SWIR (2.2)"),
        ),
        _band(
            "SCL",
            "scl",
            20,
            "",
            0.0,
            0.0,
            (
                "Scene classification map (SCL)",
                "Scene classification map (SCL)",
                "Scene classfication map (SCL)",  # sic: Planetary Computer's title
            ),
        ),
    )
}
"""The replica's assets by ESA name, in the order the replica writes them."""
