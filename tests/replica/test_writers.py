"""The SMAP, ERA5, SRTM and strata writers put the replica world in the archives' real formats."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import rasterio
import xarray as xr
from pyproj import Transformer

from cubestream.errors import ReplicaError
from cubestream.replica.era5 import write_era5
from cubestream.replica.layout import ERA5_KEY, smap_key, srtm_key, strata_key
from cubestream.replica.smap import VARIABLES, write_smap
from cubestream.replica.spec import ReplicaSpec, preset
from cubestream.replica.srtm import write_srtm
from cubestream.replica.statics import CLIMATE_CLASSES, GEOMORPHON_CLASSES, LANDCOVER_CLASSES
from cubestream.replica.strata import write_strata
from cubestream.replica.world import World

# EASE-Grid 2.0 global 9 km, from the NSIDC grid definition (independent of the writer's constants)
EASE_CELL = 9008.055210146
EASE_X0, EASE_Y0 = -17367530.4451615, 7314540.8306386
J2000 = dt.datetime(2000, 1, 1, 11, 58, 55, 816000)


def _world(**changes: object) -> World:
    return World(
        ReplicaSpec.from_dict({**preset("tiny").to_dict(), "end": "2021-12-05", **changes})
    )


@pytest.fixture(scope="session")
def world() -> World:
    return _world()


@pytest.fixture(scope="session")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("objects")


@pytest.fixture(scope="session")
def smap_keys(world: World, objects: Path) -> list[str]:
    return write_smap(world, objects)


@pytest.fixture(scope="session")
def era5(world: World, objects: Path) -> xr.Dataset:
    write_era5(world, objects)
    return xr.open_zarr(objects / ERA5_KEY)


@pytest.fixture(scope="session")
def srtm_keys(world: World, objects: Path) -> list[str]:
    return write_srtm(world, objects)


@pytest.fixture(scope="session")
def strata_keys(world: World, objects: Path) -> list[str]:
    return write_strata(world, objects, resolution_deg=0.002)


def _interp(world: World, name: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a daily driver at points: ``(day, point)``."""
    field = world.drivers[name].sortby("lat")
    points = {"lon": xr.DataArray(lon, dims="p"), "lat": xr.DataArray(lat, dims="p")}
    return field.interp(points, method="linear").values


def _granules(objects: Path, keys: list[str], name: str) -> np.ndarray:
    """One ``Geophysical_Data`` variable of every granule: ``(day, 8, row, col)``."""
    stack = []
    for key in keys:
        with h5py.File(objects / key) as f:
            stack.append(f["Geophysical_Data"][name][...])
    values = np.stack(stack)
    return values.reshape(-1, 8, *values.shape[1:])


# --- SMAP -------------------------------------------------------------------------------------


def test_smap_granules_have_real_names_eight_per_day(
    world: World, objects: Path, smap_keys: list[str]
) -> None:
    expected = [
        smap_key(dt.datetime.combine(day, dt.time(3 * k))) for day in world.days for k in range(8)
    ]
    assert smap_keys == expected
    assert len(smap_keys) == 8 * 5
    assert smap_keys[0] == (
        "smap/SPL4SMGP.007/2021.12.01/SMAP_L4_SM_gph_20211201T013000_Vv7032_001.h5"
    )
    pattern = re.compile(r"SMAP_L4_SM_gph_\d{8}T(01|04|07|10|13|16|19|22)3000_Vv7032_001\.h5")
    assert all(pattern.fullmatch(Path(key).name) for key in smap_keys)
    assert all((objects / key).is_file() for key in smap_keys)


def test_smap_coordinates_are_the_global_ease_grid(objects: Path, smap_keys: list[str]) -> None:
    with h5py.File(objects / smap_keys[0]) as f:
        row0, col0 = int(f.attrs["ease_row_offset"]), int(f.attrs["ease_col_offset"])
        x, y = f["x"][...], f["y"][...]
        lat, lon = f["cell_lat"][...], f["cell_lon"][...]
        rows, cols = f["cell_row"][...], f["cell_column"][...]
    assert x.dtype == y.dtype == np.float64 and lat.dtype == lon.dtype == np.float32
    np.testing.assert_allclose(x, EASE_X0 + (col0 + np.arange(x.size) + 0.5) * EASE_CELL, rtol=0)
    np.testing.assert_allclose(y, EASE_Y0 - (row0 + np.arange(y.size) + 0.5) * EASE_CELL, rtol=0)
    assert (rows == row0 + np.arange(y.size)[:, None]).all()
    assert (cols == col0 + np.arange(x.size)[None, :]).all()
    gx, gy = np.meshgrid(x, y)
    want_lon, want_lat = Transformer.from_crs(6933, 4326, always_xy=True).transform(gx, gy)
    np.testing.assert_allclose(lon, want_lon, atol=1e-5)
    np.testing.assert_allclose(lat, want_lat, atol=1e-5)


def test_smap_crop_covers_the_world_with_margin(
    world: World, objects: Path, smap_keys: list[str]
) -> None:
    with h5py.File(objects / smap_keys[0]) as f:
        lat, lon = f["cell_lat"][...], f["cell_lon"][...]
    min_lon, min_lat, max_lon, max_lat = world.bbox
    assert lon.min() < min_lon and lon.max() > max_lon
    assert lat.min() < min_lat and lat.max() > max_lat


def test_smap_fill_only_over_open_water(world: World, objects: Path, smap_keys: list[str]) -> None:
    with h5py.File(objects / smap_keys[3]) as f:
        lat, lon = f["cell_lat"][...], f["cell_lon"][...]
        water = world.statics.landcover(lon.astype(float), lat.astype(float)) == 80
        assert water.any() and not water.all()
        for name in VARIABLES:
            ds = f["Geophysical_Data"][name]
            assert ds.dtype == np.float32 and ds.attrs["_FillValue"] == -9999
            assert {"units", "long_name", "valid_min", "valid_max"} <= set(ds.attrs)
            values = ds[...]
            assert ((values == -9999) == water).all(), name
            assert np.isfinite(values).all()
            assert (values[~water] >= ds.attrs["valid_min"]).all(), name
            assert (values[~water] <= ds.attrs["valid_max"]).all(), name


def test_smap_soil_moisture_follows_the_drivers(
    world: World, objects: Path, smap_keys: list[str]
) -> None:
    with h5py.File(objects / smap_keys[0]) as f:
        lat, lon = f["cell_lat"][...].ravel(), f["cell_lon"][...].ravel()
    surface = _granules(objects, smap_keys, "sm_surface").reshape(5, 8, -1)
    rootzone = _granules(objects, smap_keys, "sm_rootzone").reshape(5, 8, -1)
    land = surface[0, 0] != -9999
    assert surface[..., land].min() >= 0.02 and surface[..., land].max() <= 0.45
    want_root = _interp(world, "sm_rootzone", lon, lat)
    want_surface = _interp(world, "sm_surface", lon, lat)
    np.testing.assert_allclose(rootzone[:, 3][:, land], want_root[:, land], atol=1e-5)
    uncapped = (surface[..., land] < 0.45).all(axis=(0, 1))
    daily = surface.mean(axis=1)[:, land][:, uncapped]
    np.testing.assert_allclose(daily, want_surface[:, land][:, uncapped], atol=1e-5)
    drying = surface[..., land].mean(axis=(0, 2))
    assert drying.argmin() in (4, 5)  # driest in the periods around 13:30-16:30 UTC (afternoon)


def test_smap_fluxes_sum_to_the_daily_totals(
    world: World, objects: Path, smap_keys: list[str]
) -> None:
    with h5py.File(objects / smap_keys[0]) as f:
        lat, lon = f["cell_lat"][...].ravel(), f["cell_lon"][...].ravel()
    for name, driver, scale in (
        ("precipitation_total_surface_flux", "tp", 1.0),
        ("land_evapotranspiration_flux", "evap", 1.0),
        ("net_downward_shortwave_flux", "ssr", 1e-6),
    ):
        flux = _granules(objects, smap_keys, name).reshape(5, 8, -1)
        land = flux[0, 0] != -9999
        daily = flux[..., land].sum(axis=1) * 10800 * scale
        want = _interp(world, driver, lon, lat)[:, land] * scale
        np.testing.assert_allclose(daily, want, rtol=1e-4, atol=1e-4, err_msg=name)


def test_smap_time_and_metadata(objects: Path, smap_keys: list[str]) -> None:
    with h5py.File(objects / smap_keys[1]) as f:
        centre = dt.datetime(2021, 12, 1, 4, 30)
        assert f["time"][0] == pytest.approx((centre - J2000).total_seconds())
        assert f["time"].attrs["units"] == "seconds since 2000-01-01 11:58:55.816"
        ident = f["Metadata/DatasetIdentification"].attrs
        assert ident["shortName"] == b"SPL4SMGP"
        assert ident["fileName"].decode() == Path(smap_keys[1]).name
        extent = f["Metadata/Extent"].attrs
        assert extent["rangeBeginningDateTime"] == b"2021-12-01T03:00:00.000Z"
        assert extent["rangeEndingDateTime"] == b"2021-12-01T05:59:59.999Z"
        assert f["Geophysical_Data/sm_surface"].compression == "gzip"


def test_smap_bytes_are_deterministic(
    world: World, objects: Path, smap_keys: list[str], tmp_path: Path
) -> None:
    again = write_smap(world, tmp_path)
    assert again == smap_keys
    for key in smap_keys[::7]:
        first = hashlib.sha256((objects / key).read_bytes()).hexdigest()
        assert hashlib.sha256((tmp_path / key).read_bytes()).hexdigest() == first


# --- ERA5 -------------------------------------------------------------------------------------


def _deaccumulate(accumulated: np.ndarray, hours: np.ndarray, step: int) -> np.ndarray:
    """The documented formula: the amount over the step ending at each time (NaN if unknown)."""
    held = (hours - 7) % 12 + 1
    out = np.full(accumulated.shape, np.nan)
    out[held <= step] = accumulated[held <= step]
    later = np.flatnonzero(held > step)
    later = later[later > 0]
    out[later] = accumulated[later] - accumulated[later - 1]
    return out


def _daily_totals(ds: xr.Dataset, name: str, step: int) -> np.ndarray:
    """Amounts of each UTC day D: the steps ending in (D 00:00, D+1 00:00]."""
    hours = ds.time.dt.hour.values
    amounts = _deaccumulate(ds[name].values.astype(np.float64), hours, step)
    return amounts[1:].reshape(-1, 24 // step, *amounts.shape[1:]).sum(axis=1)


def test_era5_layout(world: World, era5: xr.Dataset) -> None:
    assert set(era5.data_vars) >= {"t2m", "tp", "ssr", "e", "pev", "sp"}
    assert all(era5[v].dims == ("time", "latitude", "longitude") for v in era5.data_vars)
    assert all(era5[v].dtype == np.float32 for v in era5.data_vars)
    assert era5.latitude.dtype == era5.longitude.dtype == np.float32
    assert (np.diff(era5.latitude) < 0).all() and (np.diff(era5.longitude) > 0).all()
    np.testing.assert_allclose(np.diff(era5.longitude), 0.1, atol=1e-5)
    times = era5.time.values
    assert times[0] == np.datetime64("2021-12-01T00:00") and times[-1] == np.datetime64(
        "2021-12-06"
    )
    assert (np.diff(times) == np.timedelta64(1, "h")).all()
    min_lon, min_lat, max_lon, max_lat = world.bbox
    margin = world.spec.era5_margin_deg
    assert era5.longitude.min() - 0.05 <= min_lon - margin
    assert era5.longitude.max() + 0.05 >= max_lon + margin
    assert era5.latitude.min() - 0.05 <= min_lat - margin
    assert era5.latitude.max() + 0.05 >= max_lat + margin
    assert era5.tp.attrs["units"] == "m" and "06 and 18 UTC" in era5.tp.attrs["accumulation"]
    assert era5.t2m.encoding["chunks"][0] == 24 * 31


def test_era5_deaccumulated_totals_are_the_daily_drivers(world: World, era5: xr.Dataset) -> None:
    drivers = world.drivers.sel(lat=era5.latitude, lon=era5.longitude, method="nearest")
    for name, driver, factor in (("tp", "tp", 1e-3), ("e", "evap", -1e-3), ("pev", "pev", -1e-3)):
        want = factor * drivers[driver].values
        got = _daily_totals(era5, name, 1)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-7, err_msg=name)
    got = _daily_totals(era5, "ssr", 1)
    np.testing.assert_allclose(got, drivers["ssr"].values, rtol=1e-4)


def test_era5_signs_and_cycles(world: World, era5: xr.Dataset) -> None:
    assert float(era5.e.max()) <= 0 and float(era5.e.min()) < 0
    assert float(era5.pev.max()) <= 0 and float(era5.pev.min()) < 0
    assert float(era5.tp.min()) >= 0 and float(era5.ssr.min()) >= 0
    assert (era5.d2m <= era5.t2m).all()
    drivers = world.drivers.sel(lat=era5.latitude, lon=era5.longitude, method="nearest")
    t2m = era5.t2m.values[:-1].reshape(5, 24, *era5.t2m.shape[1:])
    np.testing.assert_allclose(t2m.mean(axis=1), drivers.t2m.values, atol=2e-3)
    local_peak = (t2m.mean(axis=(0, 2)).argmax(axis=0) + era5.longitude.values / 15) % 24
    assert (np.abs(local_peak - 14) <= 1).all()
    # accumulations only grow within a forecast, and reset after 06 and 18 UTC
    held = (era5.time.dt.hour.values - 7) % 12 + 1
    for name in ("tp", "ssr", "e", "pev"):
        size = np.abs(era5[name].values.astype(np.float64))
        growth = np.diff(size, axis=0)[held[1:] > 1]
        assert growth.min() >= -1e-6 * size.max(), name
    ssr = era5.ssr.values
    assert (ssr[18] > ssr[19]).all() and (ssr[18 + 24] > ssr[19 + 24]).all()


def test_era5_coarse_three_hourly(tmp_path: Path) -> None:
    world = _world(era5_resolution=0.5, era5_step_hours=3)
    write_era5(world, tmp_path)
    ds = xr.open_zarr(tmp_path / ERA5_KEY)
    np.testing.assert_allclose(np.diff(ds.longitude), 0.5)
    np.testing.assert_allclose(ds.longitude % 0.5, 0, atol=1e-5)
    assert (np.diff(ds.time.values) == np.timedelta64(3, "h")).all()
    assert ds.sizes["time"] == 5 * 8 + 1
    lat, lon = float(ds.latitude[1]), float(ds.longitude[1])  # an inner cell: a full 5 x 5 block
    block = world.drivers.tp.sel(
        lat=slice(lat + 0.21, lat - 0.21), lon=slice(lon - 0.21, lon + 0.21)
    )
    assert block.sizes["lat"] == block.sizes["lon"] == 5
    got = _daily_totals(ds.isel(latitude=[1], longitude=[1]), "tp", 3)[:, 0, 0]
    np.testing.assert_allclose(got, 1e-3 * block.mean(("lat", "lon")).values, rtol=1e-4, atol=1e-7)


def test_era5_refuses_a_resolution_off_the_driver_grid(tmp_path: Path) -> None:
    with pytest.raises(ReplicaError, match="era5_resolution"):
        write_era5(_world(era5_resolution=0.25), tmp_path)


# --- SRTM -------------------------------------------------------------------------------------


def test_srtm_tiles(objects: Path, srtm_keys: list[str]) -> None:
    assert sorted(srtm_keys) == sorted(srtm_key(lon, lat) for lon in (36, 37) for lat in (-2, -1))
    assert "srtm/S02E036.tif" in srtm_keys
    res = 1 / 1200
    with rasterio.open(objects / "srtm/S02E036.tif") as src:
        assert (src.width, src.height) == (1201, 1201)
        assert src.crs.to_epsg() == 4326 and src.dtypes[0] == "int16" and src.nodata == -32768
        assert src.res == pytest.approx((res, res))
        assert src.bounds.left == pytest.approx(36 - res / 2)
        assert src.bounds.top == pytest.approx(-1 + res / 2)
        structure = src.tags(ns="IMAGE_STRUCTURE")
        assert structure["LAYOUT"] == "COG" and structure["COMPRESSION"] == "DEFLATE"
        assert structure["PREDICTOR"] == "2"
        assert src.block_shapes[0] == (512, 512) and src.overviews(1)


def test_srtm_pixels_are_the_statics_elevation(world: World, objects: Path) -> None:
    points = [(36.5, -1.5), (36.25, -1.75), (36.999, -1.001), *[world.statics.volcano]]
    points = [(round(lon * 1200) / 1200, round(lat * 1200) / 1200) for lon, lat in points]
    for lon, lat in points:
        key = srtm_key(int(np.floor(lon)), int(np.floor(lat)))
        with rasterio.open(objects / key) as src:
            row, col = src.index(lon, lat)
            value = src.read(1, window=((row, row + 1), (col, col + 1)))[0, 0]
        want = np.rint(world.statics.elevation(np.array([lon]), np.array([lat])))[0]
        assert value == want, (lon, lat)


def test_srtm_neighbours_share_their_edge(objects: Path) -> None:
    with rasterio.open(objects / "srtm/S02E036.tif") as west:
        west_edge = west.read(1)[:, -1]
    with rasterio.open(objects / "srtm/S02E037.tif") as east:
        east_edge = east.read(1)[:, 0]
    assert (west_edge == east_edge).all()


def test_srtm_refuses_odd_spacing(world: World, tmp_path: Path) -> None:
    with pytest.raises(ReplicaError, match="arcsec"):
        write_srtm(world, tmp_path, arcsec=7)


# --- strata -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "classes"),
    [
        ("climate", CLIMATE_CLASSES),
        ("landcover", LANDCOVER_CLASSES),
        ("geomorphons", GEOMORPHON_CLASSES),
    ],
)
def test_strata_codes_are_documented(
    world: World, objects: Path, strata_keys: list[str], name: str, classes: dict[int, str]
) -> None:
    assert strata_key(name) in strata_keys
    with rasterio.open(objects / strata_key(name)) as src:
        values = src.read(1)
        assert src.crs.to_epsg() == 4326 and src.dtypes[0] == "uint8" and src.nodata == 0
        assert json.loads(src.tags()["class_names"]) == {str(k): v for k, v in classes.items()}
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        min_lon, min_lat, max_lon, max_lat = world.bbox
        assert src.bounds.left < min_lon and src.bounds.right > max_lon
        assert src.bounds.bottom < min_lat and src.bounds.top > max_lat
    assert set(np.unique(values).tolist()) <= set(classes)
    if name == "geomorphons":
        assert values.min() >= 1 and values.max() <= 10 and len(np.unique(values)) >= 5


def test_strata_pixels_are_the_statics(world: World, objects: Path, strata_keys: list[str]) -> None:
    with rasterio.open(objects / strata_key("landcover")) as src:
        values = src.read(1)
        rows, cols = np.meshgrid(np.arange(5, src.height, 97), np.arange(3, src.width, 89))
        lon, lat = rasterio.transform.xy(src.transform, rows.ravel(), cols.ravel())
    want = world.statics.landcover(np.asarray(lon), np.asarray(lat))
    assert (values[rows.ravel(), cols.ravel()] == want).all()


def test_strata_refuses_bad_resolution(world: World, tmp_path: Path) -> None:
    with pytest.raises(ReplicaError, match="resolution_deg"):
        write_strata(world, tmp_path, resolution_deg=0)
