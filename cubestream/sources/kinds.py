"""The kinds of source a reader accepts, as ``Literal`` types light enough for the command line."""

from __future__ import annotations

from typing import Literal

__all__ = ["DemKind", "Era5Layout"]

DemKind = Literal["auto", "srtm", "copernicus", "vrt", "stac"]
"""Kinds of DEM source (:func:`cubestream.sources.dem.open_dem_source`)."""
Era5Layout = Literal["auto", "cubestream", "arco", "cds", "weatherbench2"]
"""Layouts of an ERA5 source (:mod:`cubestream.sources.era5`); ``auto`` detects it."""
