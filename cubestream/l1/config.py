"""What defines a level-1 build: :class:`L1Config`, the one declaration of the options of L1.

Each option is a field with its help (:func:`cubestream.options.option`); the command's flags,
the ``l1`` section of a pipeline YAML and the pipeline's ``cubestream l1`` command line are
derived from these fields. Light on purpose: the command line imports it to build its parser.
How the build runs (its Dask client) is no part of it: :func:`cubestream.l1.build.build_l1` takes
the client from its caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

from cubestream import __version__
from cubestream.config import RetryPolicy
from cubestream.errors import L1Error
from cubestream.options import nested, option
from cubestream.sources.kinds import DemKind, Era5Layout
from cubestream.sources.offsets import OffsetPolicy
from cubestream.sources.providers import get_provider, provider_names

__all__ = [
    "NATIVE_READ_BLOCK",
    "Reader",
    "READ_BLOCK",
    "AuxiliarySources",
    "IntegrityPolicy",
    "L1Config",
]

READ_BLOCK = 1024
"""Read chunk side (px at 30 m): the COG block of 30 m assets; 8 x 8 boxes."""
NATIVE_READ_BLOCK = 2048
"""Read chunk side (px at 30 m) over 10 m / 20 m assets of 1024 px blocks: whole blocks of both
(6 x 6 at 10 m, 3 x 3 at 20 m); 16 x 16 boxes."""


Reader = Literal["rasterio", "warp", "stackstac"]
"""How the Sentinel-2 read chunks of a level-1 build are read (:class:`L1Config`)."""


@dataclass(frozen=True, kw_only=True)
class IntegrityPolicy:
    """What to do with tiles that miss acquisition dates.

    A date is missing where the gap between two acquisitions exceeds 1.5 revisit intervals (the
    tile's median gap); ``max_missing_dates`` more than that excludes the tile (``"exclude"``) or
    keeps it with the gaps listed in the report (``"flag"``).
    """

    on_missing: Literal["flag", "exclude"] = option(
        "flag", help="keep a tile missing dates with the gaps reported (flag), or exclude it"
    )
    max_missing_dates: int = option(3, help="missing dates a tile may have before on-missing")

    def __post_init__(self) -> None:
        if self.on_missing not in ("flag", "exclude"):
            raise L1Error(f"on_missing must be 'flag' or 'exclude', not {self.on_missing!r}")


@dataclass(frozen=True, kw_only=True)
class AuxiliarySources:
    """Where the auxiliary archives are; a ``None`` source is not built (and reported so).

    Attributes
    ----------
    smap : str, optional
        Prefix holding NSIDC's day folders ``YYYY.MM.DD/SMAP_L4_SM_gph_*.h5`` or the granules
        themselves (path or ``s3://``; :mod:`cubestream.sources.smap`).
    smap_version : str, optional
        SPL4SMGP product version (``"8"``) or science version id (``"Vv8010"``) to read where
        several lie under ``smap``.
    era5 : str, optional
        The ERA5 source: a Zarr store (today's layout, ARCO-ERA5, WeatherBench2) or new-CDS
        NetCDF (a file, glob, folder or ``.zip``).
    srtm : str, optional
        The DEM source (the name is historical; its flag is ``--dem``): a folder or prefix of
        SRTM or Copernicus tiles, a VRT or raster, a STAC items file or ``stac+https://...``
        (:func:`cubestream.sources.dem.open_dem_source`).
    dem_source : {"auto", "srtm", "copernicus", "vrt", "stac"}
        The kind of the DEM source; ``auto`` reads it from the location.
    landcover, geomorphons : str, optional
        Class rasters (ESA WorldCover codes; geomorphons 1..10; 0 = no data), any CRS, path or
        URL: the sampler's strata rasters.
    storage_options : dict
        fsspec options for ``s3://`` sources (SMAP, ERA5).
    era5_margin_deg : float
        Margin of the ERA5 window around the tile's boxes.
    era5_layout : {"auto", "cubestream", "arco", "cds", "weatherbench2"}
        Layout of the ERA5 source (:mod:`cubestream.sources.era5`); ``"auto"`` detects it.
    retry : RetryPolicy
        Retries of the SMAP and ERA5 reads (default: the ``retry`` settings of
        :mod:`cubestream.config` where the config is made; it travels to the Dask tasks).
    """

    smap: str | None = option(
        None,
        help="SMAP L4 SPL4SMGP folder: NSIDC's YYYY.MM.DD/ day folders or the granules (path, s3://)",
    )
    smap_version: str | None = option(
        None, help="SPL4SMGP version to read where several are mixed: 7, 8 or a science id (Vv8010)"
    )
    era5: str | None = option(
        None,
        help="ERA5 source: a Zarr store (today's layout, ARCO-ERA5, WeatherBench2) or new-CDS "
        "NetCDF (a .nc file, glob, folder or .zip); path or URL",
    )
    srtm: str | None = option(
        None,
        name="dem",
        aliases=("srtm",),
        help="DEM: folder/prefix of SRTM (S02E036.tif/.hgt[.zip]) or Copernicus DEM tiles, a VRT"
        " or raster, a STAC items file or stac+https://API[#collection] (default cop-dem-glo-30)",
    )
    dem_source: DemKind = option(
        "auto", help="kind of the --dem source (auto: read from what it points at)"
    )
    landcover: str | None = option(
        None, help="land-cover class raster (WorldCover codes), path or URL"
    )
    geomorphons: str | None = option(None, help="geomorphon class raster (1..10), path or URL")
    storage_options: dict[str, Any] = field(default_factory=dict)
    era5_margin_deg: float = 0.25
    era5_layout: Era5Layout = option(
        "auto",
        help="layout of --era5 (default: detected from its names, dimensions and attributes)",
    )
    retry: RetryPolicy = field(default_factory=RetryPolicy.from_config)


@dataclass(frozen=True, kw_only=True)
class L1Config:
    """Everything that defines a level-1 build.

    Attributes
    ----------
    locations : str
        The locations table (Parquet) of the sampler.
    stac : str
        STAC API URL, or a local items file (``.ndjson``) for file-system archives.
    out : str
        The L1 store (local path or ``s3://`` URL).
    start, end : datetime.date
        Time range (inclusive).
    collection : str
        STAC collection of Sentinel-2 L2A.
    provider : str, optional
        The catalogue's schema, a name in :data:`cubestream.sources.providers.PROVIDERS`
        (``earth-search``, ``earth-search-c1``, ``planetary-computer``, ``cdse``); detected from
        each item by default.
    offset : OffsetPolicy
        How each item's reflectance offset is decided: ``trust`` the metadata, ``verify`` it on
        the pixels (default), or ``detect`` it from the pixels.
    max_cloud_cover : float, optional
        Drop items above this ``eo:cloud_cover``.
    days_per_chunk : int
        Acquisition days per time chunk.
    read_block : int, optional
        Side (px at 30 m) of the chunks read from the COGs; by default per tile, whole COG blocks
        of its assets (:meth:`cubestream.l1.plan.TilePlan.read_block`).
    reader : {"rasterio", "warp", "stackstac"}
        How a read chunk is read: plain rasterio windows on a thread pool (the default,
        :mod:`cubestream.sources.cogread`), the 10 m / 20 m pixels averaged onto the 30 m grid
        in integer arithmetic (:mod:`cubestream.sources.aggregate`); ``warp``: the same windows
        through GDAL's warper (the former path; the pixels equal stackstac's, where the default
        may round a half at a no-data edge the other way); or stackstac (the path before).
    read_threads : int, optional
        Threads reading (and encoding) one chunk under the ``rasterio`` reader; by default
        ``CUBESTREAM_READ_THREADS`` or the machine's cores.
    integrity : IntegrityPolicy
        What to do with tiles missing dates.
    gdal_env : dict
        Extra GDAL options (for example the S3 endpoint and credentials).
    storage_options : dict
        fsspec options for an ``s3://`` store.
    tiles : tuple of str, optional
        Build only these tiles of the table.
    auxiliary : AuxiliarySources
        SMAP, ERA5 and SRTM sources (each optional).
    """

    locations: str = option(help="locations table of `cubestream sample`")
    stac: str = option(help="STAC API URL or a local items file")
    out: str = option(help="L1 store: local path or s3:// URL")
    start: dt.date = option(help="first day, YYYY-MM-DD")
    end: dt.date = option(help="last day, YYYY-MM-DD")
    collection: str = option("sentinel-2-l2a", help="STAC collection id")
    provider: str | None = option(
        None,
        choices=provider_names,
        help="the catalogue's item schema (default: detected from each item)",
    )
    offset: OffsetPolicy = option(
        "verify",
        help="reflectance offset: trust the metadata, verify it on the pixels, detect from them",
    )
    max_cloud_cover: float | None = option(None, help="drop items above this eo:cloud_cover")
    days_per_chunk: int = option(16, help="acquisition days per time chunk")
    read_block: int | None = option(
        None,
        help=f"px at 30 m of each COG read (default: {READ_BLOCK}, or {NATIVE_READ_BLOCK} where "
        "the items' assets are at 10 / 20 m: whole COG blocks)",
    )
    reader: Reader = option(
        "rasterio",
        execution=True,
        help="read chunks with plain rasterio windows on a thread pool (10/20 m pixels averaged "
        "in integer arithmetic), the same through GDAL's warper (former path), or stackstac",
    )
    read_threads: int | None = option(
        None,
        execution=True,
        help="threads reading one chunk (rasterio reader; default CUBESTREAM_READ_THREADS or "
        "the machine's cores)",
    )
    integrity: IntegrityPolicy = nested(IntegrityPolicy)
    gdal_env: dict[str, str] = field(default_factory=dict)
    storage_options: dict[str, Any] = field(default_factory=dict)
    tiles: tuple[str, ...] | None = option(None, help="build only these tiles")
    auxiliary: AuxiliarySources = nested(AuxiliarySources)

    def __post_init__(self) -> None:
        if self.provider is not None:
            get_provider(self.provider)  # a ProviderError naming the known providers

    def signature(self) -> dict[str, Any]:
        """What a finished tile must have been built with to be reused as is."""
        return {
            "stac": self.stac,
            "collection": self.collection,
            "provider": self.provider,
            "offset": self.offset,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "max_cloud_cover": self.max_cloud_cover,
            "days_per_chunk": self.days_per_chunk,
            "smap": self.auxiliary.smap,
            "smap_version": self.auxiliary.smap_version,
            "era5": self.auxiliary.era5,
            "era5_layout": self.auxiliary.era5_layout,
            "srtm": self.auxiliary.srtm,
            "dem_source": self.auxiliary.dem_source,
            "landcover": self.auxiliary.landcover,
            "geomorphons": self.auxiliary.geomorphons,
            "cubestream": __version__,
        }
