"""Writers of the Earth Search and Planetary Computer item schemas, and their shared helpers.

Private part of :mod:`cubestream.replica.catalogues` (read its description first; the CDSE writer
is in :mod:`cubestream.replica._cdse_schema`). Each writer
takes the canonical item, its :class:`~cubestream.replica.catalogues.Scene` and the mislabel
switch, and returns a new item; the key sets, names and value shapes are those of the real items
under ``tests/data/real/stac/``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from typing import TYPE_CHECKING, Any

from cubestream.replica._s2bands import BAND_INFO, BandInfo

if TYPE_CHECKING:
    from cubestream.replica.catalogues import Scene

__all__ = ["earth_search", "earth_search_c1", "planetary_computer"]

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
    azimuth, elevation = _sun_angles(s.centroid[0], s.sensed.date())
    out: dict[str, Any] = {}
    if incidence:
        out["view:azimuth"] = 102.5 + 0.7 * (s.relative_orbit % 11)
        out["view:incidence_angle"] = 2.1 + 0.35 * (s.relative_orbit % 17)
    out["view:sun_azimuth"] = azimuth
    out["view:sun_elevation"] = elevation
    return out


def _s2_product(s: Scene) -> dict[str, Any]:
    return {
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": s.baseline,
        "s2:product_uri": f"{s.product}.SAFE",
        "s2:generation_time": _iso6(s.generated),
        "s2:datatake_id": s.datatake_id,
        "s2:datatake_type": "INS-NOBS",
        "s2:datastrip_id": s.datastrip_id,
    } | {"s2:reflectance_conversion_factor": _earth_sun_factor(s.sensed.date())}


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
    azimuth, elevation = _sun_angles(s.centroid[0], s.sensed.date())
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
        "s2:reflectance_conversion_factor": _earth_sun_factor(s.sensed.date()),
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


def _sun_angles(lat: float, day: dt.date) -> tuple[float, float]:
    """Approximate solar azimuth and elevation (degrees) at a tile's morning overpass."""
    doy = day.timetuple().tm_yday
    declination = 23.44 * math.sin(2 * math.pi * (284 + doy) / 365)
    elevation = 90.0 - abs(lat - declination) - 12.0
    azimuth = 110.0 if lat >= declination else 60.0
    return azimuth + 0.1 * (doy % 17), elevation


def _earth_sun_factor(day: dt.date) -> float:
    """``s2:reflectance_conversion_factor``: the Earth-Sun distance correction of the day."""
    doy = day.timetuple().tm_yday
    return 1.0 / (1.0 - 0.01673 * math.cos(0.0172 * (doy - 4))) ** 2
