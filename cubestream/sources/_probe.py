"""Coarse reads of one asset over a box: the only pixel reads of the sources layer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import rasterio
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT
from rasterio.windows import from_bounds

from cubestream._gdalenv import rasterio_env
from cubestream.errors import AssetNotFoundError, AssetReadError
from cubestream.sources.signing import sign_href

__all__ = ["read_coarse"]

_NOT_FOUND = ("No such file", "does not exist", "404", "NoSuchKey")


def read_coarse(
    href: str,
    epsg: int,
    bounds: tuple[float, float, float, float],
    resolution: float,
    gdal_options: dict[str, Any],
) -> NDArray[Any]:
    """Band 1 of ``href`` over ``bounds`` (in EPSG ``epsg``) at ``resolution`` m, nearest.

    An asset already in ``epsg`` is read with a decimated window read (GDAL takes the overview
    nearest the resolution); one in another CRS through a warped VRT. Outside the asset: 0.

    Raises
    ------
    AssetNotFoundError, AssetReadError
        If the asset is missing or unreadable; the message names the href.
    """
    width = max(1, math.ceil((bounds[2] - bounds[0]) / resolution))
    height = max(1, math.ceil((bounds[3] - bounds[1]) / resolution))
    try:
        with rasterio_env(gdal_options), rasterio.open(sign_href(href)) as src:
            if src.crs is not None and src.crs.to_epsg() == epsg:
                window = from_bounds(*bounds, transform=src.transform)
                data = src.read(
                    1,
                    window=window,
                    out_shape=(height, width),
                    resampling=Resampling.nearest,
                    boundless=True,
                    fill_value=0,
                )
            else:
                transform = rasterio.transform.from_bounds(*bounds, width, height)
                with WarpedVRT(
                    src,
                    crs=f"EPSG:{epsg}",
                    transform=transform,
                    width=width,
                    height=height,
                    resampling=Resampling.nearest,
                    nodata=0,
                ) as vrt:
                    data = vrt.read(1)
    except rasterio.errors.RasterioIOError as exc:
        kind = AssetNotFoundError if any(s in str(exc) for s in _NOT_FOUND) else AssetReadError
        raise kind(
            f"cannot read {href} for the offset probe ({exc}); check the href, the credentials "
            "and the endpoint, or build with --offset trust to skip the probe"
        ) from exc
    return np.asarray(data)
