"""The batch contract with the trainers, and the assembly of a batch from decoded units.

For batch size B, T steps, C bands, V weather variables and an H x W patch, a batch is a dict:

================  ==================  ========  ==========================================
key               shape               dtype     from the store
================  ==================  ========  ==========================================
``s2``            (B, T, C, H, W)     float32   ``s2`` (reflectance in [0, 1])
``kndvi``         (B, T, H, W)        float32   ``kndvi`` (the target)
``mask``          (B, T, H, W)        float32   ``mask`` uint8: 0 valid, 1 gap
``dist_mask``     (B, T, H, W)        float32   ``dist_mask`` int16, days
``weather``       (B, T, V)           float32   ``weather`` (not normalised)
``dem``           (B, H, W)           float32   ``dem`` (not normalised)
``landcover``     (B, H, W)           int64     ``landcover`` uint8
``geomorphons``   (B, H, W)           int64     ``geomorphons`` uint8
``sample``        (B,)                int64     index of the sample in the store
``cube_id``       list of B str       -         ``cube_id``
================  ==================  ========  ==========================================

Only the requested variables appear, plus ``sample`` and ``cube_id`` always. Normalisation is
the trainers' job (``weather`` and ``dem`` carry ``mean``/``std`` attributes in the store).
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
    "batch_nbytes",
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
) -> Batch:
    """A batch of whole samples: rows of decoded buffers, in order.

    A batch that lies in one buffer and keeps the stored dtype is a view of the buffer: no copy.
    Otherwise the rows are copied (and cast) into a new tensor made by ``empty``.

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
    """
    batch: Batch = {}
    for name in variables:
        pieces = [decoded[name][rows] for decoded, rows in parts]
        dtype = BATCH_TORCH_DTYPES[name]
        if len(pieces) == 1 and pieces[0].dtype == dtype:
            batch[name] = pieces[0]
            continue
        out = empty((sum(len(p) for p in pieces), *pieces[0].shape[1:]), dtype)
        row = 0
        for piece in pieces:
            out[row : row + len(piece)].copy_(piece)
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
    variables, cube_id, empty
        As for :func:`rows_batch`.
    """
    batch: Batch = {}
    height = windows[0][0].stop - windows[0][0].start
    width = windows[0][1].stop - windows[0][1].start
    for name in variables:
        first, row = rows[int(items[0, 0])]
        shape = tuple(first[name].shape[1:])
        if name in SPATIAL:
            shape = (*shape[:-2], height, width)
        out = empty((len(items), *shape), BATCH_TORCH_DTYPES[name])
        for index, (sample, patch) in enumerate(items.tolist()):
            decoded, row = rows[sample]
            source = decoded[name][row]
            if name in SPATIAL:
                ys, xs = windows[patch]
                source = source[..., ys, xs]
            out[index].copy_(source)
        batch[name] = out
    return _finish(batch, items[:, 0], cube_id)


def batch_nbytes(batch: Mapping[str, Any]) -> int:
    """Bytes of the tensors of a batch."""
    return sum(v.element_size() * v.nelement() for v in batch.values() if torch.is_tensor(v))
