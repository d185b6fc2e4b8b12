"""All exceptions of the cubestream data package.

Each class also inherits the matching builtin, so callers can catch either.
"""

from __future__ import annotations

__all__ = [
    "AreaError",
    "MissingExtraError",
    "AssetNotFoundError",
    "AssetReadError",
    "CubestreamError",
    "GridError",
    "IncompleteSourceWarning",
    "InputError",
    "InputNotFoundError",
    "ItemSchemaError",
    "L1Error",
    "L2Error",
    "L2InputError",
    "L2StoreError",
    "L2StoreNotFoundError",
    "LoaderConfigError",
    "LoaderError",
    "LoaderStoreError",
    "LoaderStoreNotFoundError",
    "NotYetAvailableError",
    "OffsetError",
    "PortInUseError",
    "ProviderError",
    "RemoteServiceError",
    "ReplacedGranuleWarning",
    "ReplicaError",
    "ReplicaNotFoundError",
    "SamplingError",
    "SourceError",
    "SourceKindError",
    "StacItemError",
    "StacSearchError",
    "StrataError",
    "StrataNotFoundError",
    "TileNotFoundError",
    "UnusableSampleError",
    "UsageError",
    "WorkFailedError",
]


class CubestreamError(Exception):
    """Base class of every error raised by cubestream."""


class UsageError(CubestreamError, ValueError):
    """Options that cannot go together, or an option value that cannot be used (exit code 2)."""


class InputError(CubestreamError, ValueError):
    """An input (table, store, config, output) is unreadable, malformed or of the wrong kind."""


class InputNotFoundError(InputError, FileNotFoundError):
    """An input file, directory or store is not where it was asked for."""


class RemoteServiceError(CubestreamError, ConnectionError):
    """A remote service (STAC API, object store, scheduler) cannot be reached or failed."""


class WorkFailedError(CubestreamError, RuntimeError):
    """Part of the work asked for failed (a stage, a job); the message says where (exit code 1)."""


class GridError(CubestreamError, RuntimeError):
    """The Sentinel-2 grid could not be loaded."""


class TileNotFoundError(CubestreamError, KeyError):
    """A tile id is not in the official Sentinel-2 grid."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ReplicaError(CubestreamError, RuntimeError):
    """The local replica could not be created or served."""


class ReplicaNotFoundError(ReplicaError, FileNotFoundError):
    """A replica directory is missing, empty or incomplete."""


class StacItemError(ReplicaError, ValueError):
    """A STAC item of the replica is corrupt."""


class PortInUseError(ReplicaError, OSError):
    """A port asked for is already in use."""


class NotYetAvailableError(CubestreamError, NotImplementedError):
    """A command of the design is not built yet."""


class SamplingError(CubestreamError, ValueError):
    """A location sample cannot be drawn as asked (target, allocation, splits)."""


class StrataError(CubestreamError, ValueError):
    """A strata raster, or the boxes whose strata are asked for, cannot be used."""


class StrataNotFoundError(StrataError, FileNotFoundError):
    """A strata raster is missing or its URL cannot be reached."""


class AreaError(CubestreamError, ValueError):
    """An area to sample (name, bbox or GeoJSON) is malformed or lies outside the tile grid."""


class L1Error(CubestreamError, RuntimeError):
    """The level-1 build cannot go on as asked."""


class StacSearchError(L1Error):
    """A STAC search failed or returned unusable items."""


class AssetReadError(L1Error, OSError):
    """A source asset (COG, HDF5 granule, Zarr store) could not be read."""


class AssetNotFoundError(AssetReadError, FileNotFoundError):
    """A source asset (SMAP granule, ERA5 store, SRTM tile) is not where it was asked for."""


class IncompleteSourceWarning(CubestreamError, UserWarning):  # noqa: N818 (a warning)
    """A source lacks part of what was asked for; the values left out are NaN or counted."""


class SourceKindError(L1Error, ValueError):
    """A source is ambiguous or not of the kind asked for (what was looked for is named)."""


class ReplacedGranuleWarning(CubestreamError, UserWarning):  # noqa: N818 (a warning)
    """A granule was left out for a later processing of the same period (a higher counter)."""


class L2Error(CubestreamError, RuntimeError):
    """The level-2 build cannot go on as asked."""


class L2InputError(L2Error, ValueError):
    """The L1 store, the locations table or the time range lacks what the level-2 build needs."""


class UnusableSampleError(L2Error, ValueError):
    """A sample (a cube's window) cannot be made from its L1 data; the build skips, reports it."""


class L2StoreError(L2Error, ValueError):
    """An L2 store does not follow the schema of :mod:`cubestream.l2.schema`."""


class L2StoreNotFoundError(L2StoreError, FileNotFoundError):
    """An L2 store is not where it was asked for."""


class LoaderError(CubestreamError, RuntimeError):
    """The streaming loader (:mod:`cubestream.stream`) cannot go on as asked."""


class LoaderConfigError(LoaderError, ValueError):
    """Loader settings that cannot work together (patch size, ranks, batch size, a saved state)."""


class LoaderStoreError(LoaderError, ValueError):
    """An L2 store lacks what the loader needs (a variable, a dimension, consistent sizes)."""


class LoaderStoreNotFoundError(LoaderStoreError, FileNotFoundError):
    """An L2 store is not where the loader was asked to read it."""


class SourceError(CubestreamError, ValueError):
    """An archive's item or file cannot be read as the source it is taken for."""


class ItemSchemaError(SourceError):
    """A STAC item lacks a field its provider's schema needs, or two of its fields disagree."""


class ProviderError(SourceError):
    """No provider adapter (or more than one) matches a catalogue's items."""


class OffsetError(SourceError):
    """The reflectance offset of an item can be decided neither from metadata nor pixels."""


class MissingExtraError(CubestreamError, ImportError):
    """A feature needs a package of an extra that is not installed (the message names it)."""
