"""ERA5 over a tile: the window, de-accumulated daily sums, daily means, only the time chunks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from cubestream.errors import AssetNotFoundError, AssetReadError
from cubestream.l1.era5 import AGGREGATES, era5_tile, output_names
from cubestream.replica.era5 import write_era5
from cubestream.replica.layout import ERA5_KEY
from cubestream.replica.serve import Endpoints
from cubestream.replica.spec import ReplicaSpec, preset
from cubestream.replica.world import World
from cubestream.testing import read_access_log

START, END = dt.date(2021, 12, 1), dt.date(2021, 12, 10)
BBOX = (36.72, -1.46, 36.86, -1.32)  # the cubes of the tiny window (rows/cols 12..15 of 37MBU)


@pytest.fixture(scope="module")
def world() -> World:
    return World(ReplicaSpec.from_dict({**preset("tiny").to_dict(), "end": END.isoformat()}))


@pytest.fixture(scope="module")
def store(world: World, tmp_path_factory: pytest.TempPathFactory) -> str:
    objects = tmp_path_factory.mktemp("era5-objects")
    write_era5(world, objects)
    return str(objects / ERA5_KEY)


@pytest.fixture(scope="module")
def daily(store: str) -> xr.DataArray:
    return era5_tile(store, BBOX, START, END)


def test_window_and_layout(daily: xr.DataArray) -> None:
    assert daily.dims == ("era5_time", "era5_variable", "latitude", "longitude")
    assert daily.dtype == np.float32
    assert list(daily.era5_variable.values) == output_names(tuple(AGGREGATES))
    assert list(daily.era5_variable.values)[:3] == ["t2m_mean", "t2m_min", "t2m_max"]
    assert {"tp_sum", "e_sum", "pev_sum", "ssr_sum", "d2m_mean", "sp_mean"} <= set(
        daily.era5_variable.values
    )
    days = pd.date_range(START, END, freq="D").values
    np.testing.assert_array_equal(daily.era5_time.values, days)
    # cell centres within 0.25 degrees of the bbox, latitude descending as in the store
    np.testing.assert_allclose(
        daily.latitude, [-1.1, -1.2, -1.3, -1.4, -1.5, -1.6, -1.7], atol=1e-6
    )
    np.testing.assert_allclose(daily.longitude, np.arange(36.5, 37.15, 0.1), atol=1e-6)
    assert np.isfinite(daily.values).all()
    units = dict(zip(daily.era5_variable.values, daily.attrs["units"], strict=True))
    assert units["tp_sum"] == "m" and units["t2m_mean"] == "K" and units["ssr_sum"] == "J m**-2"


def test_daily_sums_equal_the_drivers_daily_totals(world: World, daily: xr.DataArray) -> None:
    """The replica's drivers are daily totals in mm (tp, evap, pev) and J m-2 (ssr)."""
    drivers = world.drivers.sel(
        lat=xr.DataArray(daily.latitude.values.astype(float), dims="latitude"),
        lon=xr.DataArray(daily.longitude.values.astype(float), dims="longitude"),
        method="nearest",
    )
    for name, driver, factor in (
        ("tp_sum", "tp", 1e-3),
        ("e_sum", "evap", -1e-3),
        ("pev_sum", "pev", -1e-3),
        ("ssr_sum", "ssr", 1.0),
    ):
        want = drivers[driver].values * factor  # (day, lat, lon)
        got = daily.sel(era5_variable=name).values
        np.testing.assert_allclose(
            got, want, rtol=2e-6, atol=2e-6 * np.abs(want).max(), err_msg=name
        )
    assert (daily.sel(era5_variable="tp_sum") > 0).any()


def test_daily_means_equal_the_hourly_values(store: str, daily: xr.DataArray) -> None:
    hourly = xr.open_zarr(store).sel(time=slice(str(START), f"{END} 23:00"))
    hourly = hourly.sel(latitude=daily.latitude, longitude=daily.longitude)
    by_day = hourly.resample(time="1D")
    for name, source, stat in (
        ("t2m_mean", "t2m", "mean"),
        ("t2m_min", "t2m", "min"),
        ("t2m_max", "t2m", "max"),
        ("d2m_mean", "d2m", "mean"),
        ("sp_mean", "sp", "mean"),
    ):
        want = getattr(by_day, stat)()[source].values
        assert hourly[source].sizes["time"] == 24 * 10
        np.testing.assert_allclose(daily.sel(era5_variable=name).values, want, rtol=1e-6)


def _raw_forecast_store(path: Path, step: int, lon: np.ndarray) -> np.ndarray:
    """A store of raw-forecast accumulations (starts 06 and 18 UTC) of known hourly amounts.

    The amount of the hour ``(h - 1, h]`` is ``1 + h / 100`` (``h`` counted from 2021-05-31
    00:00) at every cell; returns the totals of 2021-06-01 and 2021-06-02.
    """
    hours = np.arange(0, 3 * 24 + 1)
    amount = 1 + hours / 100
    cumulative = np.cumsum(amount)
    start = hours - ((hours - 7) % 12 + 1)  # the latest 06 or 18 UTC strictly before
    accumulated = cumulative - np.interp(start, hours, cumulative, left=0.0)
    times = np.datetime64("2021-05-31T00", "ns") + hours * np.timedelta64(1, "h")
    keep = hours % step == 0
    lat = np.array([1.0, 0.75, 0.5])
    values = np.broadcast_to(accumulated[keep, None, None], (int(keep.sum()), 3, len(lon)))
    ds = xr.Dataset(
        {"tp": (("time", "latitude", "longitude"), values.astype(np.float32))},
        coords={"time": times[keep], "latitude": lat, "longitude": lon},
    )
    ds.tp.attrs.update(units="m", GRIB_stepType="accum")
    ds.to_zarr(path, zarr_format=3, consolidated=False, encoding={"tp": {"chunks": (8, 3, 720)}})
    return np.asarray([amount[24 * d + 1 : 24 * d + 25].sum() for d in (1, 2)])


@pytest.mark.parametrize("step", [1, 3])
def test_deaccumulation_at_any_step_and_across_the_antimeridian_of_0_360(
    tmp_path: Path, step: int
) -> None:
    lon = np.arange(0.0, 360.0, 0.25)
    want = _raw_forecast_store(tmp_path / "raw.zarr", step, lon)
    got = era5_tile(
        str(tmp_path / "raw.zarr"),
        (-0.3, 0.6, 0.2, 0.9),
        dt.date(2021, 6, 1),
        dt.date(2021, 6, 2),
        margin_deg=0.1,
        variables=("tp",),
    )
    np.testing.assert_allclose(got.longitude, [-0.25, 0.0, 0.25], atol=1e-6)
    np.testing.assert_allclose(got.latitude, [1.0, 0.75, 0.5], atol=1e-6)
    np.testing.assert_allclose(got.sel(era5_variable="tp_sum")[:, 0, 0], want, rtol=1e-6)


def test_errors_name_the_store_and_what_is_missing(store: str, tmp_path: Path) -> None:
    with pytest.raises(AssetNotFoundError, match=r"nowhere\.zarr"):
        era5_tile(str(tmp_path / "nowhere.zarr"), BBOX, START, END)
    with pytest.raises(AssetReadError, match=r"does not hold every step .* to 2021-12-12T00:00"):
        era5_tile(store, BBOX, START, dt.date(2021, 12, 11))
    with pytest.raises(AssetReadError, match="no cell"):
        era5_tile(store, (10.0, 10.0, 10.5, 10.5), START, END)
    with pytest.raises(AssetReadError, match=r"\['swvl1'\]"):
        era5_tile(store, BBOX, START, END, variables=("t2m", "swvl1"))


def test_served_over_s3_reads_only_the_time_chunks_needed(
    replica_root: Path, replica_endpoints: Endpoints
) -> None:
    start, end = dt.date(2022, 1, 5), dt.date(2022, 1, 10)  # all in the second 31-day chunk
    local = era5_tile(str(replica_root / "objects" / ERA5_KEY), BBOX, start, end)
    first = len(read_access_log(replica_endpoints.access_log))
    got = era5_tile(
        replica_endpoints.s3_url(ERA5_KEY),
        BBOX,
        start,
        end,
        storage_options=replica_endpoints.storage_options(),
    )
    xr.testing.assert_equal(got, local)
    with pytest.raises(AssetNotFoundError, match=r"s3://.*/era5/nothing\.zarr"):
        era5_tile(
            replica_endpoints.s3_url("era5/nothing.zarr"),
            BBOX,
            start,
            end,
            storage_options=replica_endpoints.storage_options(),
        )
    keys = [r["key"] for r in read_access_log(replica_endpoints.access_log)[first:]]
    data = {k for k in keys if "/c/" in k and k.split("/")[2] in AGGREGATES}
    assert data == {f"{ERA5_KEY}/{v}/c/1/0/0" for v in AGGREGATES}


def test_throttled_block_reads_are_retried_by_the_policy(
    store: str, daily: xr.DataArray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each block read first fails with a 503: the retry policy reads it again."""
    from cubestream.config import RetryPolicy
    from cubestream.l1 import era5

    real, failed = era5._read, set()

    def throttled(ds: xr.Dataset, name: str, block: slice, window: object, url: str) -> object:
        if (name, block.start) not in failed:
            failed.add((name, block.start))
            raise AssetReadError(f"cannot read {name} of the ERA5 store {url}: 503 SlowDown")
        return real(ds, name, block, window, url)  # type: ignore[arg-type]

    monkeypatch.setattr(era5, "_read", throttled)
    got = era5_tile(store, BBOX, START, END, retry=RetryPolicy(attempts=2, base_delay=0.0))
    xr.testing.assert_identical(got, daily)
    assert failed
    failed.clear()
    with pytest.raises(AssetReadError, match="503 SlowDown"):
        era5_tile(store, BBOX, START, END, retry=RetryPolicy(attempts=1))
