"""Weather: the 10-daily statistics, gaps, the ERA5 cell."""

from __future__ import annotations

import numpy as np
import pytest

from cubestream.errors import UnusableSampleError
from cubestream.l2.weather import era5_at, fill_step_gaps, statistic_of, ten_daily


def test_statistic_follows_the_name() -> None:
    names = ["t2m_mean", "t2m_min", "t2m_max", "tp_sum", "sm_rootzone", "surface_temp_min"]
    assert [statistic_of(n) for n in names] == ["mean", "min", "max", "sum", "mean", "min"]


def test_ten_daily_statistics_over_the_days_of_each_step() -> None:
    days = np.arange(100, 140)
    values = np.stack([days * 1.0, days * 1.0, days * 1.0, np.ones(40)], axis=1)
    steps = np.array([110, 120, 130])
    got = ten_daily(days, values, steps, ["mean", "min", "max", "sum"])
    # step 110 holds days 101..110
    np.testing.assert_allclose(got[:, 0], [105.5, 115.5, 125.5])
    np.testing.assert_allclose(got[:, 1], [101, 111, 121])
    np.testing.assert_allclose(got[:, 2], [110, 120, 130])
    np.testing.assert_allclose(got[:, 3], [10, 10, 10])


def test_missing_days_are_left_out_and_sums_scaled() -> None:
    days = np.arange(1, 31)
    values = np.ones((30, 2))
    values[:5] = np.nan
    values[10:20] = np.nan
    got = ten_daily(days, values, np.array([10, 20, 30]), ["mean", "sum"])
    assert got[0].tolist() == [1.0, 10.0]
    assert np.isnan(got[1]).all()
    filled = fill_step_gaps(got, ["a_mean", "b_sum"])
    assert filled[1].tolist() == [1.0, 10.0]
    with pytest.raises(UnusableSampleError, match="'b'"):
        fill_step_gaps(np.stack([np.ones(3), np.full(3, np.nan)], axis=1), ["a", "b"])


def test_era5_nearest_cell_and_window_mean() -> None:
    lat, lon = np.array([1.0, 0.0, -1.0]), np.array([359.0, 0.0, 1.0])
    values = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    got = era5_at(values, lat, lon, lon=-0.9, lat=-0.8)  # 359 == -1 degree
    assert got[:, 0].tolist() == [6.0, 15.0]
    np.testing.assert_allclose(era5_at(values, lat, lon, 0, 0, "window_mean")[:, 0], [4, 13])
