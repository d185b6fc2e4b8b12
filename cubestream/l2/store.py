"""The L2 Zarr v3 store: a template first, then one block of samples per task, then statistics.

Layout (:mod:`cubestream.l2.schema` is the contract): the variables of
:data:`~cubestream.l2.schema.VARIABLES` with their dimensions, dtypes and chunks
(:func:`~cubestream.l2.schema.chunks_of`: ``samples_per_chunk`` samples per chunk, whole but
for ``s2``, chunked along ``time`` in the 9 context steps), the
coordinates ``band``, ``time`` (0, 10, ..., 440), ``weather_variable``, ``y``, ``x``, and extra
per-sample coordinates that place each sample (one chunk each, written with the template):

==============  =======  ==============================================================
extra           dtype    meaning
==============  =======  ==============================================================
``tile``        str      the tile (L1 group) of the cube
``window``      int16    index of the window among the cube's windows, in time order
``epsg``        int32    the tile's UTM CRS
``x_min``       float64  the cube's left edge (m, tile CRS)
``y_max``       float64  the cube's top edge (m, tile CRS)
``lon, lat``    float64  the cube's centre (WGS84)
==============  =======  ==============================================================

Pixel ``(y, x)`` of a sample is centred at ``(x_min + x, y_max + y)`` in EPSG ``epsg``;
:func:`cubestream.georef.open_l2_sample` opens a sample so placed (UTM ``x``/``y``, CRS set).
Once complete, the root's metadata is consolidated (one read opens the store).
Encoding (:mod:`cubestream.l2.encoding`): ``s2`` and ``kndvi`` are written as scaled
``uint16`` codes (:func:`write_block` encodes them) with ``scale_factor``/``add_offset``
attributes; compression: :data:`COMPRESSOR`, zstd level 3 through Blosc with bit shuffle. Both
were chosen by measurement (``benchmarks/encoding.py``, README "L2 encoding"): a 128 px sample
is 20 MB decoded (13.3 MB of it the ``s2`` codes) and about 11 MB stored, against 22 MB for the
float32 store with byte shuffle, and decodes about 3 x faster per core.

Resume state, as in L1
    1. :func:`create_template` writes every array's metadata, the per-sample ``cube_id``,
       ``split``, ``start_time`` and extras, and the coordinates; the root attribute ``build``
       (the build's signature) is written last and marks the template complete.
    2. :func:`write_block` writes one block of samples (one chunk of every per-sample
       variable), ``valid_fraction`` last: a block whose ``valid_fraction`` chunk exists is
       complete (zarr writes each chunk object atomically); :func:`done_blocks` lists them.
    3. :func:`finalise` computes the normalisation statistics (``weather`` ``mean``/``std`` per
       variable over samples and steps, ``dem`` ``mean``/``std`` over samples and pixels, all
       over the ``train`` samples, or all samples when there is none: attribute
       ``statistics_over``) from the store, and sets ``complete`` last.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from cubestream._consolidated import consolidate
from cubestream.errors import L2Error
from cubestream.georef import L2_EXTRA_ATTRS
from cubestream.l1.store import existing_chunks, remove_partials
from cubestream.l2.encoding import ENCODED, encode_array, encoding_attrs
from cubestream.l2.plan import SampleSpec, strings
from cubestream.l2.schema import BANDS, STEP_DAYS, STEPS, VARIABLES, chunks_of
from cubestream.storage import filesystem, open_group

__all__ = [
    "COMPRESSOR",
    "EXTRAS",
    "WRITE_ORDER",
    "create_template",
    "done_blocks",
    "finalise",
    "open_store",
    "read_samples",
    "store_state",
    "sums",
    "write_block",
]

COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")
EXTRAS: dict[str, str] = {
    "tile": "str",
    "window": "int16",
    "epsg": "int32",
    "x_min": "float64",
    "y_max": "float64",
    "lon": "float64",
    "lat": "float64",
    "track": "str",
}
"""Extra per-sample coordinates (see the module docstring)."""
_NOT_OURS = (
    "{url} exists and is not an L2 store made by `cubestream l2`; a build would replace it: "
    "remove it or choose another --out"
)
WRITE_ORDER = (
    "s2",
    "kndvi",
    "mask",
    "dist_mask",
    "weather",
    "dem",
    "landcover",
    "geomorphons",
    "valid_fraction",
)
"""Variables a block task writes, in order: ``valid_fraction`` last marks the block complete."""


def open_store(
    url: str, storage_options: dict[str, Any] | None = None, mode: Literal["r", "r+"] = "r"
) -> Any:
    """Open the L2 store's root group."""
    return open_group(url, storage_options, mode=mode)


def store_state(
    url: str, storage_options: dict[str, Any] | None, signature: dict[str, Any]
) -> Literal["new", "resumed", "complete"]:
    """``new`` (no store, or one built with another signature), ``resumed`` or ``complete``.

    Raises
    ------
    L2Error
        If ``url`` holds something that is not an L2 store made by ``cubestream l2`` (a new
        build would replace it).
    """
    try:
        root = open_store(url, storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        fs, path = filesystem(url, storage_options)
        if fs.exists(path) and fs.ls(path):
            raise L2Error(_NOT_OURS.format(url=url)) from None
        return "new"
    build = root.attrs.get("build")
    if not isinstance(build, dict) or "recipe" not in build:
        raise L2Error(_NOT_OURS.format(url=url))
    if build != signature:
        return "new"
    return "complete" if root.attrs.get("complete") is True else "resumed"


def _create(
    root: Any,
    name: str,
    shape: tuple[int, ...],
    chunks: tuple[int, ...],
    dtype: str,
    dims: tuple[str, ...],
    fill: Any,
) -> Any:
    return root.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=str if dtype == "str" else dtype,
        fill_value=fill,
        compressors=COMPRESSOR,
        dimension_names=dims,
        config={"write_empty_chunks": True},
    )


def _coord(
    root: Any, name: str, values: np.ndarray, attrs: dict[str, Any], dim: str | None = None
) -> None:
    dtype = "str" if values.dtype.kind in "UOT" else str(values.dtype)
    fill = "" if dtype == "str" else 0
    array = _create(root, name, values.shape, values.shape, dtype, (dim or name,), fill)
    array[...] = values
    array.attrs.update(attrs)


def create_template(
    url: str,
    storage_options: dict[str, Any] | None,
    samples: Sequence[SampleSpec],
    *,
    weather: Sequence[str],
    size: int,
    samples_per_chunk: int,
    attrs: dict[str, Any],
    signature: dict[str, Any],
) -> Any:
    """Create the store (replacing any store at ``url``) with its metadata; no pixel is written.

    Parameters
    ----------
    url : str
        The store.
    storage_options : dict, optional
        fsspec options of an ``s3://`` store.
    samples : sequence of SampleSpec
        The samples, in store order.
    weather : sequence of str
        Weather variable names.
    size : int
        Sample side in pixels.
    samples_per_chunk : int
        Samples per chunk along ``sample``.
    attrs : dict
        Root attributes (written before the signature).
    signature : dict
        The build's signature, written last as the root attribute ``build``.
    """
    root: Any = open_group(url, storage_options, mode="w")
    sizes = {
        "sample": len(samples),
        "time": STEPS,
        "band": len(BANDS),
        "y": size,
        "x": size,
        "weather_variable": len(weather),
    }
    for name, spec in VARIABLES.items():
        shape = tuple(sizes[d] for d in spec.dims)
        chunks = chunks_of(name, sizes, samples_per_chunk)
        array = _create(root, name, shape, chunks, spec.dtype, spec.dims, spec.fill)
        array.attrs.update({"long_name": spec.description})
        if name in ENCODED:
            array.attrs.update(encoding_attrs())
    root["s2"].attrs.update({"coordinates": " ".join(EXTRAS)})
    root["start_time"].attrs.update({"units": "days since 1970-01-01"})
    root["dem"].attrs.update({"units": "m"})
    root["cube_id"][...] = np.array([s.cube_id for s in samples])
    root["split"][...] = np.array([s.split for s in samples])
    root["start_time"][...] = np.array([s.start for s in samples], np.int64)
    for name, dtype in EXTRAS.items():
        values = np.array([getattr(s, name) for s in samples])
        values = values if dtype == "str" else values.astype(dtype)
        _coord(root, name, values, L2_EXTRA_ATTRS[name], "sample")
    offsets = (np.arange(size) + 0.5) * 30.0
    _coord(root, "band", np.array(BANDS), {"long_name": "ESA band name"})
    _coord(
        root,
        "time",
        np.arange(STEPS, dtype=np.int64) * STEP_DAYS,
        {"units": "days", "long_name": "days since the sample's start_time"},
    )
    _coord(root, "weather_variable", np.array(list(weather)), {})
    _coord(root, "x", offsets, {"units": "m", "long_name": "pixel centre east of x_min"})
    _coord(root, "y", -offsets, {"units": "m", "long_name": "pixel centre relative to y_max"})
    root.attrs.update({**attrs, "complete": False})
    root.attrs.update({"build": signature})
    return root


def read_samples(url: str, storage_options: dict[str, Any] | None = None) -> list[tuple[str, int]]:
    """``(cube_id, start_time)`` of every sample of a store, in order."""
    root = open_store(url, storage_options)
    ids = strings(root["cube_id"][...])
    starts = np.asarray(root["start_time"][...], np.int64)
    return [(str(c), int(s)) for c, s in zip(ids, starts, strict=True)]


def done_blocks(url: str, storage_options: dict[str, Any] | None = None) -> set[int]:
    """Blocks (chunk indices along ``sample``) whose samples are all written.

    The temporaries of chunk writes a killed build left, in any array, are deleted first
    (:func:`~cubestream.l1.store.remove_partials`): the resume rewrites their blocks.
    """
    root = open_store(url, storage_options, mode="r+")
    remove_partials(root)
    return {key[0] for key in existing_chunks(root, "valid_fraction")}


def write_block(
    url: str, storage_options: dict[str, Any] | None, first: int, values: dict[str, np.ndarray]
) -> int:
    """Write one block of samples from index ``first`` (inside a Dask task); return its bytes."""
    root = open_store(url, storage_options, mode="r+")
    written = 0
    for name in WRITE_ORDER:
        block = values[name]
        if name in ENCODED and block.dtype.kind == "f" and root[name].dtype.kind in "iu":
            block = encode_array(block, ENCODED[name])
        root[name][first : first + len(block)] = block
        written += int(block.nbytes)
    return written


def sums(
    url: str, storage_options: dict[str, Any] | None, lo: int, hi: int, all_samples: bool
) -> dict[str, Any]:
    """Float64 counts, sums and sums of squares of ``weather`` and ``dem`` of samples ``lo:hi``.

    Only the ``train`` samples count, unless ``all_samples``.
    """
    root = open_store(url, storage_options)
    keep = np.ones(hi - lo, bool)
    if not all_samples:
        keep = strings(root["split"][lo:hi]) == "train"
    weather = np.asarray(root["weather"][lo:hi], np.float64)[keep]
    dem = np.asarray(root["dem"][lo:hi], np.float64)[keep]
    return {
        "weather_n": int(weather.shape[0] * weather.shape[1]),
        "weather_sum": weather.sum(axis=(0, 1)).tolist(),
        "weather_sq": (weather**2).sum(axis=(0, 1)).tolist(),
        "dem_n": int(dem.size),
        "dem_sum": float(dem.sum()),
        "dem_sq": float((dem**2).sum()),
    }


def _mean_std(n: int, total: np.ndarray, squares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = total / max(n, 1)
    std = np.sqrt(np.maximum(squares / max(n, 1) - mean**2, 0.0))
    return mean, np.where(std > 0, std, 1.0)


def finalise(
    url: str,
    storage_options: dict[str, Any] | None,
    parts: Sequence[dict[str, Any]],
    over: str,
) -> dict[str, Any]:
    """Write the normalisation statistics from the :func:`sums` of all blocks; mark complete.

    A variable with zero spread gets ``std`` 1, so normalising leaves it finite.
    """
    n_weather = sum(p["weather_n"] for p in parts)
    n_dem = sum(p["dem_n"] for p in parts)
    w_mean, w_std = _mean_std(
        n_weather,
        np.sum([p["weather_sum"] for p in parts], axis=0),
        np.sum([p["weather_sq"] for p in parts], axis=0),
    )
    d_mean, d_std = _mean_std(
        n_dem,
        np.array(sum(p["dem_sum"] for p in parts)),
        np.array(sum(p["dem_sq"] for p in parts)),
    )
    root = open_store(url, storage_options, mode="r+")
    stats = {"mean": [float(v) for v in w_mean], "std": [float(v) for v in w_std]}
    root["weather"].attrs.update({**stats, "statistics_over": over})
    dem = {"mean": float(d_mean), "std": float(d_std)}
    root["dem"].attrs.update({**dem, "statistics_over": over})
    if not all(math.isfinite(v) for v in [*stats["mean"], *stats["std"], *dem.values()]):
        raise L2Error(f"non-finite normalisation statistics {stats} {dem}: a model input has NaN")
    root.attrs.update({"complete": True})
    consolidate(url, storage_options)
    return {"weather": stats, "dem": dem, "over": over}
