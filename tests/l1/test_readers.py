"""The plain-rasterio reader writes the very store the former stackstac reader wrote.

Both readers build the ``tiny`` replica (30 m COGs, read as they are) from the same items: every
chunk of ``s2``, ``scl`` and ``data_fraction`` must be equal, bit for bit. Assets at native
10 / 20 m, off the 30 m grid, must be warped to the very pixels stackstac gives (small synthetic
COGs: a native replica takes minutes to create).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr
from rasterio.enums import Resampling

from cubestream.errors import AssetNotFoundError
from cubestream.l1 import L1Config, build_l1
from cubestream.l1.sentinel2 import remove_offset
from cubestream.replica import layout
from cubestream.replica.spec import load_spec
from cubestream.sources.cogread import TargetGrid, WindowRead, read_windows
from cubestream.testing import write_replica_locations, write_test_cog


@pytest.fixture(scope="module")
def scheduler() -> Iterator[Any]:
    """A Dask client of one in-process worker with 2 threads (handed to the builds)."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


X0, Y0 = 300000.0, 9000000.0
"""Upper-left corner of the synthetic 30 m grid (UTM 37S)."""


def _build(
    root: Path, out: Path, scheduler: Any, reader: str, period: tuple[dt.date, dt.date]
) -> Path:
    start, end = period
    locations = write_replica_locations(root, out.with_suffix(".parquet"), target=4)
    config = L1Config(
        locations=str(locations),
        stac=str(root / layout.ITEMS_FILE),
        out=str(out),
        start=start,
        end=end,
        reader=reader,  # type: ignore[arg-type]
        days_per_chunk=4,
    )
    report = build_l1(config, client=scheduler)
    assert {e["status"] for e in report["tiles"].values()} == {"built"}, report
    return out


def _assert_same_store(old: Path, new: Path) -> None:
    a: Any = zarr.open_group(str(old), mode="r")
    b: Any = zarr.open_group(str(new), mode="r")
    for tile in a.group_keys():
        for name in ("s2", "scl", "data_fraction", "time", "cube"):
            np.testing.assert_array_equal(b[tile][name][...], a[tile][name][...], err_msg=name)
        # the build really read pixels: most of the boxes have data on some day
        assert (a[tile]["data_fraction"][...] > 0).any()


def test_rasterio_reader_writes_the_stackstac_store(
    replica_root: Path, scheduler: Any, tmp_path: Path
) -> None:
    root = replica_root
    spec = load_spec(root)
    period = (spec.start, spec.end)
    old = _build(root, tmp_path / "old.zarr", scheduler, "stackstac", period)
    new = _build(root, tmp_path / "new.zarr", scheduler, "rasterio", period)
    _assert_same_store(old, new)


def test_remove_offset_equals_the_int32_formula() -> None:
    values = np.array([0, 1, 999, 1000, 1001, 1500, 65535], dtype=np.uint16)
    for dn in (0, 1000, -5):
        expected = np.where(values > 0, np.maximum(values.astype(np.int32) - dn, 1), 0)
        got = values.copy()
        remove_offset(got, dn)
        np.testing.assert_array_equal(got, expected.astype(np.uint16))


def test_read_windows_names_a_missing_cog(replica_root: Path, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such.tif")
    read = WindowRead(
        hrefs=((missing,),),
        grid=TargetGrid(epsg=32737, transform=(30, 0, 0, 0, -30, 0), width=256, height=256),
        window=(0, 0, 128, 128),
        resampling="nearest",
        dtype="uint8",
    )
    with pytest.raises(AssetNotFoundError, match=r"no-such\.tif"):
        read_windows(read, threads=1)


def _cog(path: Path, resolution: int, seed: int) -> str:
    """A 10 m or 20 m COG (nodata 0, deflate + predictor 2) off the 30 m grid by 10 m."""
    side = 3 * 96 // (resolution // 10)
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 12000, size=(side, side), dtype=np.uint16)
    values[: side // 5] = 0
    return write_test_cog(path, values, resolution, (X0 - 10, Y0 + 10))


def test_native_assets_are_warped_as_stackstac_warps_them(tmp_path: Path) -> None:
    import stackstac

    hrefs = tuple(
        (_cog(tmp_path / f"{i}-10.tif", 10, i), _cog(tmp_path / f"{i}-20.tif", 20, 10 + i))
        for i in range(2)
    )
    grid = TargetGrid(epsg=32737, transform=(30, 0, X0, 0, -30, Y0), width=96, height=96)
    items = [
        {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": f"item-{i}",
            "geometry": None,
            "bbox": [36.0, -10.0, 38.0, -8.0],
            "properties": {"datetime": f"2022-01-0{i + 1}T00:00:00Z"},
            "assets": {"a": {"href": ten, "type": "image/tiff"}, "b": {"href": twenty}},
            "links": [],
        }
        for i, (ten, twenty) in enumerate(hrefs)
    ]
    for resampling in ("average", "nearest"):
        expected = (
            stackstac.stack(
                items,
                assets=["a", "b"],
                epsg=32737,
                resolution=30,
                bounds=(X0, Y0 - 96 * 30, X0 + 96 * 30, Y0),
                snap_bounds=False,
                resampling=Resampling[resampling],
                dtype=np.dtype("uint16"),
                fill_value=np.uint16(0),
                rescale=False,
                sortby_date=False,
            )
            .data[:, :, 32:96, 0:64]
            .compute(scheduler="sync")
        )
        read = WindowRead(
            hrefs=hrefs, grid=grid, window=(32, 0, 64, 64), resampling=resampling, dtype="uint16"
        )
        got = read_windows(read, threads=2)
        assert (got > 0).mean() > 0.5
        np.testing.assert_array_equal(got, expected)
        # a window inside it (the boxes of a task, not the whole block) warps to the same pixels
        inner = WindowRead(
            hrefs=hrefs, grid=grid, window=(40, 8, 24, 40), resampling=resampling, dtype="uint16"
        )
        np.testing.assert_array_equal(read_windows(inner, threads=2), got[:, :, 8:32, 8:48])
