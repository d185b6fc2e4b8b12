"""The batch contract with the trainers, and the assembly of a batch from decoded units.

For batch size B, T steps, C bands, V weather variables and an H x W patch, a batch is a dict:

================  ==================  ========  ==========================================
key               shape               dtype     from the store
================  ==================  ========  ==========================================
``s2``            (B, T, C, H, W)     float32   ``s2`` uint16 codes x ``scale_factor``
                                                (reflectance in [0, 1])
``kndvi``         (B, T, H, W)        float32   ``kndvi`` codes x ``scale_factor`` (target)
``mask``          (B, T, H, W)        float32   ``mask`` uint8: 0 valid, 1 gap
``dist_mask``     (B, T, H, W)        float32   ``dist_mask`` int16, days
``weather``       (B, T, V)           float32   ``weather`` (not normalised)
``dem``           (B, H, W)           float32   ``dem`` (not normalised)
``landcover``     (B, H, W)           int64     ``landcover`` uint8
``geomorphons``   (B, H, W)           int64     ``geomorphons`` uint8
``sample``        (B,)                int64     index of the sample in the store
``cube_id``       list of B str       -         ``cube_id``
================  ==================  ========  ==========================================

Only the requested variables appear, plus ``sample`` and ``cube_id`` always. A variable read
for its leading steps only (``steps={"s2": 9}``) has that many along ``T``. Normalisation is
the trainers' job (``weather`` and ``dem`` carry ``mean``/``std`` attributes in the store).

Decoded in the loader, or on the device
    With ``decode="loader"`` the loader's workers deliver the dtypes above (codes times
    ``scale_factor``, :mod:`cubestream.l2.encoding`). With ``decode="device"`` every variable
    stays in its stored dtype (``s2`` uint16: half the bytes to copy, pin and transfer; no
    float pass on the CPU) and :func:`decode_batch`, called after the transfer, gives the same
    float32 bits on the GPU.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from cubestream.stream.patches import Window
from cubestream.stream.store import Decoded, Empty

__all__ = [
    "BATCH_DTYPES",
    "BATCH_TORCH_DTYPES",
    "BATCH_VARIABLES",
    "SPATIAL",
    "Batch",
    "Scales",
    "batch_nbytes",
    "decode_batch",
    "patch_batch",
    "rows_batch",
]

BATCH_DTYPES: dict[str, np.dtype[Any]] = {
    "s2": np.dtype(np.float32),
    "kndvi": np.dtype(np.float32),
    "mask": np.dtype(np.float32),
    "dist_mask": np.dtype(np.float32),
    "weather": np.dtype(np.float32),
    "dem": np.dtype(np.float32),
    "landcover": np.dtype(np.int64),
    "geomorphons": np.dtype(np.int64),
}
"""The dtype of each variable in a batch."""
BATCH_VARIABLES = tuple(BATCH_DTYPES)
"""The variables a batch can hold, in the contract's order."""
SPATIAL = frozenset(BATCH_VARIABLES) - {"weather"}
"""The variables with ``y`` and ``x`` as last dimensions (cut to the patch)."""

Batch = dict[str, Any]
"""A batch: tensors by variable name, ``sample`` (int64 tensor) and ``cube_id`` (list of str)."""


BATCH_TORCH_DTYPES: dict[str, torch.dtype] = {
    name: torch.from_numpy(np.empty(0, dtype)).dtype for name, dtype in BATCH_DTYPES.items()
}
Scales = Mapping[str, float | None]
"""``scale_factor`` of each variable stored as integer codes (None or absent: none)."""


def _fill(out: torch.Tensor, piece: torch.Tensor, scale: float | None) -> None:
    """Copy (and cast) ``piece`` into ``out``; codes into a float tensor are scaled in place.

    ``float32(q) * float32(scale)``: the bits of :func:`cubestream.l2.encoding.decode_array`.
    """
    out.copy_(piece)
    if scale is not None and out.is_floating_point() and not piece.is_floating_point():
        out.mul_(torch.tensor(scale, dtype=torch.float32))


def decode_batch(batch: Batch, scales: Scales) -> Batch:
    """A batch in the contract's dtypes from one in stored dtypes, on the batch's device.

    Integer codes of a scaled variable become ``float32(q) * float32(scale)``, other
    variables are cast; tensors already in the contract's dtype are kept as they are.
    """
    out: Batch = dict(batch)
    for name, dtype in BATCH_TORCH_DTYPES.items():
        value = batch.get(name)
        if value is None or value.dtype == dtype:
            continue
        scale = scales.get(name)
        if scale is not None and not value.is_floating_point():
            factor = torch.tensor(scale, dtype=torch.float32, device=value.device)
            out[name] = value.to(torch.float32) * factor
        else:
            out[name] = value.to(dtype)
    return out


def _finish(batch: Batch, samples: np.ndarray, cube_id: np.ndarray) -> Batch:
    batch["sample"] = torch.from_numpy(np.ascontiguousarray(samples, np.int64))
    batch["cube_id"] = [str(cube_id[s]) for s in samples.tolist()]
    return batch


def rows_batch(
    parts: Sequence[tuple[Decoded, slice]],
    samples: np.ndarray,
    *,
    variables: tuple[str, ...],
    cube_id: np.ndarray,
    empty: Empty,
    dtypes: Mapping[str, torch.dtype] = BATCH_TORCH_DTYPES,
    scales: Scales | None = None,
) -> Batch:
    """A batch of whole samples: rows of decoded buffers, in order.

    A batch that lies in one buffer and keeps the stored dtype is a view of the buffer: no copy.
    Otherwise the rows are copied (cast, and codes scaled) into a new tensor made by ``empty``.

    Parameters
    ----------
    parts : sequence of (Decoded, slice)
        Decoded buffers and the rows of each that make the batch, in order.
    samples : numpy.ndarray
        Sample index of each row.
    variables : tuple of str
        The variables of the batch.
    cube_id : numpy.ndarray
        ``cube_id`` of every sample of the store.
    empty : callable
        Makes the tensors that rows are copied into.
    dtypes : mapping
        The dtype of each variable in the batch (the contract's by default).
    scales : mapping, optional
        ``scale_factor`` of the variables stored as codes.
    """
    batch: Batch = {}
    scales = scales or {}
    for name in variables:
        pieces = [decoded[name][rows] for decoded, rows in parts]
        dtype = dtypes[name]
        if len(pieces) == 1 and pieces[0].dtype == dtype:
            batch[name] = pieces[0]
            continue
        out = empty((sum(len(p) for p in pieces), *pieces[0].shape[1:]), dtype)
        row = 0
        for piece in pieces:
            _fill(out[row : row + len(piece)], piece, scales.get(name))
            row += len(piece)
        batch[name] = out
    return _finish(batch, samples, cube_id)


def patch_batch(
    items: np.ndarray,
    rows: Mapping[int, tuple[Decoded, int]],
    *,
    windows: tuple[Window, ...],
    variables: tuple[str, ...],
    cube_id: np.ndarray,
    empty: Empty,
    dtypes: Mapping[str, torch.dtype] = BATCH_TORCH_DTYPES,
    scales: Scales | None = None,
) -> Batch:
    """A batch of patches: each ``(sample, patch)`` item cut from its decoded sample.

    Parameters
    ----------
    items : numpy.ndarray
        ``(B, 2)`` ``(sample, patch)`` pairs.
    rows : mapping
        Where each sample is decoded: its buffer and its row there.
    windows : tuple of Window
        The patch windows (one per patch number).
    variables, cube_id, empty, dtypes, scales
        As for :func:`rows_batch`.
    """
    batch: Batch = {}
    scales = scales or {}
    height = windows[0][0].stop - windows[0][0].start
    width = windows[0][1].stop - windows[0][1].start
    for name in variables:
        first, row = rows[int(items[0, 0])]
        shape = tuple(first[name].shape[1:])
        if name in SPATIAL:
            shape = (*shape[:-2], height, width)
        out = empty((len(items), *shape), dtypes[name])
        for index, (sample, patch) in enumerate(items.tolist()):
            decoded, row = rows[sample]
            source = decoded[name][row]
            if name in SPATIAL:
                ys, xs = windows[patch]
                source = source[..., ys, xs]
            _fill(out[index], source, scales.get(name))
        batch[name] = out
    return _finish(batch, items[:, 0], cube_id)


def batch_nbytes(batch: Mapping[str, Any]) -> int:
    """Bytes of the tensors of a batch."""
    return sum(v.element_size() * v.nelement() for v in batch.values() if torch.is_tensor(v))
