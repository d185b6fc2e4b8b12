"""The L2 store's contract as code: dimensions, variables, dtypes, chunks (DESIGN.md section 3).

One store for all tiles. Every model input is finite (no NaN); the loader and the trainers rely
on the names, dimension orders and dtypes below, and :func:`check_store` verifies them.

========================  ==================================  =========  =====================
variable                  dimensions                          dtype      meaning
========================  ==================================  =========  =====================
``s2``                    (sample, time, band, y, x)          uint16     gap-filled reflectance
                                                                         in [0, 1], scaled
``kndvi``                 (sample, time, y, x)                uint16     target, tanh(NDVI^2),
                                                                         scaled
``mask``                  (sample, time, y, x)                uint8      1: no valid observation
                                                                         in (t-1, t]
``dist_mask``             (sample, time, y, x)                int16      days to the next valid
                                                                         observation
``weather``               (sample, time, weather_variable)    float32    ERA5 and SMAP per step
``dem``                   (sample, y, x)                      float32    elevation (m)
``landcover``             (sample, y, x)                      uint8      ESA WorldCover code
``geomorphons``           (sample, y, x)                      uint8      landform 1..10
``valid_fraction``        (sample,)                           float32    share of (time, y, x)
                                                                         with ``mask == 0``
``cube_id``, ``split``    (sample,)                           str
``start_time``            (sample,)                           int64      days since 1970-01-01
========================  ==================================  =========  =====================

Coordinates: ``band`` (ESA names), ``time`` (days since the sample's start: 0, 10, ..., 440),
``weather_variable`` (names), ``y`` and ``x`` (pixel centre offsets in metres from the cube's
upper-left corner). ``weather`` holds ``mean`` and ``std`` attributes (one value per weather
variable, over the ``train`` samples) and ``dem`` holds scalar ``mean`` and ``std``, for
normalisation by the trainers.

``s2`` and ``kndvi`` are scaled ``uint16`` codes with the CF attributes ``scale_factor``
(``1 / 65535``) and ``add_offset`` (0): :mod:`cubestream.l2.encoding` decodes them and bounds the
quantisation error (7.7e-6). Stores written before that encoding hold them as float32
(:attr:`Variable.legacy_dtype`); they remain readable.

Chunks hold ``samples_per_chunk`` whole samples (1 by default, or a small block) along
``sample``, and every other dimension whole, except ``s2`` along ``time``: it is chunked in
:data:`TIME_CHUNKS` steps (9, the context length of the trainers: 5 chunks per sample), so a
reader that needs only the context steps decodes only the first chunk of each sample
(``cubestream.stream``, ``steps=``). One sample's ``s2`` is 13.3 MB of uint16 codes before
compression, 2.65 MB per chunk of 9 steps. Stores written before (``s2`` in one chunk per
sample) remain readable; the time chunk was chosen by measurement (``benchmarks/encoding.py``,
README "L2 encoding").
"""

from __future__ import annotations

from dataclasses import dataclass

from cubestream.l1.sentinel2 import BANDS

__all__ = [
    "BANDS",
    "SIZE",
    "STEPS",
    "STEP_DAYS",
    "TIME_CHUNKS",
    "VARIABLES",
    "Variable",
    "chunks_of",
]

STEPS = 45
"""Ten-daily steps per sample: 450 days, five full seasons."""
STEP_DAYS = 10
SIZE = 128
"""Sample side in pixels (30 m)."""


@dataclass(frozen=True)
class Variable:
    """One variable of the L2 store."""

    dims: tuple[str, ...]
    dtype: str
    fill: object
    description: str
    legacy_dtype: str | None = None
    """The dtype of stores written before the scaled encoding, still accepted."""


VARIABLES: dict[str, Variable] = {
    "s2": Variable(
        ("sample", "time", "band", "y", "x"),
        "uint16",
        0,
        "gap-filled reflectance in [0, 1]",
        legacy_dtype="float32",
    ),
    "kndvi": Variable(
        ("sample", "time", "y", "x"), "uint16", 0, "kNDVI = tanh(NDVI^2)", legacy_dtype="float32"
    ),
    "mask": Variable(
        ("sample", "time", "y", "x"), "uint8", 1, "1 if no valid observation in (t-1, t]"
    ),
    "dist_mask": Variable(
        ("sample", "time", "y", "x"), "int16", 0, "days from step t to the next valid observation"
    ),
    "weather": Variable(
        ("sample", "time", "weather_variable"), "float32", 0.0, "ERA5 and SMAP per step"
    ),
    "dem": Variable(("sample", "y", "x"), "float32", 0.0, "SRTM elevation (m)"),
    "landcover": Variable(("sample", "y", "x"), "uint8", 0, "ESA WorldCover code, 0 = no data"),
    "geomorphons": Variable(("sample", "y", "x"), "uint8", 0, "geomorphon 1..10, 0 = no data"),
    "valid_fraction": Variable(("sample",), "float32", 0.0, "share of pixels with mask == 0"),
    "cube_id": Variable(("sample",), "str", "", "minicube id"),
    "split": Variable(("sample",), "str", "", "train / val / test"),
    "start_time": Variable(("sample",), "int64", 0, "first day of the sample, days since 1970"),
}
"""The per-sample variables of the store, by name."""


TIME_CHUNKS: dict[str, int] = {"s2": 9}
"""Steps per chunk along ``time`` of the variables not whole in a chunk: ``s2`` in chunks of
the 9 context steps (the trainers read only those of ``s2``; README "L2 encoding")."""


def chunks_of(
    name: str,
    sizes: dict[str, int],
    samples_per_chunk: int,
    time_chunks: dict[str, int] | None = None,
) -> tuple[int, ...]:
    """Chunk shape of ``name``: ``samples_per_chunk`` samples, ``time`` as ``time_chunks`` says.

    Parameters
    ----------
    name : str
        A key of :data:`VARIABLES`.
    sizes : dict
        Size of every dimension.
    samples_per_chunk : int
        Samples per chunk along ``sample``.
    time_chunks : dict, optional
        Steps per chunk along ``time`` by variable (:data:`TIME_CHUNKS` when None; ``{}``:
        every variable whole along ``time``, the layout of stores written before).
    """
    dims = VARIABLES[name].dims
    steps = (TIME_CHUNKS if time_chunks is None else time_chunks).get(name)
    chunks = []
    for dim in dims:
        if dim == "sample":
            chunks.append(min(samples_per_chunk, sizes[dim]))
        elif dim == "time" and steps is not None:
            chunks.append(min(steps, sizes[dim]))
        else:
            chunks.append(sizes[dim])
    return tuple(chunks)
