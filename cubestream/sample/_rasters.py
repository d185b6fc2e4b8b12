"""Strata rasters: GDAL paths and environment, opening and checking, the warped read.

The only module of :mod:`cubestream.sample` that touches raster bytes. :mod:`.strata` plans a grid
per tile and hands it to :func:`read_warped`; :meth:`StrataSources.env
<cubestream.sample.strata.StrataSources.env>` and :meth:`~.strata.StrataSources.check` come here
for the environment and the checks.

Locations
    Local paths, GDAL ``/vsi...`` paths, or ``http(s)://``, ``s3://`` and ``gs://`` URLs (read
    through ``/vsicurl/``, ``/vsis3/`` and ``/vsigs/``).
Environment
    The ``gdal`` settings of :mod:`cubestream.config` (retries for remote reads, no directory
    listing on open: the same as every other raster read) under the caller's options; AWS
    credentials, which GDAL refuses as options, form a rasterio ``AWSSession``.
Checks
    One band, uint8, a geographic CRS or a projected one with an EPSG code, and a ``class_names``
    tag (where there is one) that agrees with the legend of the raster's name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from numpy.typing import NDArray
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT

from cubestream import config as runtime
from cubestream._gdalenv import rasterio_env
from cubestream.errors import StrataError, StrataNotFoundError
from cubestream.sample.legends import LEGENDS

__all__ = [
    "WARP_TOLERANCE",
    "gdal_path",
    "open_raster",
    "raster_env",
    "read_warped",
]

WARP_TOLERANCE = 1e-3
"""Largest error (source pixels) of GDAL's approximate transformer. Against an exact warp of a
tile at 120 m, its default 0.125 moves 0.7% of the pixels to a neighbour; 1e-3 moves about 25 in
a million for 1.7 times the time (an exact warp takes 14 times as long)."""
_SCHEMES = {"http://": "/vsicurl/", "https://": "/vsicurl/", "s3://": "/vsis3/", "gs://": "/vsigs/"}


# --- environment and paths ------------------------------------------------------------------


def raster_env(options: Mapping[str, str] | None = None) -> rasterio.Env:
    """A ``rasterio.Env`` of the ``gdal`` settings (:mod:`cubestream.config`) and ``options``.

    Parameters
    ----------
    options : mapping of str to str, optional
        GDAL configuration options; ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
        ``AWS_SESSION_TOKEN`` (refused by GDAL as options) form an ``AWSSession`` with the
        region (``AWS_REGION`` or ``AWS_DEFAULT_REGION``) and ``AWS_S3_ENDPOINT``.

    Returns
    -------
    rasterio.Env
    """
    return rasterio_env({**runtime.gdal(), **(options or {})})


def gdal_path(location: str) -> str:
    """The GDAL path of a location: URLs get their ``/vsi...`` prefix, paths stay as they are."""
    for scheme, prefix in _SCHEMES.items():
        if location.startswith(scheme):
            rest = location if prefix == "/vsicurl/" else location[len(scheme) :]
            return prefix + rest
    return location


def _is_local(location: str) -> bool:
    return gdal_path(location) == location and not location.startswith("/vsi")


# --- opening and checking ------------------------------------------------------------------


def open_raster(name: str, location: str) -> DatasetReader:
    """Open one strata raster and check it; the caller closes it.

    Parameters
    ----------
    name : str
        ``climate``, ``landcover`` or ``geomorphons``: names the raster in errors and picks
        the legend its ``class_names`` tag is checked against.
    location : str
        Path or URL of the raster.

    Returns
    -------
    rasterio.io.DatasetReader

    Raises
    ------
    StrataNotFoundError
        If a local raster is missing or a remote one cannot be reached.
    StrataError
        If the raster cannot be read as one, or fails a check (see the module docstring).
    """
    try:
        dataset = rasterio.open(gdal_path(location))
    except RasterioIOError as exc:
        raise _open_error(name, location, exc) from None
    try:
        _check_raster(name, location, dataset)
    except BaseException:
        dataset.close()
        raise
    return dataset


def _open_error(name: str, location: str, exc: Exception) -> StrataError:
    if _is_local(location) and not Path(location).exists():
        return StrataNotFoundError(
            f"the {name} raster {location} does not exist; pass the path of an existing file "
            "(StrataSources.from_replica(ROOT) for a replica's)"
        )
    if _is_local(location):
        return StrataError(f"the {name} raster {location} cannot be read as a raster: {exc}")
    return StrataNotFoundError(
        f"the {name} raster {location} cannot be reached: {exc}; check the URL, and for "
        "s3:// URLs the endpoint and credentials in StrataSources.gdal_env"
    )


def _check_raster(name: str, location: str, dataset: DatasetReader) -> None:
    if dataset.count != 1:
        raise StrataError(
            f"the {name} raster {location} has {dataset.count} bands; it must have one band of "
            "class codes (extract it with `gdal_translate -b N`)"
        )
    if dataset.dtypes[0] != "uint8":
        raise StrataError(
            f"the {name} raster {location} holds {dataset.dtypes[0]} values; class codes must be "
            "uint8 (convert with `gdal_translate -ot Byte`)"
        )
    _check_crs(name, location, dataset)
    _check_legend(name, location, dataset)


def _check_crs(name: str, location: str, dataset: DatasetReader) -> None:
    crs = dataset.crs
    if crs is None:
        raise StrataError(
            f"the {name} raster {location} has no CRS; assign one "
            "(`gdal_edit.py -a_srs EPSG:4326 FILE` for longitude/latitude grids)"
        )
    if crs.is_geographic or (crs.is_projected and crs.to_epsg() is not None):
        return
    kind = (
        "projected without an EPSG code" if crs.is_projected else "neither geographic nor projected"
    )
    raise StrataError(
        f"the {name} raster {location} has a CRS that is {kind} ({crs.to_string()[:80]}); "
        "reproject it to EPSG:4326 or to a projected CRS with an EPSG code"
    )


def _check_legend(name: str, location: str, dataset: DatasetReader) -> None:
    """Compare the ``class_names`` tag, where there is one, with the legend of ``name``."""
    tag = dataset.tags().get("class_names")
    if tag is None:
        return
    try:
        names = {int(code): str(label) for code, label in json.loads(tag).items()}
    except (ValueError, AttributeError) as exc:
        raise StrataError(
            f"the {name} raster {location} has an unreadable class_names tag"
        ) from exc
    legend = LEGENDS[name]
    wrong = {code: label for code, label in names.items() if legend.get(code) != label}
    if wrong:
        raise StrataError(
            f"the {name} raster {location} names classes {wrong} that are not in the {name} "
            f"legend; is it the {name} raster?"
        )


# --- reading --------------------------------------------------------------------------------


def read_warped(
    name: str, location: str, *, epsg: int, transform: Affine, shape: tuple[int, int]
) -> NDArray[np.uint8]:
    """Warp a strata raster onto a grid, nearest neighbour; no-data and outside become 0.

    Only the source blocks under the grid are fetched (a rasterio ``WarpedVRT`` held to
    :data:`WARP_TOLERANCE`). Call it inside :func:`raster_env`.

    Parameters
    ----------
    name, location : str
        As :func:`open_raster`.
    epsg : int
        EPSG code of the grid's CRS.
    transform : affine.Affine
        Pixel-to-CRS transform of the grid.
    shape : tuple of int
        ``(height, width)`` of the grid in pixels.

    Returns
    -------
    numpy.ndarray of uint8
        The class codes on the grid, of ``shape``.

    Raises
    ------
    StrataError
        As :func:`open_raster`, or if the read fails.
    """
    height, width = shape
    with (
        open_raster(name, location) as dataset,
        WarpedVRT(
            dataset,
            crs=f"EPSG:{epsg}",
            transform=transform,
            width=width,
            height=height,
            resampling=Resampling.nearest,
            nodata=0,
            tolerance=WARP_TOLERANCE,
        ) as vrt,
    ):
        try:
            return np.asarray(vrt.read(1), dtype=np.uint8)
        except RasterioIOError as exc:
            raise StrataError(f"reading the {name} raster {location} failed: {exc}") from exc
