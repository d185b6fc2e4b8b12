"""The target: kNDVI from the gap-filled reflectance.

``NDVI = (NIR - red) / (NIR + red)`` with NIR = ``B8A`` and red = ``B04`` (reflectance in
``[0, 1]``, after gap filling, so the target is consistent with the filled bands), and
``kNDVI = tanh(NDVI^2)`` (Camps-Valls et al. 2021, the kernel NDVI with sigma = 0.5 (NIR + red)).
``kNDVI`` lies in ``[0, tanh(1)] = [0, 0.7616]``; with ``normalise=True`` it is divided by
``tanh(1)`` to span ``[0, 1]``. Where ``NIR + red = 0`` (both bands exactly 0), NDVI is 0.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NIR", "RED", "kndvi"]

NIR = "B8A"
RED = "B04"


def kndvi(red: np.ndarray, nir: np.ndarray, *, normalise: bool = False) -> np.ndarray:
    """``tanh(NDVI^2)`` (divided by ``tanh(1)`` if ``normalise``), float32.

    Parameters
    ----------
    red, nir : numpy.ndarray
        Reflectance of ``B04`` and ``B8A``, any equal shapes.
    normalise : bool
        Divide by ``tanh(1)`` so the values span ``[0, 1]``.
    """
    red64, nir64 = red.astype(np.float64), nir.astype(np.float64)
    total = nir64 + red64
    ndvi = np.divide(nir64 - red64, total, out=np.zeros_like(total), where=total != 0)
    out: np.ndarray = np.tanh(ndvi**2)
    if normalise:
        out /= np.tanh(1.0)
    return out.astype(np.float32)
