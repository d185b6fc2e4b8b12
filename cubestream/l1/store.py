"""The L1 Zarr v3 store: one group per tile, written as a template first, then chunk by chunk.

Layout of a tile group (DESIGN.md section 3)::

    <tile>/s2          (cube, time, band, y, x) uint16  DN, scale_factor 1e-4, _FillValue 0
    <tile>/scl         (cube, time, y, x)       uint8   scene classification, 0 = no data
    <tile>/data_fraction (cube, time)           float32 share of the cube's pixels with data
    <tile>/dem         (cube, y, x)             float32 SRTM on the tile's 30 m grid
    <tile>/landcover   (cube, y, x)             uint8   WorldCover code (nearest), 0 = no data
    <tile>/geomorphons (cube, y, x)             uint8   geomorphon 1..10 (nearest), 0 = no data
    <tile>/smap        (cube, day, smap_variable) float32
    <tile>/era5        (era5_time, era5_variable, latitude, longitude) float32
    coordinates: cube (cube_id), time, band, y, x (pixel centres' offsets), and per cube
    x_min, y_min, x_max, y_max, lon, lat, min_lon, min_lat, max_lon, max_lat, row, col,
    easting (cube, x) and northing (cube, y): the UTM pixel centres of each cube
    <tile>/spatial_ref ()                      the tile's CRS as a CF grid mapping (with WKT);
                                               every gridded variable names it in grid_mapping

:func:`cubestream.georef.open_l1_cube` opens one cube with UTM ``x``/``y`` and its CRS set
(rioxarray), the one call that places its pixels on the Earth. The root's metadata is
consolidated once the build completes (one read opens the store, over S3 too).

Chunks: ``s2`` one cube x 16 days x all bands x 128 x 128 (4.7 MB raw), ``scl`` and
``data_fraction`` the same along cube and time. No sharding: every chunk is written by one task
with no coordination, a chunk that exists is complete (zarr writes objects atomically: a file is
renamed into place, an S3 PUT is all-or-nothing), so "which chunks exist" is the resume state,
and 1-16 MB chunks keep the object count reasonable (about 10k objects per tile for 224 dates).
The group's ``complete`` attribute is set only after every chunk and every variable is in place.

Chunk keys of the per-cube arrays (``s2``, ``scl``, ``data_fraction``) are ``c.<cube>.<time>...``
(:data:`CHUNK_KEYS`), one file per chunk in the array's folder, instead of zarr's default
``c/<cube>/<time>/...``, a folder per index: that made a file system create about 11 folders per
cube of a tile, and ``mkdir`` was 7 % of all CPU samples of a 676-cube build of the native tile
replica (``perf``, 2 cores, ext4). Object stores have no folders; on a parallel file system a
folder is a metadata operation. Stores written before keep their own keys (zarr reads the
encoding from each array's metadata) and resume as they are (:func:`existing_chunks`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BloscCodec

from cubestream._consolidated import drop_consolidated
from cubestream.georef import CUBE_ATTRS, GEO_COORDINATES, grid_mapping_attrs
from cubestream.l1.plan import CUBE_COLUMNS, TilePlan
from cubestream.l1.sentinel2 import BANDS
from cubestream.storage import open_group, zarr_store

__all__ = [
    "CHUNK_KEYS",
    "COMPRESSOR",
    "create_template",
    "existing_chunks",
    "open_root",
    "remove_partials",
    "write_block",
]

COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
"""zstd through Blosc, bit-shuffled: integer DNs compress about 2-3x."""

CHUNK_KEYS = {"name": "default", "separator": "."}
"""Chunk keys of the per-cube arrays: ``c.<cube>.<time>...``, no folder per index."""


def open_root(
    url: str, storage_options: dict[str, Any] | None = None, mode: Literal["r", "a"] = "a"
) -> Any:
    """Open (or create) the store's root group, local path or ``s3://`` URL.

    For writing (``mode="a"``) the consolidated metadata is dropped first and not used: it is
    written again when the build completes (:mod:`cubestream._consolidated`).
    """
    if mode == "r":
        return open_group(url, storage_options)
    drop_consolidated(url, storage_options)
    return open_group(url, storage_options, mode=mode, use_consolidated=False)


def _array(
    group: Any,
    name: str,
    data: np.ndarray | None,
    *,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: Any,
    dims: tuple[str, ...],
    attrs: dict[str, Any],
    fill: Any = 0,
    keys: dict[str, str] | None = None,
) -> Any:
    """Create ``name`` in ``group`` (overwriting it), write ``data`` if given.

    ``keys`` is the chunk key encoding (zarr's default, a folder per index, when None).
    """
    array = group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=dtype,
        fill_value=fill,
        compressors=COMPRESSOR,
        dimension_names=dims,
        overwrite=True,
        config={"write_empty_chunks": True},
        chunk_key_encoding=keys,
    )
    array.attrs.update(attrs)
    if data is not None:
        array[...] = data
    return array


def _coords(group: Any, plan: TilePlan) -> None:
    n = len(plan.cubes)
    ids = plan.cubes["cube_id"].to_numpy().astype(str)
    _array(
        group,
        "cube",
        ids,
        shape=(n,),
        chunks=(n,),
        dtype=str,
        dims=("cube",),
        attrs={"long_name": "minicube id (tile + box row + box col)"},
        fill="",
    )
    days = np.array([np.datetime64(d, "D") for d in plan.days]).astype("int64")
    _array(
        group,
        "time",
        days,
        shape=(len(days),),
        chunks=(len(days),),
        dtype="int64",
        dims=("time",),
        attrs={
            "units": "days since 1970-01-01",
            "calendar": "proleptic_gregorian",
            "long_name": "acquisition day (UTC)",
        },
    )
    _array(
        group,
        "band",
        np.array(BANDS),
        shape=(len(BANDS),),
        chunks=(len(BANDS),),
        dtype=str,
        dims=("band",),
        attrs={"long_name": "ESA band name"},
        fill="",
    )
    offsets = (np.arange(128) + 0.5) * 30.0
    _array(
        group,
        "x",
        offsets,
        shape=(128,),
        chunks=(128,),
        dtype="float64",
        dims=("x",),
        attrs={"units": "m", "long_name": "pixel centre east of the cube's x_min"},
    )
    _array(
        group,
        "y",
        -offsets,
        shape=(128,),
        chunks=(128,),
        dtype="float64",
        dims=("y",),
        attrs={"units": "m", "long_name": "pixel centre relative to the cube's y_max"},
    )
    for column in CUBE_COLUMNS[1:]:
        values = plan.cubes[column].to_numpy()
        _array(
            group,
            column,
            values,
            shape=(n,),
            chunks=(n,),
            dtype=values.dtype,
            dims=("cube",),
            attrs=CUBE_ATTRS[column],
        )
    _georeference(group, plan)


def _georeference(group: Any, plan: TilePlan) -> None:
    """``spatial_ref`` (the CF grid mapping) and the UTM pixel centres of every cube."""
    _array(
        group,
        "spatial_ref",
        np.array(0, np.int32),
        shape=(),
        chunks=(),
        dtype="int32",
        dims=(),
        attrs=grid_mapping_attrs(plan.epsg),
    )
    n = len(plan.cubes)
    offsets = (np.arange(128) + 0.5) * 30.0
    x_min = plan.cubes["x_min"].to_numpy(np.float64)
    y_max = plan.cubes["y_max"].to_numpy(np.float64)
    for name, values, dim, axis in (
        ("easting", x_min[:, None] + offsets, "x", "x"),
        ("northing", y_max[:, None] - offsets, "y", "y"),
    ):
        _array(
            group,
            name,
            values,
            shape=(n, 128),
            chunks=(n, 128),
            dtype="float64",
            dims=("cube", dim),
            attrs={
                "units": "m",
                "standard_name": f"projection_{axis}_coordinate",
                "long_name": f"{name} of the pixel centre in the tile's UTM CRS",
                "grid_mapping": "spatial_ref",
            },
        )


def create_template(root: Any, plan: TilePlan, build: dict[str, Any]) -> Any:
    """Create the tile's group, its coordinates and empty data arrays (metadata only)."""
    group = root.require_group(plan.tile)
    group.attrs.update(
        {
            "tile": plan.tile,
            "epsg": plan.epsg,
            "resolution": 30,
            "x0": plan.x0,
            "y0": plan.y0,
            "complete": False,
            "build": build,
            "missing_dates": [d.isoformat() for d in plan.missing_dates],
        }
    )
    _coords(group, plan)
    n, t, k = len(plan.cubes), len(plan.days), plan.days_per_chunk
    coords = " ".join((*CUBE_COLUMNS[1:], *GEO_COORDINATES))
    _array(
        group,
        "s2",
        None,
        shape=(n, t, len(BANDS), 128, 128),
        chunks=(1, k, len(BANDS), 128, 128),
        dtype="uint16",
        dims=("cube", "time", "band", "y", "x"),
        keys=CHUNK_KEYS,
        attrs={
            "scale_factor": 1e-4,
            "add_offset": 0.0,
            "_FillValue": 0,
            "coordinates": coords,
            "grid_mapping": "spatial_ref",
            "long_name": "Sentinel-2 L2A surface reflectance (baseline offset removed)",
        },
    )
    _array(
        group,
        "scl",
        None,
        shape=(n, t, 128, 128),
        chunks=(1, k, 128, 128),
        dtype="uint8",
        dims=("cube", "time", "y", "x"),
        keys=CHUNK_KEYS,
        attrs={
            "long_name": "Sentinel-2 scene classification",
            "_FillValue": 0,
            "coordinates": coords,
            "grid_mapping": "spatial_ref",
        },
    )
    _array(
        group,
        "data_fraction",
        None,
        shape=(n, t),
        chunks=(1, k),
        dtype="float32",
        dims=("cube", "time"),
        fill=np.nan,
        keys=CHUNK_KEYS,
        attrs={"long_name": "share of the cube's pixels with data (0: a gap)"},
    )
    return group


def existing_chunks(group: Any, name: str) -> set[tuple[int, ...]]:
    """Indices of the chunks of ``group[name]`` already in the store.

    Keys that are not chunk indices are not chunks: the temporary file of a chunk write that a
    killed build left (:func:`remove_partials`) is not listed, so its chunk is written again.
    """
    array = group[name]
    separator = _separator(array)
    prefix = f"{array.path}/c{separator}"
    found = set()
    for key in _list(array.store, f"{array.path}/"):  # a folder: what a local store lists
        if not key.startswith(prefix):
            continue
        parts = key.removeprefix(prefix).split(separator)
        if len(parts) == array.ndim and all(part.isdigit() for part in parts):
            found.add(tuple(int(part) for part in parts))
    return found


def _separator(array: Any) -> str:
    """The separator of ``array``'s chunk keys (``/`` or ``.``; zarr's default encoding)."""
    encoding = array.metadata.chunk_key_encoding
    if getattr(encoding, "name", "default") != "default":
        raise ValueError(f"the array {array.path} has chunk keys encoded as {encoding!r}")
    return str(encoding.separator)


def remove_partials(group: Any) -> list[str]:
    """Delete the temporaries of chunk writes that a killed build left under ``group``.

    zarr writes a chunk to ``<key>.<hex>.partial`` and renames it into place; a build killed in
    between leaves that file, which zarr never reads. A resume calls this before it lists the
    chunks that exist (:func:`existing_chunks`), so the resumed store holds what a clean build
    holds.

    Returns
    -------
    list of str
        The keys deleted.
    """
    from zarr.core.sync import sync

    prefix = f"{group.path}/" if group.path else ""
    keys = [key for key in _list(group.store, prefix) if key.endswith(".partial")]
    for key in keys:
        sync(group.store.delete(key))
    return keys


def _list(store: Any, prefix: str) -> list[str]:
    from zarr.core.sync import sync

    async def collect() -> list[str]:
        return [key async for key in store.list_prefix(prefix)]

    return list(sync(collect()))


def write_block(
    url: str,
    storage_options: dict[str, Any] | None,
    path: str,
    selection: tuple[slice, ...],
    values: np.ndarray,
) -> int:
    """Write one whole chunk (inside a Dask task); return the bytes written."""
    store = zarr_store(url, storage_options, mode="r+")
    array = zarr.open_array(store, path=path, mode="r+", zarr_format=3)
    array[selection] = values
    return int(values.nbytes)


def cube_table(group: Any) -> pd.DataFrame:
    """The per-cube coordinates of a tile group as a table."""
    data = {column: group[column][...] for column in CUBE_COLUMNS[1:]}
    return pd.DataFrame({"cube_id": group["cube"][...], **data})
