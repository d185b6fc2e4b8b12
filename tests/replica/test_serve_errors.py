"""``cubestream replica serve``: its errors, its cleanup and one served fake replica."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import psutil
import pytest
import rasterio
import s3fs
from affine import Affine

from cubestream.errors import PortInUseError, ReplicaError, ReplicaNotFoundError, StacItemError
from cubestream.replica.layout import COLLECTION
from cubestream.replica.serve import Endpoints, served
from cubestream.replica.spec import BUCKET, ReplicaSpec
from cubestream.testing import read_access_log, start_replica_server, stop_replica_server

ITEMS = [
    ("S2A_37MBU_20220105_0_L2A", "2022-01-05T07:54:21Z", 12.5),
    ("S2B_37MBU_20220110_0_L2A", "2022-01-10T07:54:19Z", 80.0),
]
BBOX = [36.27, -3.09, 37.26, -2.10]


def _write_tif(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(0, 10000, (1, 64, 64), dtype=np.uint16)
    profile = {
        "driver": "GTiff",
        "width": 64,
        "height": 64,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:32737",
        "transform": Affine(30, 0, 300000, 0, -30, 9700020),
        "tiled": True,
        "blockxsize": 16,
        "blockysize": 16,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def _item(root: Path, item_id: str, when: str, cloud: float) -> dict[str, Any]:
    key = f"sentinel-2-l2a/37/M/BU/2022/1/{item_id}/B04.tif"
    _write_tif(root / "objects" / key, seed=len(item_id) + int(cloud))
    west, south, east, north = BBOX
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": BBOX,
        "properties": {"datetime": when, "eo:cloud_cover": cloud},
        "links": [],
        "assets": {"red": {"href": str(root / "objects" / key), "type": "image/tiff"}},
    }


def make_replica(root: Path) -> Path:
    """A tiny hand-made replica: two items with one GeoTIFF each, and a few other objects."""
    (root / "stac").mkdir(parents=True)
    items = [_item(root, *item) for item in ITEMS]
    zarr = root / "objects" / "era5" / "era5.zarr"
    zarr.mkdir(parents=True)
    (zarr / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    (zarr / "c.0.0").write_bytes(bytes(range(256)) * 3)
    collection = {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": COLLECTION,
        "description": "fake",
        "license": "proprietary",
        "links": [],
        "extent": {
            "spatial": {"bbox": [BBOX]},
            "temporal": {"interval": [["2022-01-01T00:00:00Z", "2022-01-31T00:00:00Z"]]},
        },
    }
    (root / "stac" / "collection.json").write_text(json.dumps(collection))
    (root / "stac" / "items.ndjson").write_text("".join(json.dumps(i) + "\n" for i in items))
    (root / "replica.json").write_text(json.dumps({"spec": ReplicaSpec().to_dict()}))
    return root


@pytest.fixture
def replica(tmp_path: Path) -> Path:
    return make_replica(tmp_path / "replica")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _rustac_children() -> list[psutil.Process]:
    """STAC servers started by this process itself (a session-wide served replica runs in a
    subprocess of its own, so its rustac is a grandchild and is not counted)."""
    return [p for p in psutil.Process().children() if "rustac" in " ".join(p.cmdline())]


# --- errors before anything starts ----------------------------------------------------------


def test_missing_dir(tmp_path: Path) -> None:
    with (
        pytest.raises(ReplicaNotFoundError, match=r"does not exist.*replica create"),
        served(tmp_path / "nope"),
    ):
        pytest.fail("served")


def test_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(ReplicaNotFoundError, match=r"is empty.*replica create"), served(tmp_path):
        pytest.fail("served")


@pytest.mark.parametrize("which", ["s3_port", "stac_port"])
def test_port_in_use(replica: Path, busy_port: int, which: str) -> None:
    with (
        pytest.raises(PortInUseError, match=f"127.0.0.1:{busy_port} is already in use.*or 0"),
        served(replica, **{which: busy_port}),
    ):
        pytest.fail("served")


def test_corrupt_json_line(replica: Path) -> None:
    items = replica / "stac" / "items.ndjson"
    lines = items.read_text().splitlines()
    items.write_text(lines[0] + "\n" + lines[1][:40] + "\n")
    with (
        pytest.raises(StacItemError, match=r"items.ndjson line 2: .*not valid JSON.*--overwrite"),
        served(replica),
    ):
        pytest.fail("served")


def test_missing_asset_file(replica: Path) -> None:
    item = json.loads((replica / "stac" / "items.ndjson").read_text().splitlines()[1])
    Path(item["assets"]["red"]["href"]).unlink()
    with (
        pytest.raises(StacItemError, match=rf"line 2 \(item '{ITEMS[1][0]}'\).*'red'.*not exist"),
        served(replica),
    ):
        pytest.fail("served")


@pytest.mark.parametrize(
    ("change", "what"),
    [
        ({"bbox": [1, 2]}, "bbox"),
        ({"properties": {"datetime": "yesterday"}}, "datetime"),
        ({"collection": "landsat"}, "collection"),
        ({"id": ITEMS[0][0]}, "duplicate item id, first seen on line 1"),
        ({"geometry": None}, "geometry"),
    ],
)
def test_invalid_item(replica: Path, change: dict[str, Any], what: str) -> None:
    items = replica / "stac" / "items.ndjson"
    lines = items.read_text().splitlines()
    lines[1] = json.dumps({**json.loads(lines[1]), **change})
    items.write_text("\n".join(lines) + "\n")
    with pytest.raises(StacItemError, match=f"line 2.*{what}"), served(replica):
        pytest.fail("served")


def test_cli_missing_dir(tmp_path: Path) -> None:
    missing = tmp_path / "missing"
    result = subprocess.run(
        [sys.executable, "-m", "cubestream.cli", "replica", "serve", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3  # ExitCode.INPUT
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cubestream: error: replica directory") and str(missing) in lines[0]
    assert not _rustac_children()


# --- serving -------------------------------------------------------------------------------------


def test_served_in_process_cleans_up(replica: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), served(replica) as endpoints:
        assert _rustac_children()
        assert Endpoints.from_json(endpoints.to_json()) == endpoints
        raise RuntimeError("boom")
    assert not _rustac_children()
    with served(replica) as again:  # moto's state was reset: the bucket can be made again
        assert again.bucket == BUCKET
        with pytest.raises(ReplicaError, match="already served"), served(replica):
            pytest.fail("served twice")


def _wait_for_log(path: str, what: dict[str, Any], timeout: float = 5) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        for record in read_access_log(path):
            if all(record.get(k) == v for k, v in what.items()):
                return record
        assert time.monotonic() < deadline, f"no access log line with {what}"
        time.sleep(0.05)


def test_serve_subprocess(replica: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    process, endpoints = start_replica_server(replica, timeout=60)
    try:
        _check_objects(replica, endpoints)
        _check_stac(endpoints)
        _check_gdal(endpoints, monkeypatch)
    finally:
        assert stop_replica_server(process) == 0
    assert not psutil.pid_exists(process.pid) or psutil.Process(process.pid).status() == "zombie"


def _check_objects(replica: Path, endpoints: Endpoints) -> None:
    key = f"sentinel-2-l2a/37/M/BU/2022/1/{ITEMS[0][0]}/B04.tif"
    local = (replica / "objects" / key).read_bytes()
    s3 = boto3.client("s3", **endpoints.boto3_kwargs())
    assert s3.get_object(Bucket=endpoints.bucket, Key=key)["Body"].read() == local
    listed = s3.list_objects_v2(Bucket=endpoints.bucket)["KeyCount"]
    assert listed == 4
    request = urllib.request.Request(endpoints.http_url(key), headers={"Range": "bytes=100-1099"})
    with urllib.request.urlopen(request) as response:  # anonymous, plain HTTP
        assert response.status == 206
        assert response.read() == local[100:1100]
    record = _wait_for_log(endpoints.access_log, {"range": "bytes=100-1099"})
    assert record["method"] == "GET" and record["status"] == 206 and record["bytes"] == 1000
    assert record["path"] == f"/{BUCKET}/{key}" and record["key"] == key
    assert not [r for r in read_access_log(endpoints.access_log) if r["method"] == "PUT"]
    fs = s3fs.S3FileSystem(**endpoints.storage_options())
    assert fs.cat(endpoints.s3_url("era5/era5.zarr/c.0.0"), start=256, end=260) == bytes(range(4))


def _check_stac(endpoints: Endpoints) -> None:
    from pystac_client import Client

    client = Client.open(endpoints.stac_api)
    search = client.search(
        collections=[COLLECTION], bbox=[36.5, -2.8, 36.6, -2.7], datetime="2022-01-01/2022-01-07"
    )
    items = list(search.items())
    assert [item.id for item in items] == [ITEMS[0][0]]
    asset = items[0].assets["red"]
    key = f"sentinel-2-l2a/37/M/BU/2022/1/{ITEMS[0][0]}/B04.tif"
    assert asset.href == endpoints.http_url(key)
    assert asset.extra_fields["alternate"] == {"s3": {"href": f"s3://{BUCKET}/{key}"}}
    every = client.search(collections=[COLLECTION], bbox=BBOX, datetime="2022-01-01/2022-02-01")
    assert len(list(every.items())) == len(ITEMS)


def _check_gdal(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    key = f"sentinel-2-l2a/37/M/BU/2022/1/{ITEMS[1][0]}/B04.tif"
    window = ((16, 32), (16, 32))
    with endpoints.rasterio_env(), rasterio.open(f"/vsis3/{endpoints.bucket}/{key}") as signed:
        block = signed.read(1, window=window)
    assert block.shape == (16, 16)
    with rasterio.open(f"/vsicurl/{endpoints.http_url(key)}") as anonymous:
        assert (anonymous.read(1, window=window) == block).all()
    for name, value in endpoints.gdal_env().items():
        monkeypatch.setenv(name, value)
    with rasterio.open(f"/vsis3/{endpoints.bucket}/{key}") as from_environ:
        assert (from_environ.read(1, window=window) == block).all()


def test_sigint_stops_server(replica: Path) -> None:
    process, _ = start_replica_server(replica, timeout=60)
    assert stop_replica_server(process, sig=signal.SIGINT) == 0
