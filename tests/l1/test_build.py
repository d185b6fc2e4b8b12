"""The level-1 build: exact pixels, laziness, resume after a kill, failures named."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import numpy as np
import pandas as pd
import pytest
import rasterio
import xarray as xr
from rasterio.windows import Window

from cubestream.l1 import L1Config, build_l1
from cubestream.l1.auxiliary import AuxiliarySources
from cubestream.l1.build import _plan, tile_writes
from cubestream.l1.dem import dem_cubes
from cubestream.l1.sentinel2 import BANDS
from cubestream.l1.smap import list_granules, smap_cubes
from cubestream.l1.store import create_template, existing_chunks, open_root
from cubestream.replica import layout
from cubestream.testing import write_replica_locations

START, END = dt.date(2021, 12, 1), dt.date(2022, 2, 28)


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def locations(replica_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loc") / "locations.parquet"
    return write_replica_locations(replica_root, out, target=5)


def _config(locations: Path, replica_root: Path, out: Path, **kw) -> L1Config:
    return L1Config(
        locations=str(locations),
        stac=str(replica_root / layout.ITEMS_FILE),
        out=str(out),
        start=START,
        end=END,
        **kw,
    )


@pytest.fixture(scope="module")
def built(locations: Path, replica_root: Path, client: Any, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("l1") / "l1.zarr"
    objects = replica_root / layout.OBJECTS_DIR
    aux = AuxiliarySources(
        smap=str(objects / "smap" / "SPL4SMGP.007"),
        era5=str(objects / layout.ERA5_KEY),
        srtm=str(objects),
        landcover=str(objects / layout.strata_key("landcover")),
        geomorphons=str(objects / layout.strata_key("geomorphons")),
    )
    report = build_l1(_config(locations, replica_root, out, auxiliary=aux), client=client)
    assert {e["status"] for e in report["tiles"].values()} == {"built"}
    return out


def _items(replica_root: Path) -> list[dict]:
    return [json.loads(x) for x in (replica_root / layout.ITEMS_FILE).read_text().splitlines()]


def _expected(
    items: list[dict], day: str, asset: str, row: int, col: int, at: tuple[float, float] = ()
) -> np.ndarray:
    """Independent read: each item's window, offset removed, first item with data wins.

    The window is the cube's box ``(row, col)``, or the 128 px whose top-left pixel is centred
    at the UTM point ``at``.
    """
    out = np.zeros((128, 128), dtype=np.uint16)
    for item in (i for i in items if i["properties"]["datetime"].startswith(day)):
        with rasterio.open(item["assets"][asset]["href"]) as src:
            top, left = src.index(*at) if at else (row * 128, col * 128)
            values = src.read(1, window=Window(left, top, 128, 128)).astype(np.int32)
            # the truth of the pixels, whatever the item's metadata says
            offset = -int(src.tags().get("BOA_ADD_OFFSET", 0)) if asset != "scl" else 0
        values = np.where(values > 0, np.maximum(values - offset, 1), 0)
        out = np.where(out == 0, values, out).astype(np.uint16)
    return out


def test_pixels_equal_an_independent_read(built: Path, replica_root: Path) -> None:
    items = _items(replica_root)
    ds = xr.open_zarr(built, group="37MBU", consolidated=False, mask_and_scale=False)
    assert list(ds.band.values) == list(BANDS)
    days = [str(d)[:10] for d in ds.time.values]
    assert len(days) == len({i["properties"]["datetime"][:10] for i in items})
    for c in range(ds.sizes["cube"]):
        cube = str(ds.cube.values[c])
        row, col = int(cube[5:7]), int(cube[7:9])
        for t in (0, len(days) // 2, len(days) - 1):
            for band, asset in (("B04", "red"), ("B8A", "nir08"), ("B12", "swir22")):
                got = ds.s2.isel(cube=c, time=t).sel(band=band).values
                np.testing.assert_array_equal(got, _expected(items, days[t], asset, row, col))
            scl = ds.scl.isel(cube=c, time=t).values
            np.testing.assert_array_equal(scl, _expected(items, days[t], "scl", row, col))


def test_store_carries_what_places_every_pixel(built: Path, locations: Path) -> None:
    ds = xr.open_zarr(built, group="37MBU", consolidated=False)
    table = pd.read_parquet(locations).set_index("cube_id")
    assert ds.attrs["epsg"] == 32737 and ds.attrs["resolution"] == 30 and ds.attrs["complete"]
    for name in ("x_min", "y_max", "lon", "lat"):
        np.testing.assert_allclose(ds[name].values, table.loc[ds.cube.values, name].values)
    assert ds.s2.encoding["scale_factor"] == 1e-4, "reflectance decodes to [0, 1] floats"
    fraction = ds.data_fraction.values
    assert ((fraction >= 0) & (fraction <= 1)).all() and (fraction < 1).any()


def test_auxiliary_variables_are_the_readers_output(built: Path, replica_root: Path) -> None:
    ds = xr.open_zarr(built, group="37MBU", consolidated=False)
    cubes = pd.DataFrame(
        {name: ds[name].values for name in ("x_min", "y_min", "x_max", "y_max", "lon", "lat")}
    )
    cubes = cubes.assign(cube_id=ds.cube.values, tile="37MBU", epsg=32737)
    objects = replica_root / layout.OBJECTS_DIR
    np.testing.assert_array_equal(ds.dem.values, dem_cubes(str(objects), cubes))
    granules = list_granules(str(objects / "smap" / "SPL4SMGP.007"), START, END)
    smap = smap_cubes(granules, cubes, start=START, end=END)
    np.testing.assert_array_equal(ds.smap.values, smap.values)
    assert list(ds.smap_variable.values) == list(smap.smap_variable.values)
    assert ds.era5.sizes["era5_time"] == (END - START).days + 1
    assert {"t2m_mean", "tp_sum"} <= set(ds.era5_variable.values)
    assert ds.attrs["complete"]


@pytest.mark.parametrize("name", ["landcover", "geomorphons"])
def test_class_layers_equal_a_nearest_warp_per_cube(
    built: Path, replica_root: Path, name: str
) -> None:
    from rasterio.vrt import WarpedVRT
    from rasterio.warp import Resampling

    from cubestream.sample._rasters import WARP_TOLERANCE

    ds = xr.open_zarr(built, group="37MBU", consolidated=False)
    assert ds[name].dtype == np.uint8 and ds[name].dims == ("cube", "y", "x")
    with rasterio.open(replica_root / layout.OBJECTS_DIR / layout.strata_key(name)) as src:
        for c in range(ds.sizes["cube"]):
            x_min, y_max = float(ds.x_min[c]), float(ds.y_max[c])
            with WarpedVRT(
                src,
                crs="EPSG:32737",
                transform=rasterio.Affine(30, 0, x_min, 0, -30, y_max),
                width=128,
                height=128,
                resampling=Resampling.nearest,
                nodata=0,
                tolerance=WARP_TOLERANCE,
            ) as vrt:
                expected = vrt.read(1)
            np.testing.assert_array_equal(ds[name].isel(cube=c).values, expected)
    assert (ds[name].values > 0).mean() > 0.9


def test_building_the_graph_computes_nothing(
    locations: Path, replica_root: Path, client: Any, tmp_path: Path
) -> None:
    config = _config(locations, replica_root, tmp_path / "lazy.zarr")
    cubes = pd.read_parquet(locations)
    plan = _plan(config, "37MBU", cubes[cubes["tile"] == "37MBU"])
    group = create_template(open_root(config.out), plan, config.signature())

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the graph was computed while being built")

    with dask.config.set(scheduler=refuse):
        writes = tile_writes(plan, group, config)
    boxes = zip(plan.cubes["row"], plan.cubes["col"], strict=True)
    blocks = {(row * 128 // 1024, col * 128 // 1024) for row, col in boxes}
    # One task per read block and time chunk: s2, and scl with data_fraction.
    assert len(writes) == 2 * len(blocks) * len(plan.day_chunks)


def test_each_chunk_of_a_cube_array_is_one_file_of_its_array(built: Path) -> None:
    """``c.<cube>.<time>...`` keys (``CHUNK_KEYS``): a chunk write creates a file, no folder per
    index; the chunks the build wrote are all listed as the resume state."""
    group = open_root(str(built), mode="r")["37MBU"]
    for name in ("s2", "scl", "data_fraction"):
        folder = built / "37MBU" / name
        assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == []
        chunks = {p.name for p in folder.glob("c.*")}
        listed = existing_chunks(group, name)
        assert len(chunks) == len(listed) == group[name].nchunks > 0
        assert chunks == {"c." + ".".join(map(str, index)) for index in listed}


def _chunk_bytes(store: Path) -> dict[str, bytes]:
    """Chunk files of the Sentinel-2 arrays (the CLI build below has no auxiliary sources)."""
    return {
        str(p.relative_to(store)): p.read_bytes()
        for name in ("s2", "scl", "data_fraction")
        for p in sorted((store / name).glob("c.*"))
    }


def test_killed_build_resumes_to_a_clean_build(
    built: Path, locations: Path, replica_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "resumed.zarr"
    command = [
        sys.executable,
        "-m",
        "cubestream.cli",
        "l1",
        "--locations",
        str(locations),
        "--stac",
        str(replica_root / layout.ITEMS_FILE),
        "--out",
        str(out),
        "--start",
        str(START),
        "--end",
        str(END),
        "--workers",
        "1",
        "--threads",
        "1",
    ]
    process = subprocess.Popen(
        command, start_new_session=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if len(list((out / "37MBU" / "s2").glob("c.*")) if out.exists() else []) >= 3:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    group = open_root(str(out))["37MBU"]
    assert group.attrs["complete"] is False, "a killed build is never marked complete"
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    clean, again = _chunk_bytes(built / "37MBU"), _chunk_bytes(out / "37MBU")
    assert clean.keys() == again.keys()
    assert all(clean[k] == again[k] for k in clean), "chunk for chunk equal"


def test_corrupt_cog_fails_its_tile_naming_the_asset(
    locations: Path, replica_root: Path, client: Any, tmp_path: Path
) -> None:
    items = _items(replica_root)
    victim = Path(items[2]["assets"]["red"]["href"])
    broken = tmp_path / "broken.tif"
    broken.write_bytes(victim.read_bytes()[:5000] + b"\0" * 100)
    items[2]["assets"]["red"]["href"] = str(broken)
    stac = tmp_path / "items.ndjson"
    stac.write_text("".join(json.dumps(i) + "\n" for i in items))
    config = _config(locations, replica_root, tmp_path / "bad.zarr")
    report = build_l1(L1Config(**{**config.__dict__, "stac": str(stac)}), client=client)
    entry = report["tiles"]["37MBU"]
    assert entry["status"] == "failed"
    assert "broken.tif" in entry["reason"]
    assert open_root(str(tmp_path / "bad.zarr"))["37MBU"].attrs["complete"] is False
    saved = json.loads((tmp_path / "bad.zarr.report.json").read_text())
    assert saved["tiles"]["37MBU"]["status"] == "failed"


def test_unknown_tiles_and_bad_tables_are_refused(
    locations: Path, replica_root: Path, tmp_path: Path, client: Any
) -> None:
    from cubestream.errors import L1Error

    config = _config(locations, replica_root, tmp_path / "x.zarr", tiles=("31UDQ",))
    with pytest.raises(L1Error, match="31UDQ"):
        build_l1(config, client=client)
    bad = tmp_path / "bad.parquet"
    pd.read_parquet(locations).drop(columns=["x_min"]).to_parquet(bad)
    with pytest.raises(L1Error, match="x_min"):
        build_l1(_config(bad, replica_root, tmp_path / "y.zarr"), client=client)
    shutil.rmtree(tmp_path / "x.zarr", ignore_errors=True)


def test_a_grown_locations_table_rebuilds_the_tile_with_its_new_cubes(
    locations: Path, replica_root: Path, client: Any, tmp_path: Path
) -> None:
    table = pd.read_parquet(locations)
    fewer = tmp_path / "fewer.parquet"
    table.iloc[:-1].to_parquet(fewer)
    out = tmp_path / "grown.zarr"
    build_l1(_config(fewer, replica_root, out), client=client)
    report = build_l1(_config(locations, replica_root, out), client=client)
    entry = report["tiles"]["37MBU"]
    assert entry["state_before"] == "rebuilt: cubes (1 added, 0 removed) changed"
    assert entry["status"] == "built"
    cubes = xr.open_zarr(out, group="37MBU", consolidated=False)["cube"].values.tolist()
    assert cubes == table["cube_id"].tolist()
    again = build_l1(_config(locations, replica_root, out), client=client)
    assert again["tiles"]["37MBU"]["state_before"] == "complete"


def test_store_is_consolidated_and_standard_tools_open_it(built: Path) -> None:
    """One read opens the store; xarray opens it without a warning, as a tree too."""
    import warnings

    from cubestream._consolidated import is_consolidated

    assert is_consolidated(str(built))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(built, group="37MBU")
        tree = xr.open_datatree(built, engine="zarr")
    assert tree["37MBU"].dataset["s2"].dims == ("cube", "time", "band", "y", "x")
    assert ds.s2.attrs["grid_mapping"] == "spatial_ref" == ds.dem.attrs["grid_mapping"]
    assert ds["spatial_ref"].attrs["grid_mapping_name"] == "transverse_mercator"
    assert ds["col"].attrs["units"] == "1" and ds["lon"].attrs["units"] == "degrees_east"
    assert {"easting", "northing"} <= set(ds.coords)


def test_a_cube_opened_in_one_call_is_placed_on_the_earth(
    built: Path, replica_root: Path, tmp_path: Path
) -> None:
    """rioxarray's CRS and transform, written to a GeoTIFF, find the source COG's pixels."""
    from pyproj import Transformer

    from cubestream.georef import open_l1_cube

    items = _items(replica_root)
    root = xr.open_zarr(built, group="37MBU")
    for cube_id in root.cube.values[:2]:
        cube = open_l1_cube(str(built), "37MBU", str(cube_id))
        assert cube.rio.crs.to_epsg() == 32737
        x_min, y_max = float(cube.x_min), float(cube.y_max)
        assert cube.rio.transform() == rasterio.Affine(30, 0, x_min, 0, -30, y_max)
        centre = Transformer.from_crs(32737, 4326, always_xy=True).transform(
            x_min + 1920, y_max - 1920
        )
        np.testing.assert_allclose(centre, (float(cube.lon), float(cube.lat)), atol=1e-9)
        t = cube.sizes["time"] // 2
        day = str(cube.time.values[t])[:10]
        red = cube.s2.isel(time=t).sel(band="B04").drop_vars("band")
        tif = tmp_path / f"{cube_id}.tif"
        red.rio.to_raster(tif)
        with rasterio.open(tif) as placed:  # GDAL reads the placement back
            corner = placed.xy(0, 0)
            values = placed.read(1)  # rioxarray writes the DN with its scale_factor
            assert placed.scales[0] == 1e-4
        dn = _expected(items, day, "red", -1, -1, at=corner)
        np.testing.assert_array_equal(values, dn)


def test_gdal_zarr_driver_reads_the_crs_where_it_reads_zarr_v3(built: Path) -> None:
    """GDAL's Zarr driver finds the grid mapping (a GDAL that knows the v3 ``bytes`` codec)."""
    from rasterio.errors import RasterioIOError

    try:
        with rasterio.open(f'ZARR:"{built}":/37MBU/dem') as dem:
            crs = dem.crs
    except RasterioIOError as exc:
        if "Unsupported codec: bytes" not in str(exc):
            raise
        pytest.skip(f"GDAL {rasterio.__gdal_version__} predates the final Zarr v3 spec: {exc}")
    assert crs is not None and crs.to_epsg() == 32737


def test_time_chunks_are_even_and_a_store_of_other_chunks_is_rebuilt(
    locations: Path, replica_root: Path, client: Any, tmp_path: Path
) -> None:
    """No chunk is mostly padding; a group chunked otherwise (an older build) is not resumed."""
    import zarr

    out = tmp_path / "chunks.zarr"
    build_l1(_config(locations, replica_root, out, days_per_chunk=8), client=client)
    s2 = zarr.open_array(str(out), path="37MBU/s2", mode="r")
    days = s2.shape[1]
    assert days % 8 and s2.chunks[1] == -(-days // -(-days // 8)) < 8  # evened out
    expected = np.asarray(s2[...])
    zarr.create_array(  # as a build with whole 8-day chunks left it, half done
        str(out),
        name="37MBU/s2",
        shape=s2.shape,
        chunks=(1, 8, *s2.shape[2:]),
        dtype=s2.dtype,
        fill_value=0,
        overwrite=True,
        attributes=dict(s2.attrs),
        dimension_names=s2.metadata.dimension_names,
    )
    zarr.open_group(str(out), path="37MBU", mode="r+").attrs["complete"] = False
    report = build_l1(_config(locations, replica_root, out, days_per_chunk=8), client=client)
    assert report["tiles"]["37MBU"]["state_before"] == "rebuilt: time chunks changed"
    rebuilt = zarr.open_array(str(out), path="37MBU/s2", mode="r")
    assert rebuilt.chunks == s2.chunks
    np.testing.assert_array_equal(np.asarray(rebuilt[...]), expected)


@pytest.mark.parametrize(
    ("days", "most", "chunk"),
    [(6, 16, 6), (16, 16, 16), (17, 16, 9), (32, 16, 16), (40, 16, 14), (365, 16, 16), (0, 16, 16)],
)
def test_even_chunk(days: int, most: int, chunk: int) -> None:
    from cubestream.l1.plan import even_chunk

    assert even_chunk(days, most) == chunk
