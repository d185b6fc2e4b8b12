"""Gap filling: per-pixel reflectance at the 10-daily step days, linear in time.

Reflectance is ``DN * scale_factor + add_offset`` of the L1 ``s2`` variable (``1e-4`` and ``0``:
L1 already removed the processing-baseline offset), clipped to ``[0, 1]``. For every pixel,
band and step day ``d_t``, with the valid observations (:mod:`cubestream.l2.masks`) the build
read (the window plus ``reach`` days on each side, inside the L1 record):

=================================================  =========================================
case                                               value at ``d_t``
=================================================  =========================================
a valid observation on ``d_t``                     that observation
valid observations before (``p``) and after        linear between the latest before and the
(``n``) ``d_t``                                    earliest after: ``v_p + (d_t - p) (v_n -
                                                   v_p) / (n - p)``, whatever the gap's length
only before (after the last valid observation)     the latest before, carried forward
only after (before the first valid observation)    the earliest after, carried backward
no valid observation at all in what was read       the median, over the pixels filled above,
                                                   of the same band and step (spatial fill)
=================================================  =========================================

Long gaps are bridged linearly like short ones: ``mask`` and ``dist_mask`` tell the model where
the values are interpolated and how far the next observation is. A window whose pixels have no
valid observation at all cannot be filled: :class:`~cubestream.errors.UnusableSampleError`.
Values stay in ``[0, 1]`` (they are convex combinations of observations).

Memory: the observations ``(time, band, y, x)`` float32 and the output ``(step, band, y, x)``
float32; the weights are computed once and applied band by band.
"""

from __future__ import annotations

import numpy as np

from cubestream.errors import UnusableSampleError
from cubestream.l2.masks import gather, next_valid, previous_valid

__all__ = ["fill_steps", "reflectance"]


def reflectance(dn: np.ndarray, scale: float = 1e-4, offset: float = 0.0) -> np.ndarray:
    """Reflectance in ``[0, 1]`` (float32) from L1 DN."""
    values = dn.astype(np.float32) * np.float32(scale) + np.float32(offset)
    return np.clip(values, 0.0, 1.0, out=values)


def fill_steps(
    days: np.ndarray, values: np.ndarray, valid: np.ndarray, steps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Values at the step days, filled by the rules of the module docstring.

    Parameters
    ----------
    days : numpy.ndarray
        Acquisition days ``(time,)``, increasing.
    values : numpy.ndarray
        Observations ``(time, band, y, x)`` float32 (values of invalid observations are ignored).
    valid : numpy.ndarray
        Valid observations ``(time, y, x)``.
    steps : numpy.ndarray
        Step days ``(step,)``.

    Returns
    -------
    filled : numpy.ndarray
        ``(step, band, y, x)`` float32.
    spatial : numpy.ndarray
        ``(y, x)`` bool: the pixels filled spatially (no valid observation at all).

    Raises
    ------
    UnusableSampleError
        If no pixel has a valid observation.
    """
    n = valid.shape[0]
    spatial = np.asarray(~valid.any(axis=0))
    if spatial.all():
        raise UnusableSampleError("no pixel has a valid observation to fill from")
    before = gather(previous_valid(valid), np.searchsorted(days, steps, side="right") - 1, -1)
    after = gather(next_valid(valid), np.searchsorted(days, steps, side="left"), n)
    lo = np.clip(np.where(before >= 0, before, after), 0, n - 1)
    hi = np.clip(np.where(after < n, after, before), 0, n - 1)
    days = np.asarray(days, np.int64)
    d_lo, d_hi = days[lo], days[hi]
    span = np.maximum(d_hi - d_lo, 1)
    step = np.asarray(steps, np.int64).reshape(-1, *([1] * (valid.ndim - 1)))
    weight = np.where(d_hi > d_lo, (step - d_lo) / span, 0.0)
    filled = np.empty((len(steps), values.shape[1], *valid.shape[1:]), np.float32)
    for b in range(values.shape[1]):
        v_lo = np.take_along_axis(values[:, b], lo, axis=0).astype(np.float64)
        v_hi = np.take_along_axis(values[:, b], hi, axis=0).astype(np.float64)
        filled[:, b] = v_lo + weight * (v_hi - v_lo)
    if spatial.any():
        filled[:, :, spatial] = np.median(filled[:, :, ~spatial], axis=-1)[..., None]
    return filled, spatial
