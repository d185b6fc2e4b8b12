"""A synthetic L2 store that follows :mod:`cubestream.l2.schema`, for tests and loader benchmarks.

The values are plausible, not physical: smooth seasonal reflectance in [0, 1], kNDVI computed from
it with the formula, a random cloud mask with the matching ``dist_mask``, weather as seasonal
curves with noise, a DEM ramp, land cover and geomorphon patches. Everything follows from
``seed``, so two calls with the same arguments write identical stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec

from cubestream.l2.encoding import ENCODED, encode_array, encoding_attrs
from cubestream.l2.schema import BANDS, SIZE, STEP_DAYS, STEPS, VARIABLES, chunks_of

__all__ = ["WEATHER_VARIABLES", "write_synthetic_l2"]

WEATHER_VARIABLES = ("t2m_mean", "t2m_min", "t2m_max", "tp_sum", "ssr_sum", "sm_rootzone")
_VEGETATION = (10, 20, 30, 40, 90)
_COMPRESSOR = BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle")  # as cubestream.l2.store


def _sample(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    t = np.arange(STEPS, dtype=np.float32)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi)
    green = 0.5 + 0.4 * np.sin(2 * np.pi * t / 36.5 + phase)
    field = rng.uniform(0.3, 1.0, (1, size, size)).astype(np.float32)
    red = np.clip(0.15 - 0.1 * green * field, 0.01, 1)
    nir = np.clip(0.2 + 0.3 * green * field, 0.01, 1)
    s2 = np.empty((STEPS, len(BANDS), size, size), np.float32)
    for b in range(len(BANDS)):
        weight = b / (len(BANDS) - 1)
        s2[:, b] = (1 - weight) * red + weight * nir
    s2[:, BANDS.index("B04")], s2[:, BANDS.index("B8A")] = red, nir
    ndvi = (nir - red) / (nir + red)
    mask = (rng.random((STEPS, size, size)) < 0.3).astype(np.uint8)
    return {
        "s2": s2,
        "kndvi": np.tanh(ndvi**2).astype(np.float32),
        "mask": mask,
        "dist_mask": _dist(mask),
        "weather": _weather(rng),
        "dem": (np.add.outer(np.arange(size), np.arange(size)) + rng.uniform(0, 900)).astype(
            np.float32
        ),
        "landcover": rng.choice(np.array((*_VEGETATION, 50, 60, 80), np.uint8), (size, size)),
        "geomorphons": rng.integers(1, 11, (size, size), dtype=np.uint8),
    }


def _dist(mask: np.ndarray) -> np.ndarray:
    """Days from each step to the next step with a valid observation (capped at the end)."""
    out = np.zeros(mask.shape, np.int16)
    ahead = np.full(mask.shape[1:], (STEPS - 1) * STEP_DAYS, np.int16)
    for t in range(STEPS - 1, -1, -1):
        ahead = np.where(mask[t] == 0, 0, np.minimum(ahead + STEP_DAYS, 32767)).astype(np.int16)
        out[t] = ahead
    return out


def _weather(rng: np.random.Generator) -> np.ndarray:
    t = np.arange(STEPS, dtype=np.float32)[:, None]
    base = np.array([295.0, 288.0, 302.0, 0.003, 2.0e7, 0.25], np.float32)
    amp = np.array([4.0, 4.0, 4.0, 0.002, 4.0e6, 0.08], np.float32)
    noise = rng.normal(0, 0.1, (STEPS, len(WEATHER_VARIABLES))).astype(np.float32)
    return np.asarray(base + amp * (np.sin(2 * np.pi * t / 36.5) + noise), np.float32)


def _create(
    group: Any, name: str, shape: tuple[int, ...], chunks: tuple[int, ...], legacy: bool
) -> Any:
    spec = VARIABLES[name]
    dtype = spec.legacy_dtype if legacy and spec.legacy_dtype else spec.dtype
    array = group.create_array(
        name,
        shape=shape,
        chunks=chunks,
        dtype=str if dtype == "str" else dtype,
        fill_value=spec.fill,
        compressors=_COMPRESSOR,
        dimension_names=spec.dims,
    )
    if name in ENCODED and not legacy:
        array.attrs.update(encoding_attrs())
    return array


def _coord(group: Any, name: str, values: np.ndarray, attrs: dict[str, Any]) -> None:
    array = group.create_array(
        name,
        shape=values.shape,
        chunks=values.shape,
        dtype=str if values.dtype.kind == "U" else values.dtype,
        dimension_names=(name,),
    )
    array[...] = values
    array.attrs.update(attrs)


def write_synthetic_l2(
    path: str | Path,
    samples: int = 8,
    *,
    samples_per_chunk: int = 1,
    size: int = SIZE,
    splits: tuple[str, ...] = ("train", "train", "train", "val", "test"),
    seed: int = 0,
    encoding: Literal["scaled", "float32"] = "scaled",
    time_chunks: dict[str, int] | None = None,
) -> Path:
    """Write a synthetic L2 store of ``samples`` samples; return its path.

    Parameters
    ----------
    path : str or Path
        Store directory (overwritten).
    samples : int
        Number of samples.
    samples_per_chunk : int
        Samples per chunk along ``sample``.
    size : int
        Sample side in pixels (128 in real stores; smaller keeps tests quick).
    splits : tuple of str
        Split of sample ``i`` is ``splits[i % len(splits)]``.
    seed : int
        Seed of every value.
    encoding : {"scaled", "float32"}
        ``s2`` and ``kndvi`` as the store's scaled ``uint16`` codes
        (:mod:`cubestream.l2.encoding`), or as the float32 of stores written before it.
    time_chunks : dict, optional
        Steps per chunk along ``time`` (:func:`~cubestream.l2.schema.chunks_of`): the schema's
        when None, ``{}`` for the layout of stores written before (whole samples).
    """
    path = Path(path)
    root = zarr.open_group(path, mode="w", zarr_format=3)
    sizes = {
        "sample": samples,
        "time": STEPS,
        "band": len(BANDS),
        "y": size,
        "x": size,
        "weather_variable": len(WEATHER_VARIABLES),
    }
    arrays = {}
    for name, spec in VARIABLES.items():
        shape = tuple(sizes[d] for d in spec.dims)
        chunks = chunks_of(name, sizes, samples_per_chunk, time_chunks)
        arrays[name] = _create(root, name, shape, chunks, encoding == "float32")
    rng = np.random.default_rng(seed)
    weather, dem = [], []
    for i in range(samples):
        values = _sample(rng, size)
        for name, value in values.items():
            scaled = name in ENCODED and encoding == "scaled"
            arrays[name][i] = encode_array(value, ENCODED[name]) if scaled else value
        arrays["valid_fraction"][i] = np.float32(1.0 - values["mask"].mean())
        weather.append(values["weather"])
        dem.append(values["dem"])
    arrays["cube_id"][...] = np.array([f"37MBU{i // 28:02d}{i % 28:02d}" for i in range(samples)])
    arrays["split"][...] = np.array([splits[i % len(splits)] for i in range(samples)])
    arrays["start_time"][...] = 18628 + 30 * np.arange(samples, dtype=np.int64)
    arrays["start_time"].attrs.update({"units": "days since 1970-01-01"})
    stacked = np.stack(weather)
    arrays["weather"].attrs.update(
        {"mean": stacked.mean(axis=(0, 1)).tolist(), "std": stacked.std(axis=(0, 1)).tolist()}
    )
    arrays["dem"].attrs.update({"mean": float(np.mean(dem)), "std": float(np.std(dem))})
    offsets = (np.arange(size) + 0.5) * 30.0
    _coord(root, "band", np.array(BANDS), {"long_name": "ESA band name"})
    _coord(root, "time", np.arange(STEPS, dtype=np.int64) * STEP_DAYS, {"units": "days"})
    _coord(root, "weather_variable", np.array(WEATHER_VARIABLES), {})
    _coord(root, "x", offsets, {"units": "m"})
    _coord(root, "y", -offsets, {"units": "m"})
    root.attrs.update({"synthetic": True, "seed": seed})
    return path
