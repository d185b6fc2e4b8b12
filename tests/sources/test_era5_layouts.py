"""ERA5 as users have it: ARCO-ERA5, new-CDS NetCDF (plain, zipped, real header), WeatherBench2.

The replica writes the same weather in each layout; the daily values of ``era5_tile`` must equal
those of today's layout (raw forecast accumulations) whatever the layout.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import h5netcdf.legacyapi as netcdf
import numpy as np
import pytest
import xarray as xr
import xarray.backends.zarr as xarray_zarr
import zarr

from cubestream.cli import build_parser
from cubestream.errors import AssetNotFoundError, AssetReadError
from cubestream.l1.auxiliary import AuxiliarySources, write_era5
from cubestream.l1.build import L1Config
from cubestream.l1.era5 import era5_tile
from cubestream.replica.era5 import write_era5 as write_replica_era5
from cubestream.replica.era5_layouts import ARCO_NAMES, CDS_FILES, write_era5_arco, write_era5_cds
from cubestream.replica.layout import ERA5_KEY
from cubestream.replica.spec import ReplicaSpec, preset
from cubestream.replica.world import World
from cubestream.sources import _era5_files as era5_files
from cubestream.sources.era5 import open_era5

START, END = dt.date(2021, 12, 1), dt.date(2021, 12, 10)
BBOX = (36.72, -1.46, 36.86, -1.32)
HEADER = (
    Path(__file__).parents[1] / "data" / "real" / "era5" / "cds_new_ncdump_h_single_2020-01.txt"
)
ARCO_NAMES_SHORT = {long: short for short, long in ARCO_NAMES.items()}


@pytest.fixture(scope="module", autouse=True)
def zip_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(era5_files.CACHE_ENV, str(tmp_path_factory.mktemp("era5-zip-cache")))
        yield


@pytest.fixture(scope="module")
def world() -> World:
    return World(ReplicaSpec.from_dict({**preset("tiny").to_dict(), "end": END.isoformat()}))


@pytest.fixture(scope="module")
def stores(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("era5-layouts")
    write_replica_era5(world, root / "objects")
    write_era5_arco(world, root / "arco.zarr")
    write_era5_cds(world, root / "cds")
    (zipped,) = write_era5_cds(world, root / "cds-zip", zipped=True, era5t_days=2)
    return {
        "cubestream": str(root / "objects" / ERA5_KEY),
        "arco": str(root / "arco.zarr"),
        "cds": str(root / "cds"),
        "cds-glob": str(root / "cds" / "*.nc"),
        "cds-file": str(root / "cds" / CDS_FILES["accum"]),
        "cds-zip": str(zipped),
    }


@pytest.fixture(scope="module")
def today(stores: dict[str, str]) -> xr.DataArray:
    return era5_tile(stores["cubestream"], BBOX, START, END)


def _assert_same_days(got: xr.DataArray, want: xr.DataArray) -> None:
    assert got.dims == want.dims
    np.testing.assert_array_equal(got.era5_variable, want.era5_variable)
    np.testing.assert_allclose(got.latitude, want.latitude)
    np.testing.assert_allclose(got.longitude, want.longitude)
    for name in want.era5_variable.values:
        w, g = want.sel(era5_variable=name).values, got.sel(era5_variable=name).values
        atol = 1e-6 * np.abs(w).max()  # float32 de-accumulation of today's store
        np.testing.assert_allclose(g, w, rtol=1e-6, atol=atol, err_msg=name)
    assert got.attrs["units"] == want.attrs["units"]


@pytest.mark.parametrize(
    ("source", "layout"),
    [("arco", "arco"), ("cds", "cds"), ("cds-glob", "cds"), ("cds-zip", "cds")],
)
def test_every_layout_gives_todays_daily_values(
    stores: dict[str, str], today: xr.DataArray, source: str, layout: str
) -> None:
    got = era5_tile(stores[source], BBOX, START, END)
    assert got.attrs["era5_layout"] == layout
    assert today.attrs["era5_layout"] == "cubestream"
    _assert_same_days(got, today)
    named = era5_tile(stores[source], BBOX, START, END, layout=layout)  # type: ignore[arg-type]
    xr.testing.assert_identical(named, got)


def test_arco_store_is_read_in_its_valid_time_window(world: World, stores: dict[str, str]) -> None:
    raw = xr.open_zarr(stores["arco"])
    assert raw.latitude.values[0] > raw.latitude.values[-1]  # descending, as ARCO
    assert (raw.longitude.values >= 0).all() and (np.diff(raw.longitude.values) > 0).all()
    assert set(ARCO_NAMES.values()) <= set(raw.data_vars)
    assert raw["2m_temperature"].isel(time=0).isnull().all()  # padding: unwritten chunks
    assert raw.attrs["valid_time_stop"] < raw.attrs["valid_time_stop_era5t"]
    ds = open_era5(stores["arco"]).dataset
    assert sorted(map(str, ds.data_vars)) == sorted(ARCO_NAMES)
    assert ds.time.values[0] == np.datetime64(START, "ns")
    # ERA5T days are kept: the window ends with the last ERA5T day, 23:00
    last = np.datetime64(world.days[-1] + dt.timedelta(days=1), "ns") + np.timedelta64(23, "h")
    assert ds.time.values[-1] == last
    assert not ds["t2m"].isnull().any()
    assert ds["tp"].attrs["accumulation_period_hours"] == 1


def test_arco_west_of_greenwich_wraps_0_360_and_keeps_latitude_descending(tmp_path: Path) -> None:
    """A global 0..359.75 ARCO grid; the bbox straddles 0 E; hourly tp varies with longitude."""
    lon = np.arange(0.0, 360.0, 0.25)
    lat = np.array([0.5, 0.25, 0.0, -0.25])
    hours = np.arange(-24, 4 * 24)  # a padded day before the data
    times = np.datetime64("2023-03-01T00", "ns") + hours * np.timedelta64(1, "h")
    amount = np.broadcast_to(1e-4 * (1 + lon / 360), (len(hours), len(lat), len(lon)))
    tp = np.where((hours >= 0)[:, None, None], amount, np.nan).astype(np.float32)
    ds = xr.Dataset(
        {"total_precipitation": (("time", "latitude", "longitude"), tp, {"units": "m"})},
        coords={"time": times, "latitude": lat, "longitude": lon},
        attrs={"valid_time_start": "2023-03-01", "valid_time_stop": "2023-03-03"},
    )
    ds.to_zarr(
        tmp_path / "arco.zarr",
        consolidated=False,
        encoding={"total_precipitation": {"chunks": (1, 4, 1440)}},
    )
    got = era5_tile(
        str(tmp_path / "arco.zarr"),
        (-0.3, 0.1, 0.2, 0.3),
        dt.date(2023, 3, 1),
        dt.date(2023, 3, 2),
        margin_deg=0.1,
        variables=("tp",),
    )
    assert got.attrs["era5_layout"] == "arco"
    np.testing.assert_allclose(got.longitude, [-0.25, 0.0, 0.25])
    np.testing.assert_allclose(got.latitude, [0.25, 0.0])
    want = 24e-4 * (1 + np.array([359.75, 0.0, 0.25]) / 360)
    np.testing.assert_allclose(got.values[:, 0, 0, :], [want, want], rtol=1e-6)
    with pytest.raises(AssetReadError, match=r"does not hold every step .* 2023-03-04T00:00"):
        era5_tile(  # 03-03 needs 03-04 00:00, after valid_time_stop
            str(tmp_path / "arco.zarr"),
            (-0.3, 0.1, 0.2, 0.3),
            dt.date(2023, 3, 1),
            dt.date(2023, 3, 3),
            margin_deg=0.1,
            variables=("tp",),
        )


def test_zarr_layouts_are_opened_reading_coordinates_only(
    stores: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[str] = []
    get = xarray_zarr.ZarrArrayWrapper.__getitem__

    def recording(self: Any, key: Any) -> Any:
        read.append(self._array.basename)
        return get(self, key)

    monkeypatch.setattr(xarray_zarr.ZarrArrayWrapper, "__getitem__", recording)
    for layout in ("cubestream", "arco"):
        ds = open_era5(stores[layout]).dataset
        assert set(read) <= {"time", "latitude", "longitude"}, (layout, set(read))
        assert read  # the coordinates
        read.clear()
    assert np.isfinite(ds["t2m"].isel(time=0).values).all()
    assert read == ["2m_temperature"]  # data only when indexed


def test_deaccumulation_per_convention(
    world: World, stores: dict[str, str], today: xr.DataArray
) -> None:
    """Raw forecasts (today) and hourly amounts ending at the step (ARCO, CDS) of one weather."""
    raw = xr.open_zarr(stores["cubestream"])["tp"].sel(time=slice(str(START), None))
    hourly = open_era5(stores["arco"]).dataset["tp"]
    cds = open_era5(stores["cds"]).dataset["tp"]
    lat, lon = float(today.latitude[3]), float(today.longitude[3])
    raw_cell = _cell(raw, lat, lon)
    hourly_cell = _cell(hourly, lat, lon % 360)
    cds_cell = _cell(cds, lat, lon)
    np.testing.assert_array_equal(cds_cell, hourly_cell[: len(cds_cell)])
    # a raw value is the sum of the hourly amounts since the last 06 or 18 UTC
    for t in range(12, 8 * 24):
        held = (t % 24 - 7) % 12 + 1
        np.testing.assert_allclose(
            raw_cell[t], hourly_cell[t - held + 1 : t + 1].sum(), rtol=2e-6, err_msg=str(t)
        )
    # day D is (D 00:00, D+1 00:00]: hours 01..24, not 00..23 (a naive resample is off)
    days = range(len(world.days) - 1)
    totals = world.drivers["tp"].sel(lat=lat, lon=lon, method="nearest").values[:-1] * 1e-3
    right = [hourly_cell[24 * d + 1 : 24 * d + 25].sum() for d in days]
    naive = [hourly_cell[24 * d : 24 * d + 24].sum() for d in days]
    np.testing.assert_allclose(right, totals, rtol=2e-6, atol=1e-12)
    assert np.abs(np.subtract(naive, totals)).max() > 1e-3 * totals.max() > 0
    tp_sum = _cell(today.sel(era5_variable="tp_sum"), lat, lon)
    want = [hourly_cell[24 * d + 1 : 24 * d + 25].sum() for d in range(len(tp_sum))]
    np.testing.assert_allclose(tp_sum, want, rtol=2e-6)


def _cell(data: xr.DataArray, lat: float, lon: float) -> np.ndarray:
    cell = data.sel(latitude=lat, longitude=lon, method="nearest")
    assert abs(float(cell.latitude) - lat) < 1e-4 and abs(float(cell.longitude) - lon) < 1e-4
    return np.asarray(cell.values, dtype=np.float64)


def test_cds_is_opened_lazily_and_one_file_of_a_download_reads_alone(
    stores: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any) -> Any:
        raise AssertionError("opening read data")

    with monkeypatch.context() as patch:
        patch.setattr(era5_files.Rows, "_get", refuse)
        ds = open_era5(stores["cds"]).dataset
    assert {"t2m", "d2m", "sp", "tp", "e", "pev", "ssr"} == set(ds.data_vars)
    assert ds.time.dtype == np.dtype("datetime64[ns]") and ds.time.to_index().is_unique
    codes = np.asarray(open_era5(stores["cds-zip"]).dataset.expver.values).astype(str)
    assert (codes[-49:] == "0005").all() and (codes[:-49] == "0001").all()  # 2 days of ERA5T
    accum = era5_tile(stores["cds-file"], BBOX, START, END, variables=("tp", "ssr"))
    assert list(accum.era5_variable.values) == ["tp_sum", "ssr_sum"]
    with pytest.raises(AssetReadError, match=r"\['t2m', 'd2m', 'sp'\].*accum and an instant file"):
        era5_tile(stores["cds-file"], BBOX, START, END)


# --- expver ---------------------------------------------------------------------------------------


def _cds_file(path: Path, hours: range, expver: str, t2m: float) -> None:
    """A tiny new-CDS instant file: 2 x 2 cells, t2m constant ``t2m``, tp 1 mm per hour."""
    times = np.datetime64("2024-05-01T00", "ns") + np.array(hours) * np.timedelta64(1, "h")
    shape = (len(times), 2, 2)
    ds = xr.Dataset(
        {
            "t2m": (("valid_time", "latitude", "longitude"), np.full(shape, t2m, np.float32)),
            "tp": (("valid_time", "latitude", "longitude"), np.full(shape, 1e-3, np.float32)),
        },
        coords={
            "valid_time": times,
            "latitude": [1.0, 0.75],
            "longitude": [10.0, 10.25],
            "number": 0,
            "expver": ("valid_time", np.full(len(times), expver, dtype=object)),
        },
    )
    ds["t2m"].attrs.update(units="K", GRIB_stepType="instant")
    ds["tp"].attrs.update(units="m", GRIB_stepType="accum")
    ds.to_netcdf(path, engine="h5netcdf")


def test_expver_era5_wins_where_both_and_era5t_fills_the_rest(tmp_path: Path) -> None:
    # file names sort the ERA5T download first: priority comes from expver, not file order
    _cds_file(tmp_path / "a_era5t.nc", range(20, 73), "0005", 300.0)
    _cds_file(tmp_path / "b_era5.nc", range(0, 49), "0001", 280.0)
    ds = open_era5(str(tmp_path)).dataset
    assert ds.sizes["time"] == 73  # every step once: 0..72 hours
    assert ds.time.to_index().is_unique and ds.time.to_index().is_monotonic_increasing
    expver = np.asarray(ds.expver.values).astype(str)
    t2m = ds["t2m"].values[:, 0, 0]
    np.testing.assert_array_equal(t2m[:49], 280.0)
    np.testing.assert_array_equal(t2m[49:], 300.0)
    assert (expver[:49] == "0001").all() and (expver[49:] == "0005").all()
    daily = era5_tile(
        str(tmp_path),
        (10.0, 0.75, 10.25, 1.0),
        dt.date(2024, 5, 1),
        dt.date(2024, 5, 2),
        margin_deg=0.1,
        variables=("t2m", "tp"),
    )
    np.testing.assert_allclose(daily.sel(era5_variable="t2m_mean")[:, 0, 0], [280.0, 280.0])
    np.testing.assert_allclose(daily.sel(era5_variable="tp_sum")[:, 0, 0], [0.024, 0.024])


def test_hourly_amounts_at_three_hour_steps_are_refused(tmp_path: Path) -> None:
    _cds_file(tmp_path / "x.nc", range(0, 49, 3), "0001", 280.0)
    with pytest.raises(AssetReadError, match=r"tp of the ERA5 store .* amounts over 1 h .* 3 h"):
        era5_tile(
            str(tmp_path / "x.nc"),
            (10.0, 0.75, 10.25, 1.0),
            dt.date(2024, 5, 1),
            dt.date(2024, 5, 1),
            margin_deg=0.1,
            variables=("t2m", "tp"),
        )


# --- the real new-CDS header ----------------------------------------------------------------------

_TYPES = {"int64": "i8", "double": "f8", "float": "f4", "string": str}


def _value(text: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        return text[1:-1].replace('\\"', '"')
    if text.startswith("NaN"):
        return np.float32(np.nan) if text.endswith("f") else np.nan
    if text.endswith("LL"):
        return np.int64(text[:-2])
    return float(text)


def _parse_header(text: str) -> list[dict[str, Any]]:
    """The files of an ``ncdump -h`` listing: dims, variables (type, dims, attrs), globals."""
    files: list[dict[str, Any]] = []
    for line in text.splitlines():
        if m := re.match(r"netcdf (\S+) \{", line):
            files.append({"name": m[1], "dims": {}, "vars": {}, "attrs": {}})
        elif m := re.match(r"\t(\w+) = (\d+) ;$", line):
            files[-1]["dims"][m[1]] = int(m[2])
        elif m := re.match(r"\t(int64|double|float|string) (\w+)(?:\((.*)\))? ;$", line):
            dims = tuple(d.strip() for d in m[3].split(",")) if m[3] else ()
            files[-1]["vars"][m[2]] = {"type": m[1], "dims": dims, "attrs": {}}
        elif m := re.match(r"\t\t(\w*):(\w+) = (.*) ;$", line):
            target = files[-1]["vars"][m[1]]["attrs"] if m[1] else files[-1]["attrs"]
            target[m[2]] = _value(m[3])
    return files


def _write_like(header: dict[str, Any], path: Path, n_times: int) -> dict[str, Any]:
    """A NetCDF-4 file with the header's dims, variables and attributes (time cut to
    ``n_times``); returns the values written, tp being 1e-4 m per hour times the hour of day."""
    sizes = {**header["dims"], "valid_time": n_times}
    seconds = int(np.datetime64("2020-01-01T00", "s").astype(np.int64)) + 3600 * np.arange(n_times)
    hour = (np.arange(n_times) % 24).astype(np.float32)
    values = {
        "number": np.int64(0),
        "valid_time": seconds,
        "latitude": np.linspace(45.0, 35.0, sizes["latitude"]),
        "longitude": np.linspace(-10.0, 5.0, sizes["longitude"]),
        "expver": np.array(["0001"] * n_times, dtype=object),
    }
    with netcdf.Dataset(path, "w") as nc:
        for dim, size in sizes.items():
            nc.createDimension(dim, size)
        for name, spec in header["vars"].items():
            attrs = dict(spec["attrs"])
            fill = attrs.pop("_FillValue", None)
            var = nc.createVariable(name, _TYPES[spec["type"]], spec["dims"], fill_value=fill)
            if name not in values:
                field = 1e-4 * (hour + 1) if name == "tp" else 250.0 + hour
                values[name] = np.broadcast_to(
                    field[:, None, None], [sizes[d] for d in spec["dims"]]
                ).astype(np.float32)
            var[...] = values[name]
            for key, value in attrs.items():
                var.setncattr(key, value)
        for key, value in header["attrs"].items():
            nc.setncattr(key, value)
    return values


def test_a_download_with_the_real_cds_header_is_read_as_cds(tmp_path: Path) -> None:
    accum, instant = _parse_header(HEADER.read_text())
    assert accum["name"] == Path(CDS_FILES["accum"]).stem
    assert instant["name"] == Path(CDS_FILES["instant"]).stem
    assert set(instant["vars"]) >= {"t2m", "sp", "u10", "v10", "msl", "expver", "number"}
    n = 2 * 24 + 1
    tp = _write_like(accum, tmp_path / f"{accum['name']}.nc", n)["tp"][:, 0, 0]
    t2m = _write_like(instant, tmp_path / f"{instant['name']}.nc", n)["t2m"][:, 0, 0]
    with xr.open_dataset(tmp_path / f"{accum['name']}.nc", engine="h5netcdf") as back:
        assert back["tp"].attrs["GRIB_stepType"] == "accum" and str(back.expver[0].values) == "0001"
        assert dict(back.sizes) == {"valid_time": n, "latitude": 41, "longitude": 61}
    source = open_era5(str(tmp_path))
    assert source.layout == "cds"
    assert set(source.dataset.data_vars) == {"tp", "t2m", "sp"}
    daily = era5_tile(
        str(tmp_path),
        (-1.0, 39.0, 0.0, 40.0),
        dt.date(2020, 1, 1),
        dt.date(2020, 1, 2),
        variables=("t2m", "sp", "tp"),
    )
    assert daily.attrs["era5_layout"] == "cds"
    assert float(daily.latitude[0]) > float(daily.latitude[-1])
    tp_days = daily.sel(era5_variable="tp_sum").values[:, 0, 0]
    np.testing.assert_allclose(tp_days, [tp[1:25].sum(), tp[25:49].sum()], rtol=1e-6)
    t2m_days = daily.sel(era5_variable="t2m_mean").values[:, 0, 0]
    np.testing.assert_allclose(t2m_days, [t2m[:24].mean(), t2m[24:48].mean()], rtol=1e-6)


# --- WeatherBench2, unknown and ambiguous layouts -------------------------------------------------


def test_weatherbench2_hourly_and_six_hourly(
    stores: dict[str, str], today: xr.DataArray, tmp_path: Path
) -> None:
    # the same hours as the CDS download, under WeatherBench2's long names and attributes
    cds = open_era5(stores["cds"]).dataset.drop_vars("expver").load()
    hourly = cds.rename({short: long for short, long in ARCO_NAMES.items()})
    hourly.attrs = {}
    for name in hourly.data_vars:
        hourly[name].attrs = {"units": cds[ARCO_NAMES_SHORT[str(name)]].attrs["units"]}
    hourly.to_zarr(tmp_path / "wb2-1h.zarr", zarr_format=3, consolidated=False)
    assert open_era5(str(tmp_path / "wb2-1h.zarr")).layout == "weatherbench2"
    _assert_same_days(era5_tile(str(tmp_path / "wb2-1h.zarr"), BBOX, START, END), today)

    six = hourly.isel(time=slice(0, None, 6))[["2m_temperature", "surface_pressure"]]
    rolled = hourly["total_precipitation"].rolling(time=6).sum()
    six["total_precipitation_6hr"] = rolled.isel(time=slice(0, None, 6))
    six = six.isel(time=slice(1, None))  # the first 6-hour sum needs the hours before
    six.to_zarr(tmp_path / "wb2-6h.zarr", zarr_format=3, consolidated=False)
    got = era5_tile(
        str(tmp_path / "wb2-6h.zarr"),
        BBOX,
        START + dt.timedelta(days=1),
        END,
        variables=("t2m", "tp"),
        layout="weatherbench2",
    )
    want = today.sel(era5_time=slice(str(START + dt.timedelta(days=1)), None))
    tp = want.sel(era5_variable="tp_sum").values
    np.testing.assert_allclose(
        got.sel(era5_variable="tp_sum").values, tp, rtol=1e-5, atol=1e-6 * tp.max()
    )
    with pytest.raises(AssetReadError, match=r"\['e', 'pev', 'ssr'\].*6-hourly store"):
        era5_tile(str(tmp_path / "wb2-6h.zarr"), BBOX, START + dt.timedelta(days=1), END)


def test_unknown_and_ambiguous_layouts_are_errors_naming_the_store(tmp_path: Path) -> None:
    times = np.datetime64("2024-05-01T00", "ns") + np.arange(25) * np.timedelta64(1, "h")
    cube = np.zeros((25, 2, 2), np.float32)
    coords = {"time": times, "latitude": [1.0, 0.75], "longitude": [10.0, 10.25]}
    dims = ("time", "latitude", "longitude")
    xr.Dataset({"swvl1": (dims, cube)}, coords=coords).to_zarr(
        tmp_path / "odd.zarr", consolidated=False
    )
    with pytest.raises(AssetReadError, match=r"unknown ERA5 layout of .*odd\.zarr.*swvl1") as err:
        open_era5(str(tmp_path / "odd.zarr"))
    assert "--era5-layout" in str(err.value) and "valid_time_start" in str(err.value)

    # legacy CDS: short names and `time`, but no accumulation attributes: never guessed
    legacy = xr.Dataset({"tp": (dims, cube + 1e-3)}, coords=coords)
    legacy.to_zarr(tmp_path / "legacy.zarr", consolidated=False)
    with pytest.raises(AssetReadError, match=r"\['tp'\] lack accumulation attributes"):
        open_era5(str(tmp_path / "legacy.zarr"))
    named = era5_tile(
        str(tmp_path / "legacy.zarr"),
        (10.0, 0.75, 10.25, 1.0),
        dt.date(2024, 5, 1),
        dt.date(2024, 5, 1),
        margin_deg=0.1,
        variables=("tp",),
        layout="cds",
    )
    np.testing.assert_allclose(named.values, 0.024, rtol=1e-6)

    both = xr.Dataset(
        {"tp": (dims, cube, {"GRIB_stepType": "accum"}), "2m_temperature": (dims, cube)},
        coords=coords,
        attrs={"valid_time_start": "2024-05-01", "valid_time_stop": "2024-05-01"},
    )
    both.to_zarr(tmp_path / "both.zarr", consolidated=False)
    with pytest.raises(AssetReadError, match=r"ambiguous .*both\.zarr.*\['cubestream', 'arco'\]"):
        open_era5(str(tmp_path / "both.zarr"))
    with pytest.raises(AssetReadError, match=r"odd\.zarr is not in the arco ERA5 layout.*swvl1"):
        open_era5(str(tmp_path / "odd.zarr"), layout="arco")
    with pytest.raises(ValueError, match="era5 layout must be one of"):
        open_era5(str(tmp_path / "both.zarr"), layout="grib")


# --- through fsspec URLs and the L1 writer ------------------------------------------------------


def test_cds_files_and_zip_behind_a_url(stores: dict[str, str], today: xr.DataArray) -> None:
    memory = fsspec.filesystem("memory")
    for name in CDS_FILES.values():
        memory.pipe(f"/era5-all/{name}", Path(stores["cds"], name).read_bytes())
    memory.pipe("/era5-zip/download.zip", Path(stores["cds-zip"]).read_bytes())
    try:
        for url in (
            "memory://era5-all/*.nc",
            "memory://era5-all",
            "memory://era5-zip/download.zip",
        ):
            _assert_same_days(era5_tile(url, BBOX, START, END), today)
        with pytest.raises(AssetNotFoundError, match=r"memory://nowhere/\*\.nc"):
            open_era5("memory://nowhere/*.nc")
    finally:
        memory.rm(["/era5-all", "/era5-zip"], recursive=True)


def test_the_l1_writer_records_the_layout(stores: dict[str, str], tmp_path: Path) -> None:
    url = str(tmp_path / "l1.zarr")
    zarr.open_group(url, mode="w", zarr_format=3).create_group("37MBU")
    values = {}
    for layout in ("cubestream", "arco"):
        aux = AuxiliarySources(era5=stores[layout], era5_layout=layout)  # type: ignore[arg-type]
        assert write_era5(url, None, "37MBU", BBOX, aux, START, END) == "era5"
        era5 = zarr.open_group(url, mode="r")["37MBU"]["era5"]
        assert era5.attrs["era5_layout"] == layout and era5.attrs["complete"]
        values[layout] = era5[...]
    np.testing.assert_allclose(values["arco"], values["cubestream"], rtol=1e-5, atol=1e-6 * 2e7)
    signature = L1Config(
        locations="x",
        stac="y",
        out=url,
        start=START,
        end=END,
        auxiliary=AuxiliarySources(era5=stores["cds"], era5_layout="cds"),
    ).signature()
    assert signature["era5_layout"] == "cds" and signature["era5"] == stores["cds"]


def test_the_l1_command_line_takes_the_layout(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["l1", "--locations", "l.parquet", "--stac", "s", "--out", "o", "--start", "2021-12-01"]
    base += ["--end", "2021-12-10", "--era5", "era5.nc.zip"]
    parser = build_parser()
    assert parser.parse_args(base).era5_layout == "auto"
    assert parser.parse_args([*base, "--era5-layout", "arco"]).era5_layout == "arco"
    with pytest.raises(SystemExit):
        parser.parse_args([*base, "--era5-layout", "grib"])
    assert "invalid choice: 'grib'" in capsys.readouterr().err
