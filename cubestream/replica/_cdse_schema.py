"""Writer of the Copernicus Data Space (CDSE) ``sentinel-2-l2a`` item schema.

Private part of :mod:`cubestream.replica.catalogues`: STAC 1.1 with raster v2 (``raster:scale``,
``raster:offset``, ``nodata`` and ``data_type`` on the asset), ``bands`` with ``eo:*`` members,
asset keys named by band and resolution (``B02_10m``), ``s3://`` hrefs with an HTTPS alternate, the
baseline in ``processing:version`` (see ``tests/data/real/stac/cdse_*.json``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cubestream.replica._catalogue_schemas import (
    _EXT,
    _SCALE,
    _assets,
    _file,
    _iso6,
    _offset,
    _proj_bbox,
    _sun_angles,
)
from cubestream.replica._s2bands import BandInfo

if TYPE_CHECKING:
    from cubestream.replica.catalogues import Scene

__all__ = ["cdse"]

_CDSE_EXTENSIONS = [
    "https://cs-si.github.io/eopf-stac-extension/v1.2.0/schema.json",
    *(
        _EXT.format(name)
        for name in (
            "alternate-assets/v1.2.0",
            "authentication/v1.1.0",
            "classification/v2.0.0",
            "eo/v2.0.0",
            "file/v2.1.0",
            "grid/v1.1.0",
            "processing/v1.2.0",
            "product/v0.1.0",
            "projection/v2.0.0",
            "raster/v2.0.0",
            "sat/v1.1.0",
            "storage/v2.0.0",
            "timestamps/v1.1.0",
            "view/v1.0.0",
        )
    ),
]
_SCL_CLASSES = (
    ("no_data", "s2:nodata_pixel_percentage"),
    ("saturated_or_defective", "s2:saturated_defective_pixel_percentage"),
    ("dark_area_pixels", "s2:dark_area_pixel_percentage"),
    ("cloud_shadows", "s2:cloud_shadow_percentage"),
    ("vegetation", "s2:vegetation_percentage"),
    ("not_vegetated", "s2:not_vegetated_percentage"),
    ("water", "s2:water_percentage"),
    ("unclassified", "s2:unclassified_percentage"),
    ("cloud_medium_probability", "s2:medium_proba_clouds_percentage"),
    ("cloud_high_probability", "s2:high_proba_clouds_percentage"),
    ("thin_cirrus", "s2:thin_cirrus_percentage"),
    ("snow", "s2:snow_ice_percentage"),
)


def _cdse_path(s: Scene, info: BandInfo) -> str:
    """Path of the band's JP2 inside the SAFE product, as CDSE names it."""
    name = f"T{s.tile}_{s.stamp(s.datatake)}_{info.esa}_{info.native}m.jp2"
    return f"{s.product}.SAFE/GRANULE/{s.granule_dir}/IMG_DATA/R{info.native}m/{name}"


def _cdse_asset(s: Scene, info: BandInfo, asset: dict[str, Any]) -> dict[str, Any]:
    path = _cdse_path(s, info)
    out: dict[str, Any] = {"href": asset["href"]}
    if info.esa != "SCL":
        out["bands"] = [
            {
                "description": info.es_description,
                "eo:center_wavelength": info.wavelength,
                "eo:full_width_half_max": info.fwhm,
                "name": info.esa,
                "eo:common_name": info.common_name,
            }
        ]
    else:
        out["title"] = f"{info.es_description} - {info.native}m"
    out["alternate"] = {
        "https": {
            "href": asset["href"],
            "auth:refs": ["oidc"],
            "storage:refs": [],
            "alternate:name": "HTTPS",
        }
    }
    out |= _file(asset) | {"proj:bbox": _proj_bbox(asset), "proj:code": f"EPSG:{s.epsg}"}
    if info.esa != "SCL":
        out["view:azimuth"] = 225.0 + 0.5 * (s.relative_orbit % 13)
    out["proj:transform"] = list(asset["proj:transform"])
    out["file:local_path"] = path
    return out


def _cdse_asset_tail(
    s: Scene, info: BandInfo, asset: dict[str, Any], props: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if info.esa == "SCL":
        out["classification:classes"] = [
            {"name": name, "value": value, "percentage": props[share]}
            | ({"nodata": True} if value == 0 else {})
            for value, (name, share) in enumerate(_SCL_CLASSES)
        ]
    else:
        out["view:incidence_angle"] = 2.9 + 0.05 * (s.relative_orbit % 7)
    sampling = f"gsd:{info.native}m"
    roles = ["data"] if info.esa == "SCL" else ["data", "reflectance"]
    out |= {
        "gsd": asset["gsd"],
        "type": "image/jp2",
        "roles": [*roles, "sampling:original", sampling],
    }
    if info.esa != "SCL":
        out["title"] = f"{info.es_description} - {info.native}m"
    out |= {
        "nodata": 0,
        "auth:refs": ["s3"],
        "data_type": "uint8" if info.esa == "SCL" else "uint16",
        "proj:shape": list(asset["proj:shape"]),
    }
    if info.esa != "SCL":
        out["raster:scale"] = _SCALE
    out["storage:refs"] = ["cdse-s3", "creodias-s3"]
    if info.esa != "SCL":
        out["raster:offset"] = _offset(s, False)
    out["alternate:name"] = "S3"
    return out


def cdse(item: dict[str, Any], s: Scene, *, mislabel: bool) -> dict[str, Any]:
    """Copernicus Data Space ``sentinel-2-l2a`` (STAC 1.1, raster v2, JP2 asset names)."""
    del mislabel  # refused by catalogue_item: no known error
    props = item["properties"]
    azimuth, elevation = _sun_angles(s.centroid[0], s.sensed.date())
    published = _iso6(s.generated + dt.timedelta(minutes=61, seconds=18))
    origin = _iso6(s.generated + dt.timedelta(minutes=54, seconds=49))
    statistics = {
        "water": props["s2:water_percentage"],
        "nodata": props["s2:nodata_pixel_percentage"],
        "dark_area": props["s2:dark_area_pixel_percentage"],
        "vegetation": props["s2:vegetation_percentage"],
        "thin_cirrus": props["s2:thin_cirrus_percentage"],
        "cloud_shadow": props["s2:cloud_shadow_percentage"],
        "unclassified": props["s2:unclassified_percentage"],
        "not_vegetated": props["s2:not_vegetated_percentage"],
        "high_proba_clouds": props["s2:high_proba_clouds_percentage"],
        "medium_proba_clouds": props["s2:medium_proba_clouds_percentage"],
        "saturated_defective": props["s2:saturated_defective_pixel_percentage"],
    }
    p: dict[str, Any] = {
        "gsd": 10,
        "created": origin,
        "updated": published,
        "datetime": props["datetime"],
        "platform": props["platform"],
        "grid:code": f"MGRS-{s.tile}",
        "published": published,
        "statistics": statistics,
        "instruments": ["msi"],
        "auth:schemes": {
            "s3": {"type": "s3"},
            "oidc": {
                "type": "openIdConnect",
                "openIdConnectUrl": "https://identity.dataspace.copernicus.eu/auth/realms/CDSE/"
                ".well-known/openid-configuration",
            },
        },
        "end_datetime": props["datetime"],
        "product:type": "S2MSI2A",
        "view:azimuth": 225.0 + 0.5 * (s.relative_orbit % 13),
        "constellation": "sentinel-2",
        "eo:snow_cover": props["s2:snow_ice_percentage"],
        "eo:cloud_cover": props["eo:cloud_cover"],
        "start_datetime": props["datetime"],
        "sat:orbit_state": "descending",
        "storage:schemes": _CDSE_STORAGE,
        "eopf:datatake_id": s.datatake_id,
        "processing:level": "L2",
        "view:sun_azimuth": azimuth,
        "eopf:datastrip_id": s.datastrip_id,
        "processing:version": s.baseline,
        "product:timeliness": "PT24H",
        "sat:absolute_orbit": s.absolute_orbit,
        "sat:relative_orbit": s.relative_orbit,
        "view:sun_elevation": elevation,
        "processing:datetime": _iso6(s.generated),
        "processing:facility": "ESA",
        "eopf:instrument_mode": "INS-NOBS",
        "eopf:origin_datetime": origin,
        "view:incidence_angle": 2.9 + 0.05 * (s.relative_orbit % 7),
        "product:timeliness_category": "NRT",
        "sat:platform_international_designator": _DESIGNATOR.get(s.satellite, "2015-028A"),
    }
    assets = {
        f"{info.esa}_{info.native}m": _cdse_asset(s, info, asset)
        | _cdse_asset_tail(s, info, asset, props)
        for info, asset in _assets(item)
    }
    return {
        "id": s.product,
        "bbox": list(item["bbox"]),
        "type": "Feature",
        "links": [],
        "assets": assets,
        "geometry": item["geometry"],
        "collection": "sentinel-2-l2a",
        "properties": p,
        "stac_extensions": _CDSE_EXTENSIONS,
        "stac_version": "1.1.0",
    }


_DESIGNATOR = {"S2A": "2015-028A", "S2B": "2017-013A", "S2C": "2024-157A"}
_CDSE_STORAGE = {
    "cdse-s3": {
        "type": "custom-s3",
        "title": "Copernicus Data Space Ecosystem S3",
        "platform": "https://eodata.dataspace.copernicus.eu",
        "description": "EO data on the object storage of the Copernicus Data Space Ecosystem.",
        "requester_pays": False,
    },
    "creodias-s3": {
        "type": "custom-s3",
        "title": "CREODIAS S3",
        "platform": "https://eodata.cloudferro.com",
        "description": "The EODATA archive offered by CREODIAS.",
        "requester_pays": True,
    },
}
