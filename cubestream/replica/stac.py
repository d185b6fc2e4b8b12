"""The replica's canonical STAC items and its collection, shaped like Earth-search's.

The canonical item is what :mod:`cubestream.replica.catalogues` turns into each real catalogue's
schema; it is never written as it is (its ``s2:tile_id`` is the bare tile, which no real
catalogue writes there).

Asset keys are Earth-search's common names (``blue`` ... ``swir22``, ``scl``); each asset's
``eo:bands`` carries the ESA band name, and the object file is named after it (``B04.tif``).
Items keep raw DNs (``earthsearch:boa_offset_applied: false``): from processing baseline 04.00 on,
``raster:bands`` has ``offset: -0.1`` (the -1000 DN ``BOA_ADD_OFFSET``), which readers must apply.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import box, mapping

from cubestream.grid import Tile
from cubestream.replica.layout import COLLECTION
from cubestream.replica.spec import Window
from cubestream.replica.world import Acquisition

__all__ = ["ASSET_KEYS", "collection", "item"]

ASSET_KEYS = {
    "B02": "blue",
    "B03": "green",
    "B04": "red",
    "B05": "rededge1",
    "B06": "rededge2",
    "B07": "rededge3",
    "B8A": "nir08",
    "B11": "swir16",
    "B12": "swir22",
    "SCL": "scl",
}
"""ESA band name -> Earth-search asset key."""
_WAVELENGTH = {
    "B02": (0.490, 0.098),
    "B03": (0.560, 0.045),
    "B04": (0.665, 0.038),
    "B05": (0.704, 0.019),
    "B06": (0.740, 0.018),
    "B07": (0.783, 0.028),
    "B8A": (0.865, 0.033),
    "B11": (1.610, 0.143),
    "B12": (2.190, 0.242),
}
_COG = "image/tiff; application=geotiff; profile=cloud-optimized"
_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json",
    "https://stac-extensions.github.io/grid/v1.0.0/schema.json",
]
_SCL_SHARES = {
    "s2:nodata_pixel_percentage": (0,),
    "s2:saturated_defective_pixel_percentage": (1,),
    "s2:dark_area_pixel_percentage": (2,),
    "s2:cloud_shadow_percentage": (3,),
    "s2:vegetation_percentage": (4,),
    "s2:not_vegetated_percentage": (5,),
    "s2:water_percentage": (6,),
    "s2:unclassified_percentage": (7,),
    "s2:medium_proba_clouds_percentage": (8,),
    "s2:high_proba_clouds_percentage": (9,),
    "s2:thin_cirrus_percentage": (10,),
    "s2:snow_ice_percentage": (11,),
}


def _footprint(tile: Tile, window: Window, covered: NDArray[np.bool_], res: int) -> dict[str, Any]:
    """WGS84 polygon around the covered pixels (their bounding box on the tile grid)."""
    rows = np.flatnonzero(covered.any(axis=1))
    cols = np.flatnonzero(covered.any(axis=0))
    if rows.size == 0:
        rows = cols = np.array([0])
    x_min = tile.x0 + (window.col + cols[0]) * res
    x_max = tile.x0 + (window.col + cols[-1] + 1) * res
    y_max = tile.y0 - (window.row + rows[0]) * res
    y_min = tile.y0 - (window.row + rows[-1] + 1) * res
    polygon = box(x_min, y_min, x_max, y_max).segmentize(1000.0)
    to_ll = Transformer.from_crs(tile.epsg, 4326, always_xy=True).transform
    lonlat = shapely.transform(polygon, lambda xy: np.column_stack(to_ll(xy[:, 0], xy[:, 1])))
    return dict(mapping(lonlat))


def _percentages(scl: NDArray[np.uint8], tile_pixels: int) -> dict[str, float]:
    """Scene-class shares as Earth-search reports them (no-data over the whole tile)."""
    counts = np.bincount(scl.ravel(), minlength=12).astype(float)
    counts[0] += tile_pixels - scl.size
    valid = max(counts[1:].sum(), 1.0)
    out = {"s2:nodata_pixel_percentage": round(100 * counts[0] / tile_pixels, 4)}
    for name, classes in _SCL_SHARES.items():
        if name != "s2:nodata_pixel_percentage":
            out[name] = round(100 * counts[list(classes)].sum() / valid, 4)
    out["eo:cloud_cover"] = round(100 * counts[[8, 9, 10]].sum() / valid, 4)
    return out


def _asset(
    name: str, href: str, window_shape: tuple[int, int], tile: Tile, res: int, offset: float
) -> dict[str, Any]:
    asset: dict[str, Any] = {
        "href": href,
        "type": _COG,
        "title": name,
        "proj:shape": list(window_shape),
        "proj:transform": [res, 0, tile.x0, 0, -res, tile.y0],
        "gsd": res,
    }
    if name == "SCL":
        asset["roles"] = ["data"]
        asset["raster:bands"] = [{"nodata": 0, "data_type": "uint8", "spatial_resolution": res}]
        return asset
    centre, fwhm = _WAVELENGTH[name]
    asset["roles"] = ["data", "reflectance"]
    asset["eo:bands"] = [
        {
            "name": name,
            "common_name": ASSET_KEYS[name].rstrip("0123456789") or ASSET_KEYS[name],
            "center_wavelength": centre,
            "full_width_half_max": fwhm,
        }
    ]
    asset["raster:bands"] = [
        {
            "nodata": 0,
            "data_type": "uint16",
            "bits_per_sample": 15,
            "spatial_resolution": res,
            "scale": 0.0001,
            "offset": offset,
        }
    ]
    return asset


def item(
    acq: Acquisition,
    tile: Tile,
    *,
    hrefs: dict[str, str],
    shapes: dict[str, tuple[int, int]],
    resolutions: dict[str, int],
    scl: NDArray[np.uint8],
    window: Window,
    covered: NDArray[np.bool_],
) -> dict[str, Any]:
    """One Earth-search-like STAC item (a plain dict, STAC 1.0.0).

    Parameters
    ----------
    acq : Acquisition
        What the item is.
    tile : Tile
        Its Sentinel-2 tile.
    hrefs, shapes, resolutions : dict keyed by ESA asset name
        Where each asset is, its full-tile pixel shape and its resolution.
    scl : ndarray
        Scene classification on ``window`` at ``resolutions["SCL"]`` (for the percentages).
    window, covered : Window, ndarray of bool
        The rendered window (at the render's resolution) and the pixels of it the item covers.
    """
    from cubestream.replica.layout import item_id

    ident = item_id(acq.satellite, acq.tile_id, acq.day, acq.sequence)
    geometry = _footprint(tile, window, covered, resolutions["B02"])
    coords = np.array(geometry["coordinates"][0])
    when = dt.datetime.combine(acq.day, dt.time(7, 50, 13, 480000), tzinfo=dt.UTC)
    offset = -0.1 if acq.offset else 0.0
    scl_shape = shapes["SCL"]
    properties: dict[str, Any] = {
        "datetime": when.isoformat().replace("+00:00", "Z"),
        "platform": f"sentinel-{acq.satellite[1:].lower()}",
        "constellation": "sentinel-2",
        "instruments": ["msi"],
        "gsd": resolutions["B02"],
        "proj:epsg": tile.epsg,
        "proj:code": f"EPSG:{tile.epsg}",
        "mgrs:utm_zone": int(acq.tile_id[:2]),
        "mgrs:latitude_band": acq.tile_id[2],
        "mgrs:grid_square": acq.tile_id[3:],
        "grid:code": f"MGRS-{acq.tile_id}",
        "s2:tile_id": acq.tile_id,
        "s2:product_type": "S2MSI2A",
        "s2:processing_baseline": acq.baseline,
        "s2:datatake_id": f"GS2{acq.satellite[-1]}_{acq.day:%Y%m%d}T075013_{acq.sequence:06d}_N"
        + acq.baseline.replace(".", ""),
        "s2:datatake_type": "INS-NOBS",
        "earthsearch:boa_offset_applied": False,
        "earthsearch:payload_id": f"roda-sentinel2/workflow-sentinel2-to-stac/{ident}",
        "created": when.isoformat().replace("+00:00", "Z"),
        **_percentages(scl, scl_shape[0] * scl_shape[1]),
    }
    assets = {
        ASSET_KEYS[name]: _asset(name, hrefs[name], shapes[name], tile, resolutions[name], offset)
        for name in ASSET_KEYS
    }
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": _EXTENSIONS,
        "id": ident,
        "collection": COLLECTION,
        "geometry": geometry,
        "bbox": [
            float(coords[:, 0].min()),
            float(coords[:, 1].min()),
            float(coords[:, 0].max()),
            float(coords[:, 1].max()),
        ],
        "properties": properties,
        "assets": assets,
        "links": [],
    }


def collection(
    bbox: tuple[float, float, float, float], start: dt.date, end: dt.date
) -> dict[str, Any]:
    """The ``sentinel-2-l2a`` collection document covering the world."""
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "stac_extensions": _EXTENSIONS[:3],
        "id": COLLECTION,
        "title": "Sentinel-2 Level-2A (cubestream replica)",
        "description": (
            "Synthetic Sentinel-2 L2A surface reflectance on the real tile grid, laid out like "
            "Earth-search's sentinel-2-l2a collection (cubestream replica)."
        ),
        "license": "proprietary",
        "keywords": ["sentinel", "copernicus", "esa", "msi", "l2a", "replica"],
        "providers": [{"name": "cubestream replica", "roles": ["producer", "host"]}],
        "extent": {
            "spatial": {"bbox": [list(bbox)]},
            "temporal": {
                "interval": [[f"{start.isoformat()}T00:00:00Z", f"{end.isoformat()}T23:59:59Z"]]
            },
        },
        "summaries": {
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
        },
        "links": [],
    }
