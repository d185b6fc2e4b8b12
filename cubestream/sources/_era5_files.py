"""Finding and opening the files of an ERA5 source, lazily; rows gathered from several files.

Private helpers of :mod:`cubestream.sources.era5`. A source is a Zarr store, or NetCDF files: a
file, a glob, a folder of ``.nc`` files or a ``.zip`` of them, the zip extracted once into
``$CUBESTREAM_ERA5_CACHE`` or the temporary folder, keyed by its path, size and time stamps.
:class:`Rows` reads the first axis of a variable stitched from several files, only when indexed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray
from xarray.backends import BackendArray
from xarray.core import indexing

from cubestream.errors import AssetNotFoundError, AssetReadError
from cubestream.storage import filesystem, zarr_store

__all__ = ["CACHE_ENV", "Rows", "open_parts"]

CACHE_ENV = "CUBESTREAM_ERA5_CACHE"
"""Environment variable naming the folder zips are extracted into (default: the temporary one)."""

_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf", ".zip")
_ZARR_MARKERS = ("zarr.json", ".zgroup", ".zmetadata")


class Rows(BackendArray):
    """Rows (the first axis) gathered lazily from variables of several files.

    Row ``i`` is row ``row[i]`` of ``parts[part[i]]``; indexing reads, per file, the rows between
    the first and the last wanted (outer indexing on the other axes).
    """

    def __init__(self, parts: list[xr.Variable], part: NDArray[np.intp], row: NDArray[np.intp]):
        self.parts, self.part, self.row = parts, part, row
        self.shape = (len(part), *parts[0].shape[1:])
        self.dtype = parts[0].dtype

    def __getitem__(self, key: indexing.ExplicitIndexer) -> Any:
        return indexing.explicit_indexing_adapter(
            key, self.shape, indexing.IndexingSupport.OUTER, self._get
        )

    def _get(self, key: tuple[Any, ...]) -> NDArray[Any]:
        rows = np.arange(self.shape[0])[key[0]]
        wanted = np.atleast_1d(rows)
        pieces: list[tuple[NDArray[np.intp], NDArray[Any]]] = []
        for p in np.unique(self.part[wanted]):
            mine = np.flatnonzero(self.part[wanted] == p)
            local = self.row[wanted[mine]]
            lo, hi = int(local.min()), int(local.max())
            block = np.asarray(self.parts[p][(slice(lo, hi + 1), *key[1:])])
            pieces.append((mine, block[local - lo]))
        if not pieces:
            return np.asarray(self.parts[0][(slice(0, 0), *key[1:])])
        out = np.empty((len(wanted), *pieces[0][1].shape[1:]), dtype=pieces[0][1].dtype)
        for mine, values in pieces:
            out[mine] = values
        return out[0] if np.ndim(rows) == 0 else out


def _is_netcdf(fs: Any, path: str) -> bool:
    if any(c in path for c in "*?["):
        return True
    if path.rstrip("/").lower().endswith(_NETCDF_SUFFIXES):
        return True
    if ".zarr" in path.rsplit("/", 1)[-1].lower() or not fs.isdir(path):
        return False
    return not any(fs.exists(f"{path.rstrip('/')}/{m}") for m in _ZARR_MARKERS)


def _netcdf_paths(fs: Any, path: str, url: str) -> list[str]:
    if any(c in path for c in "*?["):
        found = sorted(fs.glob(path))
    elif fs.isdir(path):
        found = sorted(p for p in fs.ls(path, detail=False) if p.lower().endswith(_NETCDF_SUFFIXES))
    else:
        found = [path] if fs.exists(path) else []
    if not found:
        raise AssetNotFoundError(f"no ERA5 NetCDF (.nc or .zip) file found at {url}")
    return found


def _unzipped(fs: Any, path: str) -> list[str]:
    """The ``.nc`` members of a zip, extracted once into a cache folder (per zip identity)."""
    info = fs.info(path)
    stamps = [str(info.get(k)) for k in ("size", "mtime", "LastModified", "ETag", "created")]
    key = "|".join([fs.unstrip_protocol(path), *stamps])
    cache = Path(os.environ.get(CACHE_ENV) or Path(tempfile.gettempdir()) / "cubestream-era5")
    root = cache / hashlib.sha1(key.encode()).hexdigest()
    if not root.is_dir():
        cache.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(prefix="partial-", dir=cache))
        with fs.open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:
            members = [m for m in archive.namelist() if m.lower().endswith((".nc", ".nc4"))]
            if not members:
                raise AssetReadError(f"the zip {path} holds no .nc file ({archive.namelist()})")
            for member in members:  # streamed: a global month is gigabytes
                with archive.open(member) as src, open(part / Path(member).name, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 24)
        try:
            os.rename(part, root)
        except OSError:  # another process extracted it first
            shutil.rmtree(part, ignore_errors=True)
    return sorted(str(p) for p in root.iterdir() if p.suffix in (".nc", ".nc4"))


def _open_netcdf(target: Any, name: str, url: str) -> xr.Dataset:
    """Open one NetCDF file (a local path or an open file object) lazily."""
    try:
        return xr.open_dataset(target, chunks=None, cache=False)
    except FileNotFoundError as exc:
        raise AssetNotFoundError(f"ERA5 NetCDF {name} not found ({url}): {exc}") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise AssetReadError(
            f"cannot open the ERA5 NetCDF {name} of {url}: {exc} (NetCDF-4 files need h5netcdf)"
        ) from exc


def _open_zarr(url: str, storage_options: dict[str, Any] | None) -> xr.Dataset:
    """Open the store lazily (no Dask, no caching: indexing reads only the chunks it meets)."""
    try:
        with warnings.catch_warnings():  # a store without consolidated metadata is fine
            warnings.filterwarnings("ignore", "Failed to open Zarr store with consolidated")
            store = zarr_store(url, storage_options)
            return xr.open_dataset(
                store,  # type: ignore[arg-type]  # the zarr engine takes a Store; typed as path
                engine="zarr",
                chunks=None,
                cache=False,
            )
    except FileNotFoundError as exc:
        raise AssetNotFoundError(f"ERA5 Zarr store not found: {url} ({exc})") from exc
    except (OSError, ValueError, KeyError) as exc:
        raise AssetReadError(f"cannot open the ERA5 Zarr store {url}: {exc}") from exc


def open_parts(
    url: str, storage_options: dict[str, Any] | None
) -> tuple[list[tuple[str, xr.Dataset]], bool]:
    """The opened datasets of ``url`` and whether they are NetCDF files."""
    fs, path = filesystem(url, storage_options)
    if not _is_netcdf(fs, path):
        return [(url, _open_zarr(url, storage_options))], False
    local = "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))
    parts = []
    for found in _netcdf_paths(fs, path, url):
        if found.lower().endswith(".zip"):
            parts += [(f, _open_netcdf(f, f, url)) for f in _unzipped(fs, found)]
        else:
            parts.append(
                (found, _open_netcdf(found if local else fs.open(found, "rb"), found, url))
            )
    return parts, True
