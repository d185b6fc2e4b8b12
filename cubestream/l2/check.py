"""Validate an L2 store against :mod:`cubestream.l2.schema` (metadata only, no chunk read).

:func:`check_store` is what the loader calls before streaming: it names the first thing that
does not match, and says what to do about it.

=========================================  ====================================================
checked                                    requirement
=========================================  ====================================================
the store                                  exists; not marked ``complete: false`` (a build in
                                           progress or killed)
every variable of ``VARIABLES``            present, with the schema's dimension names and
                                           dtype (``str``: a string dtype; the legacy
                                           float32 of ``s2``/``kndvi`` too); scaled codes
                                           carry ``scale_factor``
dimension sizes                            the same in every variable; ``time`` = 45
chunks                                     every dimension but ``sample`` whole in a
                                           chunk, except ``time`` of the variables of
                                           ``TIME_CHUNKS`` (``s2``: any time chunk)
coordinates                                ``band`` (the ESA names in schema order), ``time``
                                           (0, 10, ..., 440), ``weather_variable``, ``y``,
                                           ``x`` with the matching lengths
normalisation statistics                   ``weather`` attributes ``mean`` and ``std`` (one
                                           finite value per weather variable, std > 0);
                                           ``dem`` attributes ``mean`` and ``std`` (scalars)
=========================================  ====================================================
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import zarr

from cubestream.errors import L2StoreError, L2StoreNotFoundError
from cubestream.l2.encoding import ENCODED, scale_of
from cubestream.l2.schema import BANDS, STEP_DAYS, STEPS, TIME_CHUNKS, VARIABLES
from cubestream.storage import open_group

__all__ = ["check_store"]

_REMEDY = "rebuild it with `cubestream l2 --l1 STORE --locations FILE --out {url}`"


def _dtype_ok(array: Any, dtype: str, legacy: str | None) -> bool:
    kind = np.dtype(array.dtype).kind
    if dtype == "str":
        return kind in "TUO"
    return np.dtype(array.dtype) in {np.dtype(d) for d in (dtype, legacy) if d is not None}


def _stats_ok(values: Any, count: int | None) -> bool:
    if count is None:
        return isinstance(values, int | float) and math.isfinite(values)
    return (
        isinstance(values, list)
        and len(values) == count
        and all(isinstance(v, int | float) and math.isfinite(v) for v in values)
    )


def check_store(url: str, storage_options: dict[str, Any] | None = None) -> dict[str, int]:
    """Check that the store at ``url`` follows the L2 schema; return its dimension sizes.

    Parameters
    ----------
    url : str
        Local path or ``s3://`` URL.
    storage_options : dict, optional
        fsspec options of an ``s3://`` store.

    Raises
    ------
    L2StoreNotFoundError
        If there is no store at ``url``.
    L2StoreError
        Naming the first variable, coordinate or attribute that does not match.
    """
    remedy = _REMEDY.format(url=url)
    try:
        root: Any = open_group(url, storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise L2StoreNotFoundError(f"no L2 store at {url}: {remedy}") from exc
    if root.attrs.get("complete") is False:
        raise L2StoreError(
            f"the L2 store {url} is not complete (a build in progress or stopped): finish it by "
            "running the same `cubestream l2` command again"
        )
    names = set(root.array_keys())
    sizes: dict[str, int] = {}
    for name, spec in VARIABLES.items():
        if name not in names:
            raise L2StoreError(f"the L2 store {url} has no variable {name!r}: {remedy}")
        array = root[name]
        dims = tuple(array.metadata.dimension_names or ())
        if dims != spec.dims:
            raise L2StoreError(f"{name!r} of {url} has dimensions {dims}, not {spec.dims}")
        if not _dtype_ok(array, spec.dtype, spec.legacy_dtype):
            raise L2StoreError(f"{name!r} of {url} has dtype {array.dtype}, not {spec.dtype}")
        if name in ENCODED and np.dtype(array.dtype).kind in "iu":
            try:
                scale = scale_of(array.attrs)
            except ValueError as exc:
                raise L2StoreError(f"{name!r} of {url}: {exc}") from None
            if scale is None:
                raise L2StoreError(
                    f"{name!r} of {url} holds integer codes without a 'scale_factor' "
                    f"attribute: {remedy}"
                )
        for dim, size, chunk in zip(dims, array.shape, array.chunks, strict=True):
            if sizes.setdefault(dim, size) != size:
                raise L2StoreError(
                    f"{name!r} of {url} has {dim}={size}, other variables {sizes[dim]}"
                )
            split_time = dim == "time" and name in TIME_CHUNKS
            if dim != "sample" and chunk != size and not split_time:
                raise L2StoreError(
                    f"{name!r} of {url} is chunked {array.chunks}: every dimension but "
                    f"'sample' (and 'time' of {sorted(TIME_CHUNKS)}) must be whole in a chunk"
                )
    if sizes["time"] != STEPS:
        raise L2StoreError(f"the L2 store {url} has {sizes['time']} time steps, not {STEPS}")
    expected = {
        "band": np.array(BANDS),
        "time": np.arange(STEPS) * STEP_DAYS,
        "weather_variable": None,
        "y": None,
        "x": None,
    }
    for coord, values in expected.items():
        if coord not in names:
            raise L2StoreError(f"the L2 store {url} has no coordinate {coord!r}: {remedy}")
        got = np.asarray(root[coord][...])
        if got.shape != (sizes[coord],):
            raise L2StoreError(f"coordinate {coord!r} of {url} has shape {got.shape}")
        if values is not None and not np.array_equal(got.astype(values.dtype), values):
            raise L2StoreError(f"coordinate {coord!r} of {url} is {got.tolist()}, not {values}")
    weather = dict(root["weather"].attrs)
    for key in ("mean", "std"):
        if not _stats_ok(weather.get(key), sizes["weather_variable"]):
            raise L2StoreError(
                f"'weather' of {url} lacks a valid {key!r} attribute (one finite value per "
                f"weather variable): {remedy}"
            )
    if not all(v > 0 for v in weather["std"]):
        raise L2StoreError(f"'weather' of {url} has a std of 0: normalising would divide by 0")
    dem = dict(root["dem"].attrs)
    for key in ("mean", "std"):
        if not _stats_ok(dem.get(key), None):
            raise L2StoreError(f"'dem' of {url} lacks a scalar {key!r} attribute: {remedy}")
    return sizes
