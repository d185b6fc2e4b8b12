"""The candidate encodings of the L2 store, and a writer that re-encodes one store into another.

Private helper of :mod:`benchmarks.encoding`. A :class:`Candidate` names how ``s2`` and
``kndvi`` are stored (float32 as before, float16, or scaled uint16 codes), the codec of every
per-sample variable, the samples per chunk, the steps per chunk of ``s2`` along ``time`` (whole
samples, or the store's chunks of 9 context steps) and how many leading steps of ``s2`` the
loader reads (all, or the trainers' 9 context steps). :func:`rewrite` copies a float32 store (the
samples of today's store) into a candidate, chunk by chunk, so every candidate holds the very
same samples. Masks packed as bits are measured apart (:func:`mask_bits`): the loader reads
the schema's ``(sample, time, y, x)`` masks, which bits would change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from cubestream.l2.encoding import encode_array, encoding_attrs

__all__ = ["CANDIDATES", "CODECS", "Candidate", "codec", "mask_bits", "rewrite"]

Values = Literal["float32", "float16", "uint16"]
CODECS: dict[str, dict[str, Any]] = {
    "blosc-zstd1-shuffle": {"cname": "zstd", "clevel": 1, "shuffle": "shuffle"},
    "blosc-zstd3-shuffle": {"cname": "zstd", "clevel": 3, "shuffle": "shuffle"},
    "blosc-zstd5-shuffle": {"cname": "zstd", "clevel": 5, "shuffle": "shuffle"},
    "blosc-zstd3-bitshuffle": {"cname": "zstd", "clevel": 3, "shuffle": "bitshuffle"},
    "blosc-lz4-shuffle": {"cname": "lz4", "clevel": 5, "shuffle": "shuffle"},
    "zstd3": {"level": 3},
}
"""Codecs by name: Blosc (compressor, level, shuffle) or plain zstd (no shuffle)."""


def codec(name: str) -> Any:
    """The zarr codec of a :data:`CODECS` name."""
    options = CODECS[name]
    return ZstdCodec(**options) if "level" in options else BloscCodec(**options)


@dataclass(frozen=True)
class Candidate:
    """One way to store the L2 samples."""

    name: str
    values: Values
    codec: str
    samples_per_chunk: int = 1
    time_chunk: int | None = None
    """Steps per chunk of ``s2`` along ``time``; None: all 45 (the layout before)."""
    read_steps: int | None = None
    """Leading steps of ``s2`` the loader reads (``steps={"s2": n}``); None: all."""

    def to_dict(self) -> dict[str, Any]:
        """The candidate as plain values."""
        return {
            "name": self.name,
            "values": self.values,
            "codec": self.codec,
            "samples_per_chunk": self.samples_per_chunk,
            "s2_time_chunk": self.time_chunk,
            "s2_read_steps": self.read_steps,
        }

    @property
    def steps(self) -> dict[str, int]:
        """The loader's ``steps`` for this candidate."""
        return {} if self.read_steps is None else {"s2": self.read_steps}


CANDIDATES: tuple[Candidate, ...] = (
    Candidate("today", "float32", "blosc-zstd3-shuffle"),
    Candidate("float16", "float16", "blosc-zstd3-shuffle"),
    Candidate("uint16-zstd1", "uint16", "blosc-zstd1-shuffle"),
    Candidate("uint16-zstd3", "uint16", "blosc-zstd3-shuffle"),
    Candidate("uint16-zstd5", "uint16", "blosc-zstd5-shuffle"),
    Candidate("uint16-zstd3-bitshuffle", "uint16", "blosc-zstd3-bitshuffle"),
    Candidate("uint16-lz4", "uint16", "blosc-lz4-shuffle"),
    Candidate("uint16-zstd3-noshuffle", "uint16", "zstd3"),
    Candidate("uint16-zstd3-4perchunk", "uint16", "blosc-zstd3-shuffle", 4),
    Candidate("bitshuffle-context", "uint16", "blosc-zstd3-bitshuffle", read_steps=9),
    Candidate("bitshuffle-time9", "uint16", "blosc-zstd3-bitshuffle", time_chunk=9),
    Candidate(
        "bitshuffle-time9-context", "uint16", "blosc-zstd3-bitshuffle", time_chunk=9, read_steps=9
    ),
    Candidate(
        "bitshuffle-time3-context", "uint16", "blosc-zstd3-bitshuffle", time_chunk=3, read_steps=9
    ),
)
"""``today`` is the store as it was (float32); the others change one thing at a time. The last
four keep the default encoding (uint16, zstd3 bit shuffle) and change the layout of ``s2``
along ``time`` and the steps the loader reads of it."""
ENCODED = ("s2", "kndvi")


def _values(name: str, block: np.ndarray, values: Values) -> np.ndarray:
    if name not in ENCODED or values == "float32":
        return block
    if values == "float16":
        return block.astype(np.float16)
    return encode_array(block, "uint16")


def rewrite(source: str | Path, target: Path, candidate: Candidate) -> dict[str, Any]:
    """Copy the float32 store ``source`` into ``target`` as ``candidate``; time the writes.

    Returns the write seconds of the per-sample variables and the largest absolute error of
    ``s2`` and ``kndvi`` as decoded (float32) against the source.
    """
    src: Any = zarr.open_group(source, mode="r")
    out: Any = zarr.open_group(target, mode="w", zarr_format=3)
    out.attrs.update(dict(src.attrs))
    seconds, errors = 0.0, {}
    for name, array in src.arrays():
        dims = tuple(array.metadata.dimension_names or ())
        per_sample = dims[:1] == ("sample",) and len(dims) > 1
        dtype = array.dtype
        if name in ENCODED and candidate.values != "float32":
            dtype = np.dtype(candidate.values)
        chunks = (
            (min(candidate.samples_per_chunk, array.shape[0]), *array.shape[1:])
            if per_sample
            else array.chunks
        )
        if name == "s2" and candidate.time_chunk is not None:
            chunks = (chunks[0], min(candidate.time_chunk, array.shape[1]), *chunks[2:])
        new = out.create_array(
            name,
            shape=array.shape,
            chunks=chunks,
            dtype=dtype,
            fill_value=array.fill_value,
            compressors=codec(candidate.codec) if per_sample else array.compressors,
            dimension_names=dims,
        )
        new.attrs.update(dict(array.attrs))
        if name in ENCODED and candidate.values == "uint16":
            new.attrs.update(encoding_attrs())
        if not per_sample:
            new[...] = array[...]
            continue
        step = chunks[0]
        worst = 0.0
        for lo in range(0, array.shape[0], step):
            block = np.asarray(array[lo : lo + step])
            values = _values(name, block, candidate.values)
            started = time.perf_counter()
            new[lo : lo + step] = values
            seconds += time.perf_counter() - started
            if name in ENCODED:
                decoded = _decoded(values, candidate.values)
                worst = max(worst, float(np.abs(decoded - block.astype(np.float64)).max()))
        if name in ENCODED:
            errors[name] = worst
    return {"write_seconds": round(seconds, 3), "max_abs_error": errors}


def _decoded(values: np.ndarray, kind: Values) -> np.ndarray:
    from cubestream.l2.encoding import SCALE, decode_array

    return decode_array(values, SCALE if kind == "uint16" else None).astype(np.float64)


def mask_bits(source: str | Path, target: Path, codec_name: str) -> dict[str, Any]:
    """``mask`` as uint8 and packed 8 pixels a byte: stored bytes, decode and unpack seconds."""
    group: Any = zarr.open_group(source, mode="r")
    mask = np.asarray(group["mask"][...])
    out: Any = zarr.open_group(target, mode="w", zarr_format=3)
    results = {}
    for kind, values in (("uint8", mask), ("bits", np.packbits(mask, axis=-1))):
        array = out.create_array(
            kind,
            shape=values.shape,
            chunks=(1, *values.shape[1:]),
            dtype=values.dtype,
            compressors=codec(codec_name),
        )
        array[...] = values
        started = time.process_time()
        read = np.asarray(array[...])
        decode = time.process_time() - started
        started = time.process_time()
        if kind == "bits":
            unpacked = np.unpackbits(read, axis=-1, count=mask.shape[-1])
            assert np.array_equal(unpacked, mask)
        unpack = time.process_time() - started
        results[kind] = {
            "stored_bytes_per_sample": round(array.nbytes_stored() / mask.shape[0]),
            "decode_cpu_s_per_sample": round(decode / mask.shape[0], 5),
            "unpack_cpu_s_per_sample": round(unpack / mask.shape[0], 5),
        }
    return {"codec": codec_name, **results}
