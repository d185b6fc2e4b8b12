"""The replica's noise: a function of each ground position alone, however it is evaluated."""

from __future__ import annotations

import numpy as np
import pytest

from cubestream.replica import noise
from cubestream.replica.noise import _hash, fbm, value_noise


def _reference(lon: np.ndarray, lat: np.ndarray, scale_km: float, salt: int) -> np.ndarray:
    """The noise as first written: every corner hashed per position, all positions at once."""
    step = scale_km / noise.KM_PER_DEG
    u, v = lon / step, lat / step
    iu, iv = np.floor(u), np.floor(v)
    fu = (u - iu).astype(np.float32)
    fv = (v - iv).astype(np.float32)
    fu = fu * fu * (3 - 2 * fu)
    fv = fv * fv * (3 - 2 * fv)
    x0, y0 = iu.astype(np.int64), iv.astype(np.int64)
    top = _hash(x0, y0, salt) * (1 - fu) + _hash(x0 + 1, y0, salt) * fu
    bottom = _hash(x0, y0 + 1, salt) * (1 - fu) + _hash(x0 + 1, y0 + 1, salt) * fu
    return np.asarray(top * (1 - fv) + bottom * fv, dtype=np.float32)


def _grid(n: int, span: float) -> tuple[np.ndarray, np.ndarray]:
    """A slanted ``n x n`` grid of positions around (37.1 E, 3.2 S), ``span`` degrees wide."""
    rows, cols = np.mgrid[0:n, 0:n] / n
    return 37.1 + span * (cols + 0.1 * rows), -3.2 - span * (rows - 0.05 * cols)


@pytest.mark.parametrize("scale_km", [60.0, 3.0, 0.3, 0.06])
@pytest.mark.parametrize("span", [0.01, 2.0])
def test_noise_is_the_same_bits_looked_up_or_hashed(scale_km: float, span: float) -> None:
    """Dense pixels (corners looked up in a lattice table) and sparse ones (hashed) agree."""
    lon, lat = _grid(300, span)
    assert np.array_equal(value_noise(lon, lat, scale_km, 11), _reference(lon, lat, scale_km, 11))


def test_noise_does_not_depend_on_the_chunking(monkeypatch: pytest.MonkeyPatch) -> None:
    lon, lat = _grid(200, 0.5)
    whole = fbm(lon, lat, (5, 1.5, 0.4), (1, 0.5, 0.2), 3)
    monkeypatch.setattr(noise, "CHUNK", 777)
    assert np.array_equal(fbm(lon, lat, (5, 1.5, 0.4), (1, 0.5, 0.2), 3), whole)


def test_noise_broadcasts_positions() -> None:
    lon = np.linspace(36.0, 37.0, 50)[None, :]
    lat = np.linspace(-3.0, -4.0, 40)[:, None]
    out = value_noise(lon, lat, 2.0, 5)
    assert out.shape == (40, 50) and out.dtype == np.float32
    full_lon, full_lat = np.broadcast_arrays(lon, lat)
    assert np.array_equal(out, _reference(full_lon, full_lat, 2.0, 5))
    assert value_noise(np.empty(0), np.empty(0), 2.0, 5).shape == (0,)
