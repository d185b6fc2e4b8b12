"""Gap filling reproduces linear series exactly; edges, spatial fill; kNDVI is the formula."""

from __future__ import annotations

import numpy as np
import pytest

from cubestream.errors import UnusableSampleError
from cubestream.l2.fill import fill_steps, reflectance
from cubestream.l2.kndvi import kndvi


def test_gap_filling_reproduces_a_linear_series_exactly() -> None:
    rng = np.random.default_rng(3)
    days = np.arange(0, 600, 5)
    a = rng.uniform(0.05, 0.3, (1, 4, 6, 6))
    b = rng.uniform(-2e-4, 4e-4, (1, 4, 6, 6))
    values = (a + b * days[:, None, None, None]).astype(np.float64)
    valid = rng.random((len(days), 6, 6)) < 0.4
    valid[0], valid[-1] = True, True  # observations on both sides of every step
    steps = np.arange(3, 590, 10)
    filled, spatial = fill_steps(days, values.astype(np.float32), valid, steps)
    expected = a + b * steps[:, None, None, None]
    np.testing.assert_allclose(filled, expected, rtol=0, atol=2e-7)
    assert not spatial.any()


def test_long_gaps_are_linear_and_edges_are_carried() -> None:
    days = np.array([0, 10, 20, 30, 40, 50, 60])
    values = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6], np.float32)[:, None, None, None]
    valid = np.array([False, True, False, False, False, True, False])[:, None, None]
    steps = np.array([0, 5, 10, 30, 50, 55, 60])
    got = fill_steps(days, values, valid, steps)[0][:, 0, 0, 0]
    # before the first valid (day 10) its value; 10 -> 50 linear across the long gap; after
    # the last valid (day 50) its value
    np.testing.assert_allclose(got, [0.1, 0.1, 0.1, 0.3, 0.5, 0.5, 0.5], atol=1e-7)


def test_pixels_never_observed_get_the_spatial_median() -> None:
    days = np.array([0, 10])
    values = np.zeros((2, 1, 1, 3), np.float32)
    values[:, 0, 0] = [[0.1, 0.2, 0.9], [0.3, 0.4, 0.9]]
    valid = np.array([[[True, True, False]], [[True, True, False]]])
    filled, spatial = fill_steps(days, values, valid, np.array([0, 10]))
    assert spatial.tolist() == [[False, False, True]]
    np.testing.assert_allclose(filled[:, 0, 0, 2], [0.15, 0.35], atol=1e-7)
    with pytest.raises(UnusableSampleError, match="no pixel"):
        fill_steps(days, values, np.zeros_like(valid), np.array([0, 10]))


def test_reflectance_scale_and_range() -> None:
    dn = np.array([0, 1, 2500, 10000, 12000], np.uint16)
    np.testing.assert_allclose(reflectance(dn), [0, 1e-4, 0.25, 1.0, 1.0], atol=1e-7)


def test_kndvi_against_the_formula() -> None:
    rng = np.random.default_rng(0)
    red, nir = rng.uniform(0, 1, (2, 50)).astype(np.float32)
    expected = np.tanh(((nir.astype(float) - red) / (nir.astype(float) + red)) ** 2)
    np.testing.assert_allclose(kndvi(red, nir), expected, rtol=1e-6)
    np.testing.assert_allclose(kndvi(red, nir, normalise=True), expected / np.tanh(1), rtol=1e-6)
    assert kndvi(np.float32([0.0]), np.float32([0.0])).tolist() == [0.0]
    assert kndvi(np.float32([0.0]), np.float32([0.5]), normalise=True)[0] == pytest.approx(1.0)
    assert kndvi(red, nir).dtype == np.float32
