"""The served replica answers the production clients exactly as the local files do."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import rasterio
import xarray as xr

from cubestream.replica import layout
from cubestream.replica.probe import (
    access_log_bytes,
    probe_all,
    read_cog_window,
    read_era5,
    read_smap_hyperslab,
    search_stac,
)
from cubestream.replica.serve import Endpoints
from cubestream.replica.spec import load_spec
from cubestream.replica.world import World


def _local_items(root: Path) -> list[dict]:
    lines = (root / layout.ITEMS_FILE).read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_cog_window_over_s3_equals_local_file(replica_root: Path, replica_endpoints: Endpoints):
    world = World(load_spec(replica_root))
    tile_id = world.spec.tiles[0]
    win = world.window(tile_id)
    item = _local_items(replica_root)[3]
    local = item["assets"]["nir08"]["href"]
    key = Path(local).relative_to((replica_root / layout.OBJECTS_DIR).resolve()).as_posix()
    row, col = win.row + 128, win.col + 256
    expected = read_cog_window(local, row, col)
    over_s3 = read_cog_window(
        f"s3://{replica_endpoints.bucket}/{key}", row, col, endpoints=replica_endpoints
    )
    over_http = read_cog_window(f"/vsicurl/{replica_endpoints.http_url(key)}", row, col)
    assert expected.shape == (128, 128)
    assert (expected > 0).any()
    np.testing.assert_array_equal(over_s3, expected)
    np.testing.assert_array_equal(over_http, expected)


def test_window_read_sends_only_some_blocks(replica_root: Path, replica_endpoints: Endpoints):
    item = _local_items(replica_root)[5]
    local = Path(item["assets"]["red"]["href"])
    key = local.relative_to((replica_root / layout.OBJECTS_DIR).resolve()).as_posix()
    win = World(load_spec(replica_root)).window(item["properties"]["grid:code"][5:])
    before = access_log_bytes(replica_endpoints, key)
    read_cog_window(
        f"s3://{replica_endpoints.bucket}/{key}", win.row, win.col, endpoints=replica_endpoints
    )
    sent = access_log_bytes(replica_endpoints, key) - before
    assert 0 < sent < local.stat().st_size


def test_stac_search_by_bbox_and_datetime(replica_root: Path, replica_endpoints: Endpoints):
    items = _local_items(replica_root)
    day = items[4]["properties"]["datetime"][:10]
    bbox = tuple(items[4]["bbox"])
    found = search_stac(replica_endpoints, bbox, f"{day}/{day}")
    expected = {i["id"] for i in items if i["properties"]["datetime"].startswith(day)}
    assert {i["id"] for i in found} == expected
    assert all(i["collection"] == "sentinel-2-l2a" for i in found)
    first = found[0]
    assert first["properties"]["proj:epsg"] == 32737
    assert first["assets"]["red"]["href"].startswith(replica_endpoints.s3_endpoint)
    assert first["assets"]["red"]["alternate"]["s3"]["href"].startswith("s3://")
    everything = search_stac(replica_endpoints, World(load_spec(replica_root)).bbox, "2000/2100")
    assert len(everything) == len(items)


def test_stac_items_carry_the_archives_awkward_cases(replica_root: Path):
    items = _local_items(replica_root)
    baselines = {i["properties"]["s2:processing_baseline"] for i in items}
    assert baselines == {"03.01", "04.00"}
    offsets = {
        i["properties"]["s2:processing_baseline"]: i["assets"]["red"]["raster:bands"][0]["offset"]
        for i in items
    }
    assert offsets == {"03.01": 0.0, "04.00": -0.1}
    days = Counter(i["properties"]["datetime"][:10] for i in items)
    assert 2 in days.values(), "a split datatake gives two items for one day"


def test_cog_is_cloud_optimised_on_the_tile_grid(replica_root: Path):
    item = _local_items(replica_root)[0]
    with rasterio.open(item["assets"]["red"]["href"]) as src:
        assert src.crs.to_epsg() == 32737
        assert (src.width, src.height) == (3660, 3660)
        assert (src.transform.c, src.transform.f) == (199980.0, 9900040.0)
        assert src.block_shapes[0] == (1024, 1024)
        assert src.overviews(1), "overviews"
        assert src.compression is not None
        assert src.nodata == 0


def test_smap_hyperslab_over_fsspec(replica_root: Path, replica_endpoints: Endpoints):
    path = sorted((replica_root / layout.OBJECTS_DIR / "smap").rglob("*.h5"))[9]
    key = path.relative_to(replica_root / layout.OBJECTS_DIR).as_posix()
    remote = read_smap_hyperslab(replica_endpoints, key, "sm_rootzone", slice(1, 3), slice(0, 4))
    with h5py.File(path) as h5:
        local = h5["Geophysical_Data/sm_rootzone"][1:3, 0:4]
    np.testing.assert_array_equal(remote, local)


def test_era5_zarr_over_s3(replica_root: Path, replica_endpoints: Endpoints):
    remote = read_era5(replica_endpoints)
    local = xr.open_zarr(replica_root / layout.OBJECTS_DIR / layout.ERA5_KEY)
    assert set(remote.data_vars) >= {"t2m", "tp", "ssr", "e", "pev", "sp"}
    xr.testing.assert_identical(
        remote.t2m.isel(time=slice(0, 30)).load(), local.t2m.isel(time=slice(0, 30)).load()
    )


def test_probe_all_finds_the_tile_in_every_item_generation(
    replica_root: Path, replica_endpoints: Endpoints
):
    """The demo's serve stage: the items of 2023 and 2025 style both name their tile."""
    figures = probe_all(replica_root, replica_endpoints)
    assert figures["stac_items_found"] >= 1
    assert figures["cog_window_identical"]
    assert 0 < figures["cog_window_bytes_sent"] < figures["cog_file_bytes"]
