"""One writer per real catalogue: the canonical replica item in that catalogue's item schema.

Private part of :mod:`cubestream.replica.catalogues` (read its description first). Each writer
takes the canonical item, its :class:`~cubestream.replica.catalogues.Scene` and the mislabel
switch, and returns a new item; the key sets, names and value shapes are those of the real items
under ``tests/data/real/stac/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import TYPE_CHECKING, Any

from cubestream.replica._s2bands import BAND_INFO, BandInfo

if TYPE_CHECKING:
    from cubestream.replica.catalogues import Scene

__all__ = ["cdse", "earth_search", "earth_search_c1", "planetary_computer"]

_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
_SCALE = 0.0001
_EXT = "https://stac-extensions.github.io/{}/schema.json"
_ES_EXTENSIONS = {
    "2023": [
        "view/v1.0.0",
        "eo/v1.0.0",
        "grid/v1.0.0",
        "raster/v1.1.0",
        "processing/v1.1.0",
        "projection/v1.0.0",
        "mgrs/v1.0.0",
    ],
    "2025": [
        "grid/v1.1.0",
        "mgrs/v1.0.0",
        "processing/v1.1.0",
        "projection/v1.1.0",
        "sentinel-2/v1.0.0",
        "raster/v1.1.0",
        "view/v1.0.0",
        "eo/v1.1.0",
    ],
    "c1": [
        "eo/v1.1.0",
        "file/v2.1.0",
        "grid/v1.1.0",
        "mgrs/v1.0.0",
        "processing/v1.1.0",
        "projection/v1.1.0",
        "raster/v1.1.0",
        "sentinel-2/v1.0.0",
        "storage/v1.0.0",
        "view/v1.0.0",
    ],
}
_PC_EXTENSIONS = ["eo/v1.0.0", "sat/v1.0.0", "projection/v1.0.0"]
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
# scene-class shares of the canonical item, as Earth Search and Planetary Computer name them
_SHARES = (
    "s2:nodata_pixel_percentage",
    "s2:saturated_defective_pixel_percentage",
    "s2:cloud_shadow_percentage",
    "s2:vegetation_percentage",
    "s2:not_vegetated_percentage",
    "s2:water_percentage",
    "s2:unclassified_percentage",
    "s2:medium_proba_clouds_percentage",
    "s2:high_proba_clouds_percentage",
    "s2:thin_cirrus_percentage",
    "s2:snow_ice_percentage",
)
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


def _md5(text: str) -> str:
    """A payload-id-shaped hash (Earth Search's payload ids are 32 hex digits)."""
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _iso6(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _canonical_assets(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The canonical item's assets by ESA name (their ``title``)."""
    return {asset["title"]: asset for asset in item["assets"].values()}


def _grid(asset: dict[str, Any]) -> dict[str, Any]:
    """``gsd``, ``proj:shape`` and ``proj:transform`` of a canonical asset."""
    return {
        "gsd": asset["gsd"],
        "proj:shape": list(asset["proj:shape"]),
        "proj:transform": list(asset["proj:transform"]),
    }


def _proj_bbox(asset: dict[str, Any]) -> list[float]:
    res, _, x0, _, _, y0 = asset["proj:transform"]
    height, width = asset["proj:shape"]
    return [x0, y0 - height * res, x0 + width * res, y0]


def _file(asset: dict[str, Any]) -> dict[str, Any]:
    """The canonical asset's ``file:checksum`` and ``file:size``, if ``create`` recorded them."""
    return {k: asset[k] for k in ("file:checksum", "file:size") if k in asset}


def _offset(s: Scene, mislabel_to_zero: bool) -> float:
    return 0.0 if mislabel_to_zero or not s.offset else -0.1


def _common(item: dict[str, Any]) -> dict[str, Any]:
    """Members every catalogue keeps from the canonical item."""
    return {
        "type": "Feature",
        "geometry": item["geometry"],
        "bbox": list(item["bbox"]),
        "links": [],
    }


def _mgrs(s: Scene) -> dict[str, Any]:
    return {
        "mgrs:utm_zone": int(s.tile[:2]),
        "mgrs:latitude_band": s.tile[2],
        "mgrs:grid_square": s.tile[3:],
        "grid:code": f"MGRS-{s.tile}",
    }


def _view(s: Scene, *, incidence: bool) -> dict[str, Any]:
    from cubestream.replica.catalogues import sun_angles

    azimuth, elevation = sun_angles(s.centroid[0], s.sensed.date())
    out: dict[str, Any] = {}
    if incidence:
        out["view:azimuth"] = 102.5 + 0.7 * (s.relative_orbit % 11)
        out["view:incidence_angle"] = 2.1 + 0.35 * (s.relative_orbit % 17)
    out["view:sun_azimuth"] = azimuth
    out["view:sun_elevation"] = elevation
    return out


def _s2_product(s: Scene) -> dict[str, Any]:
    from cubestream.replica.catalogues import earth_sun_factor

    return {
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": s.baseline,
        "s2:product_uri": f"{s.product}.SAFE",
        "s2:generation_time": _iso6(s.generated),
        "s2:datatake_id": s.datatake_id,
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": s.datastrip_id,
    } | {"s2:reflectance_conversion_factor": earth_sun_factor(s.sensed.date())}


def _es_asset(
    band: BandInfo, asset: dict[str, Any], generation: str, offset: float
) -> dict[str, Any]:
    """One Earth Search asset (v1 of 2023 or 2025, or Collection 1)."""
    res = asset["gsd"]
    out: dict[str, Any] = {"href": asset["href"], "type": _COG}
    raster: dict[str, Any] = {"nodata": 0, "data_type": "uint16"}
    if band.esa == "SCL":
        out["title"] = band.es_title
        if generation != "2023":
            out["gsd"] = res
        out |= {k: v for k, v in _grid(asset).items() if k != "gsd"}
        out["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": res}]
        out["roles"] = ["data", "reflectance"] if generation == "2023" else ["data"]
        return out
    if generation == "2023":
        out["title"] = f"{band.es_description} - {band.native}m"
        eo = {"name": band.earth_search, "common_name": band.common_name}
        eo["description"] = band.es_description
        raster["bits_per_sample"] = 15
    else:
        out["title"] = f"{band.es_title} - {band.native}m"
        eo = {"name": band.esa, "common_name": band.common_name}
    out["eo:bands"] = [
        eo | {"center_wavelength": band.wavelength, "full_width_half_max": band.fwhm}
    ]
    out |= _grid(asset)
    raster |= {"spatial_resolution": res, "scale": _SCALE, "offset": offset}
    out["raster:bands"] = [raster]
    out["roles"] = ["data", "reflectance"]
    return out


def _es_shares(props: dict[str, Any], generation: str) -> dict[str, Any]:
    out: dict[str, Any] = {"s2:degraded_msi_data_percentage": 0}
    for name in _SHARES:
        out[name] = props[name]
        if name == "s2:saturated_defective_pixel_percentage" and generation == "2023":
            out["s2:dark_features_percentage"] = props["s2:dark_area_pixel_percentage"]
    return out


def earth_search(item: dict[str, Any], s: Scene, *, mislabel: bool) -> dict[str, Any]:
    """Earth Search v1 ``sentinel-2-l2a`` (generation by the parity of the day's ordinal)."""
    generation = "2025" if s.sensed.date().toordinal() % 2 else "2023"
    props = item["properties"]
    ident = item["id"]
    zone, band, square = int(s.tile[:2]), s.tile[2], s.tile[3:]
    created = _iso(s.generated + dt.timedelta(minutes=23, seconds=8))
    p: dict[str, Any] = {
        "created": created,
        "platform": props["platform"],
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": props["eo:cloud_cover"],
        "proj:epsg": s.epsg,
    }
    if generation == "2025":
        p["proj:centroid"] = {"lat": s.centroid[0], "lon": s.centroid[1]}
    p |= _mgrs(s) | _view(s, incidence=generation == "2025")
    if generation == "2025":
        p["s2:tile_id"] = s.granule_id
    p |= _es_shares(props, generation) | _s2_product(s)
    if generation == "2023":
        p["s2:granule_id"] = s.granule_id
    p["datetime"] = props["datetime"]
    p["s2:sequence"] = str(s.sequence)
    p["earthsearch:s3_path"] = (
        f"s3://sentinel-cogs/sentinel-s2-l2a-cogs/{zone}/{band}/{square}/"
        f"{s.sensed.year}/{s.sensed.month}/{ident}"
    )
    p["earthsearch:payload_id"] = f"roda-sentinel2/workflow-sentinel2-to-stac/{_md5(ident)}"
    p["earthsearch:boa_offset_applied"] = mislabel
    version = "2025.03.06" if generation == "2025" else "0.1.0"
    p["processing:software"] = {"sentinel2-to-stac": version}
    p["updated"] = created
    offset = _offset(s, False)  # the real error: the flag is wrong, raster:bands unchanged
    assets = {
        info.earth_search: _es_asset(info, asset, generation, offset)
        for info, asset in _assets(item)
    }
    return {
        **_common(item),
        "stac_version": "1.0.0",
        "stac_extensions": [_EXT.format(e) for e in _ES_EXTENSIONS[generation]],
        "id": ident,
        "properties": p,
        "assets": assets,
        "collection": "sentinel-2-l2a",
    }


def _assets(item: dict[str, Any]) -> list[tuple[BandInfo, dict[str, Any]]]:
    canonical = _canonical_assets(item)
    return [(BAND_INFO[name], canonical[name]) for name in BAND_INFO]


def earth_search_c1(item: dict[str, Any], s: Scene, *, mislabel: bool) -> dict[str, Any]:
    """Earth Search ``sentinel-2-c1-l2a`` (STAC 1.1, raster:bands v1.1)."""
    props = item["properties"]
    ident = f"{s.satellite}_T{s.tile}_{s.stamp(s.datastrip)}_L2A"
    created = _iso(s.generated + dt.timedelta(minutes=34, seconds=17))
    p: dict[str, Any] = {
        "created": created,
        "platform": props["platform"],
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "eo:cloud_cover": props["eo:cloud_cover"],
        "proj:epsg": s.epsg,
        "proj:centroid": {"lat": s.centroid[0], "lon": s.centroid[1]},
    }
    p |= _mgrs(s) | _view(s, incidence=True)
    p["s2:tile_id"] = s.granule_id
    p |= _es_shares(props, "c1") | _s2_product(s)
    p["datetime"] = props["datetime"]
    workflow = "roda-sentinel-2-c1-l2a/workflow-sentinel-2-c1-l2a-to-stac"
    p["earthsearch:payload_id"] = f"{workflow}/{_md5(ident)}"
    p |= {"storage:platform": "AWS", "storage:region": "us-west-2", "storage:requester_pays": False}
    p["processing:software"] = {"sentinel-2-c1-l2a-to-stac": "v2024.02.01"}
    p["updated"] = created
    offset = _offset(s, mislabel)
    assets = {}
    for info, asset in _assets(item):
        entry = _es_asset(info, asset, "c1", offset)
        roles = entry.pop("roles")
        assets[info.earth_search] = entry | _file(asset) | {"roles": roles}
    return {
        **_common(item),
        "stac_version": "1.1.0",
        "stac_extensions": [_EXT.format(e) for e in _ES_EXTENSIONS["c1"]],
        "id": ident,
        "properties": p,
        "assets": assets,
        "collection": "sentinel-2-c1-l2a",
    }


def planetary_computer(item: dict[str, Any], s: Scene, *, mislabel: bool) -> dict[str, Any]:
    """Planetary Computer ``sentinel-2-l2a`` (no raster:bands; offset from the baseline only)."""
    del mislabel  # refused by catalogue_item: nothing to mislabel
    props = item["properties"]
    ident = (
        f"{s.satellite}_MSIL2A_{s.stamp(s.datatake)}_R{s.relative_orbit:03d}_T{s.tile}_"
        f"{s.stamp(s.generated)}"
    )
    from cubestream.replica.catalogues import earth_sun_factor, sun_angles

    azimuth, elevation = sun_angles(s.centroid[0], s.sensed.date())
    p: dict[str, Any] = {
        "datetime": props["datetime"],
        "platform": f"Sentinel-2{s.satellite[-1]}",
        "proj:epsg": s.epsg,
        "instruments": ["msi"],
        "s2:mgrs_tile": s.tile,
        "constellation": "Sentinel 2",
        "s2:granule_id": s.granule_id,
        "eo:cloud_cover": props["eo:cloud_cover"],
        "s2:datatake_id": s.datatake_id,
        "s2:product_uri": f"{s.product}.SAFE",
        "s2:datastrip_id": s.datastrip_id,
        "s2:product_type": "S2MSI2A",
        "sat:orbit_state": "descending",
        "s2:datatake_type": "INS-NOBS",
        "s2:generation_time": _iso6(s.generated),
        "sat:relative_orbit": s.relative_orbit,
        "s2:mean_solar_zenith": 90.0 - elevation,
        "s2:mean_solar_azimuth": azimuth,
        "s2:processing_baseline": s.baseline,
        "s2:degraded_msi_data_percentage": 0.0,
        "s2:reflectance_conversion_factor": earth_sun_factor(s.sensed.date()),
    }
    p |= {name: props[name] for name in _SHARES}
    assets = {}
    for info, asset in _assets(item):
        entry: dict[str, Any] = {"href": asset["href"], "proj:bbox": _proj_bbox(asset)}
        entry |= {k: v for k, v in _grid(asset).items() if k != "gsd"}
        entry |= {"gsd": float(asset["gsd"]), "type": _COG, "roles": ["data"]}
        if info.esa == "SCL":
            entry["title"] = info.pc_description
        else:
            entry["title"] = f"{info.pc_description} - {info.native}m"
            entry["eo:bands"] = [
                {
                    "name": info.esa,
                    "common_name": info.pc_common_name,
                    "description": info.pc_description,
                    "center_wavelength": info.wavelength,
                    "full_width_half_max": info.fwhm,
                }
            ]
        assets[info.esa] = entry
    return {
        "id": ident,
        "bbox": list(item["bbox"]),
        "type": "Feature",
        "links": [],
        "assets": assets,
        "geometry": item["geometry"],
        "collection": "sentinel-2-l2a",
        "properties": p,
        "stac_extensions": [_EXT.format(e) for e in _PC_EXTENSIONS],
        "stac_version": "1.0.0",
    }


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
    from cubestream.replica.catalogues import sun_angles

    azimuth, elevation = sun_angles(s.centroid[0], s.sensed.date())
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
