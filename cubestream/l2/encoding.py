"""How the L2 store encodes its float variables: scaled integers, decoded where it is cheapest.

The default was chosen by measurement (``benchmarks/encoding.py``, ``cubestream bench --stages
encoding``): ``s2`` and ``kndvi`` are stored as ``uint16`` codes ``q`` with the CF attributes
``scale_factor`` (:data:`SCALE`, ``1 / 65535``) and ``add_offset`` (0), compressed with Blosc
zstd level 3 and bit shuffle, one sample per chunk. The value of a code is, bit for bit,

    ``float32(q) * float32(scale_factor)``   (one IEEE float32 product, no fused add)

computed by :func:`decode_array` (numpy, CPU) or :func:`decode_tensor` (torch, on any device:
the loader leaves the codes as they are and the GPU decodes them after the batch transfer,
:meth:`cubestream.stream.L2DataModule.on_after_batch_transfer`). Both give the same float32 bits.

Quantisation error
    Encoding rounds to the nearest code (:func:`encode_array`): for a value ``v`` in ``[0, 1]``
    the decoded value differs from ``v`` by at most half a step plus the float32 rounding of
    the product, ``|decoded - v| <= 0.5 / 65535 + 2**-24 <= 7.7e-6`` (:data:`MAX_ERROR`); the
    tests assert it for reflectance and kNDVI. Sentinel-2 L2A reflectance itself comes in steps
    of ``1e-4`` (DN with scale ``1e-4``), 13 times coarser, so the store keeps every L1 level
    apart. kNDVI is encoded from the float reflectance (not recomputed from the codes), so its
    error is the same bound; kNDVI recomputed from the *decoded* bands differs from the stored
    target by at most ``|d kNDVI / d band| * 7.7e-6`` (``benchmarks/encoding.py`` reports the
    largest difference it finds).

Old stores
    Stores written before this encoding hold float32 ``s2`` and ``kndvi`` without
    ``scale_factor``: :func:`scale_of` gives ``None`` and every decoder passes them through, so
    they stay readable as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # torch is the [train] extra: the L2 build does not need it
    import torch

__all__ = [
    "ENCODED",
    "MAX_ERROR",
    "SCALE",
    "decode_array",
    "decode_tensor",
    "encode_array",
    "encoding_attrs",
    "scale_of",
]

SCALE = 1.0 / 65535.0
"""Value of one ``uint16`` code: the codes 0 and 65535 are exactly 0 and 1."""
MAX_ERROR = 0.5 / 65535.0 + 2.0**-24
"""Largest ``|decoded - value|`` for a value in ``[0, 1]``: half a step and one float32 ulp."""
ENCODED: dict[str, str] = {"s2": "uint16", "kndvi": "uint16"}
"""Variables stored as scaled integer codes, and their stored dtype."""


def encoding_attrs() -> dict[str, float]:
    """The CF attributes of an encoded variable (``xarray`` decodes them on its own)."""
    return {"scale_factor": SCALE, "add_offset": 0.0}


def scale_of(attrs: Mapping[str, Any]) -> float | None:
    """``scale_factor`` of an array's attributes, or ``None`` for a plain float array.

    Raises
    ------
    ValueError
        If ``add_offset`` is set and not 0 (the decoders apply the scale only).
    """
    scale = attrs.get("scale_factor")
    if scale is None:
        return None
    if float(attrs.get("add_offset", 0.0)) != 0.0:
        raise ValueError(
            f"add_offset {attrs['add_offset']} is not supported (only scale_factor): rebuild "
            "the store with `cubestream l2`"
        )
    return float(scale)


def encode_array(values: np.ndarray, dtype: str = "uint16", scale: float = SCALE) -> np.ndarray:
    """Codes of ``values`` (in ``[0, 1]``): nearest integer of ``values / scale``, clipped.

    Raises
    ------
    ValueError
        If a value is not finite (model inputs hold no NaN).
    """
    if not np.isfinite(values).all():
        raise ValueError("cannot encode non-finite values: L2 model inputs must be finite")
    top = np.iinfo(dtype).max
    codes = np.rint(np.asarray(values, np.float64) / scale)
    return np.clip(codes, 0, top).astype(dtype)


def decode_array(codes: np.ndarray, scale: float | None) -> np.ndarray:
    """Float32 values of ``codes`` (``float32(q) * float32(scale)``); floats pass unchanged."""
    if scale is None or codes.dtype.kind == "f":
        return np.asarray(codes, np.float32)
    return codes.astype(np.float32) * np.float32(scale)


def decode_tensor(codes: torch.Tensor, scale: float | None) -> torch.Tensor:
    """:func:`decode_array` for torch tensors, on the tensor's device (same float32 bits)."""
    import torch

    if scale is None or codes.is_floating_point():
        return codes.float()
    if codes.dtype == torch.uint16:  # few kernels take uint16: go through int32 (exact)
        codes = codes.to(torch.int32)
    return codes.float() * torch.tensor(scale, dtype=torch.float32, device=codes.device)
