"""The spatial geometry of an item: the whole sample, or patches with overlap, from xbatcher.

xbatcher's :class:`~xbatcher.BatchSchema` computes the patch selectors on a template that holds
only the ``y`` and ``x`` sizes of a sample, never data: the loader keeps xbatcher's geometry
(patches of ``input_dims`` with ``input_overlap``, patches that do not fit wholly left out) and
does the reading itself, one decoded chunk at a time.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
import xbatcher

from cubestream.errors import LoaderConfigError

__all__ = ["Window", "patch_windows"]

Window = tuple[slice, slice]
"""``(y, x)`` slices of one patch within a sample."""


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, int | np.integer) for v in pair):
        raise LoaderConfigError(f"{name} must be an int or a pair of ints, not {value!r}")
    return int(pair[0]), int(pair[1])


def patch_windows(
    height: int,
    width: int,
    patch: int | tuple[int, int] | None = None,
    overlap: int | tuple[int, int] = 0,
) -> tuple[Window, ...]:
    """The patches of a ``height`` x ``width`` sample, in xbatcher's order (row by row).

    Parameters
    ----------
    height, width : int
        Sample size in pixels.
    patch : int or (int, int), optional
        Patch size ``(y, x)``; the whole sample (one window) by default.
    overlap : int or (int, int)
        Pixels shared by neighbouring patches.

    Raises
    ------
    LoaderConfigError
        If the patch does not fit in the sample or the overlap is not smaller than the patch.
    """
    if patch is None:
        return ((slice(0, height), slice(0, width)),)
    size, shared = _pair(patch, "patch"), _pair(overlap, "overlap")
    if not (0 < size[0] <= height and 0 < size[1] <= width):
        raise LoaderConfigError(f"patch {size} does not fit in a {height} x {width} sample")
    if not (0 <= shared[0] < size[0] and 0 <= shared[1] < size[1]):
        raise LoaderConfigError(f"overlap {shared} must be >= 0 and smaller than patch {size}")
    template = xr.Dataset(coords={"y": np.arange(height), "x": np.arange(width)})
    schema = xbatcher.BatchSchema(
        template,
        input_dims={"y": size[0], "x": size[1]},
        input_overlap={"y": shared[0], "x": shared[1]},
        concat_input_bins=False,
    )
    return tuple((sel[0]["y"], sel[0]["x"]) for sel in schema.selectors.values())
