"""Fault injection of the replica's S3 API: a seeded share of object reads fail, clients retry."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import h5py
import numpy as np
import pytest
import rasterio
import s3fs
from affine import Affine
from rasterio.windows import Window

from cubestream.errors import ReplicaError
from cubestream.replica.layout import COLLECTION
from cubestream.replica.serve import Endpoints, FailStatus, served
from cubestream.replica.spec import ReplicaSpec
from cubestream.sources.config import gdal_options
from cubestream.testing import read_access_log, start_replica_server, stop_replica_server

ITEM = "S2A_37MBU_20220105_0_L2A"
BANDS = ("red", "nir08")
SMAP_KEY = "smap/SPL4SMGP.007/2022.01.05/SMAP_L4_SM_gph_20220105T013000_Vv7032_001.h5"
BBOX = [36.27, -3.09, 37.26, -2.10]
WINDOW = Window(200, 70, 128, 128)  # col, row: across four 128 px blocks
FAST_RETRIES = {"GDAL_HTTP_RETRY_DELAY": "0.05", "GDAL_HTTP_MAX_RETRY": "8"}


def _cog_key(band: str) -> str:
    return f"sentinel-2-l2a/37/M/BU/2022/1/{ITEM}/{band}.tif"


def _write_cog(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).integers(1, 10000, (1, 512, 512), dtype=np.uint16)
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=512,
        height=512,
        count=1,
        dtype="uint16",
        crs="EPSG:32737",
        transform=Affine(30, 0, 300000, 0, -30, 9700020),
        nodata=0,
        compress="DEFLATE",
        blocksize=128,
    ) as dst:
        dst.write(data)


def _write_smap(path: Path) -> None:
    """An HDF5 file laid out like a SMAP L4 granule (chunked, deflated), a few hundred KB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    with h5py.File(path, "w") as f:
        for name in ("sm_surface", "sm_rootzone", "surface_temp"):
            f.create_dataset(
                f"Geophysical_Data/{name}",
                data=rng.random((240, 360), dtype=np.float32),
                chunks=(60, 90),
                compression="gzip",
            )
        f.create_dataset("cell_lat", data=np.linspace(10, -10, 240, dtype=np.float32))


def _item(root: Path) -> dict[str, Any]:
    west, south, east, north = BBOX
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    assets = {}
    for seed, band in enumerate(BANDS):
        _write_cog(root / "objects" / _cog_key(band), seed)
        assets[band] = {"href": str(root / "objects" / _cog_key(band)), "type": "image/tiff"}
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": ITEM,
        "collection": COLLECTION,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": BBOX,
        "properties": {"datetime": "2022-01-05T07:54:21Z"},
        "links": [],
        "assets": assets,
    }


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A hand-made replica: one item with two 512 x 512 COGs, and one SMAP-like HDF5 file."""
    root = tmp_path_factory.mktemp("faults") / "replica"
    (root / "stac").mkdir(parents=True)
    item = _item(root)
    _write_smap(root / "objects" / SMAP_KEY)
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
    (root / "stac" / "items.ndjson").write_text(json.dumps(item) + "\n")
    (root / "replica.json").write_text(json.dumps({"spec": ReplicaSpec().to_dict()}))
    return root


def _range_get(url: str, start: int, size: int, method: str = "GET") -> tuple[int, bytes]:
    headers = {"Range": f"bytes={start}-{start + size - 1}"}
    request = urllib.request.Request(url, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _statuses(endpoints: Endpoints, n: int) -> list[int]:
    url = endpoints.http_url(_cog_key("red"))
    return [_range_get(url, 64 * k, 100)[0] for k in range(n)]


# --- the server --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [(503, "SlowDown"), (500, "InternalError"), (429, "TooManyRequests"), (403, "Throttling")],
)
def test_share_of_range_gets_fail(replica: Path, status: FailStatus, code: str) -> None:
    local = (replica / "objects" / _cog_key("red")).read_bytes()
    url_key = _cog_key("red")
    n = 400
    with served(replica, fail_rate=0.3, fail_status=status, fail_seed=3) as endpoints:
        answers = [_range_get(endpoints.http_url(url_key), 64 * k, 100) for k in range(n)]
        log = read_access_log(endpoints.access_log)
    failed = [body for got, body in answers if got == status]
    assert {got for got, _ in answers} == {206, status}
    assert abs(len(failed) / n - 0.3) < 0.07
    assert all(f"<Code>{code}</Code>".encode() in body for body in failed)
    for k, (got, body) in enumerate(answers):
        assert got == status or body == local[64 * k : 64 * k + 100]
    assert [r["status"] for r in log] == [got for got, _ in answers]
    assert all(r["fault"] == (r["status"] == status) for r in log)
    assert sum(r["bytes"] for r in log) == 100 * (n - len(failed))  # failures count 0 bytes


def test_failures_are_repeatable(replica: Path) -> None:
    with served(replica, fail_rate=0.3, fail_seed=5) as endpoints:
        first = _statuses(endpoints, 60)
    with served(replica, fail_rate=0.3, fail_seed=5) as endpoints:
        again = _statuses(endpoints, 60)
    with served(replica, fail_rate=0.3, fail_seed=6) as endpoints:
        other = _statuses(endpoints, 60)
    assert first == again
    assert other != first


def test_bucket_requests_never_fail(replica: Path) -> None:
    with served(replica, fail_rate=1.0) as endpoints:
        s3 = boto3.client("s3", **endpoints.boto3_kwargs())
        assert s3.list_objects_v2(Bucket=endpoints.bucket)["KeyCount"] == 3
        url = endpoints.http_url(_cog_key("red"))
        assert _range_get(url, 0, 10)[0] == 503
        assert _range_get(url, 0, 10, method="HEAD") == (503, b"")


@pytest.mark.parametrize(("option", "value"), [("fail_rate", 1.5), ("fail_status", 404)])
def test_invalid_fault_options(replica: Path, option: str, value: float) -> None:
    with (
        pytest.raises(ReplicaError, match=option.replace("_", " ")),
        served(replica, **{option: value}),
    ):
        pytest.fail("served")


def test_cli_rejects_a_bad_fail_rate(replica: Path) -> None:
    command = [sys.executable, "-m", "cubestream.cli", "replica", "serve", str(replica)]
    result = subprocess.run(
        [*command, "--fail-rate", "2"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3 and result.stdout == ""  # ExitCode.INPUT
    assert result.stderr.startswith("cubestream: error: fail rate must be within [0, 1], not 2")


# --- the clients retry ------------------------------------------------------------------------


def _gdal_env(endpoints: Endpoints, extra: dict[str, str]) -> dict[str, Any]:
    """The level-1 build's GDAL options (with faster retries) for the served bucket."""
    options = {**gdal_options(extra), **endpoints.gdal_env()}
    return {k: int(v) if v.isdigit() else v for k, v in options.items()}


def _local_window(replica: Path, band: str) -> np.ndarray:
    with rasterio.open(replica / "objects" / _cog_key(band)) as src:
        return np.asarray(src.read(1, window=WINDOW))


@pytest.fixture(scope="module")
def flaky(replica: Path) -> Iterator[Endpoints]:
    """The replica served by ``cubestream replica serve --fail-rate 0.3`` (a subprocess)."""
    process, endpoints = start_replica_server(replica, timeout=60, fail_rate=0.3, fail_seed=11)
    try:
        yield endpoints
    finally:
        assert stop_replica_server(process) == 0


@pytest.mark.parametrize("scheme", ["http", "s3"])
def test_gdal_reads_exact_window(
    replica: Path, flaky: Endpoints, scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _gdal_env(flaky, FAST_RETRIES).items():
        monkeypatch.setenv(name, str(value))  # AWS credentials go through the environment
    before = len(read_access_log(flaky.access_log))
    for band in BANDS:
        key = _cog_key(band)
        path = (
            f"/vsicurl/{flaky.http_url(key)}"
            if scheme == "http"
            else f"/vsis3/{flaky.bucket}/{key}"
        )
        with rasterio.Env(VSI_CACHE=False), rasterio.open(path) as src:
            remote = src.read(1, window=WINDOW)
        np.testing.assert_array_equal(remote, _local_window(replica, band))
    log = read_access_log(flaky.access_log)[before:]
    assert any(r["fault"] and r["status"] == 503 for r in log)


@pytest.mark.parametrize("status", [403, 429, 500])
def test_gdal_retries_each_fault_status(
    replica: Path, status: FailStatus, monkeypatch: pytest.MonkeyPatch
) -> None:
    with served(replica, fail_rate=0.3, fail_status=status, fail_seed=2) as endpoints:
        for name, value in _gdal_env(endpoints, FAST_RETRIES).items():
            monkeypatch.setenv(name, str(value))
        for band in BANDS:
            path = f"/vsis3/{endpoints.bucket}/{_cog_key(band)}"
            with rasterio.Env(VSI_CACHE=False), rasterio.open(path) as src:
                remote = src.read(1, window=WINDOW)
            np.testing.assert_array_equal(remote, _local_window(replica, band))
        log = read_access_log(endpoints.access_log)
    assert any(r["fault"] and r["status"] == status for r in log)


def test_gdal_without_retries_fails(replica: Path) -> None:
    with served(replica, fail_rate=1.0) as endpoints:
        env = _gdal_env(endpoints, {"GDAL_HTTP_MAX_RETRY": "0"})
        with (
            rasterio.Env(**{k: v for k, v in env.items() if not k.startswith("AWS_")}),
            pytest.raises(rasterio.RasterioIOError),
        ):
            rasterio.open(f"/vsicurl/{endpoints.http_url(_cog_key('red'))}")


def test_s3fs_reads_smap_file(replica: Path, flaky: Endpoints) -> None:
    before = len(read_access_log(flaky.access_log))
    fs = s3fs.S3FileSystem(**flaky.storage_options())
    with (
        fs.open(f"{flaky.bucket}/{SMAP_KEY}", "rb", block_size=64 * 1024) as handle,
        h5py.File(handle, "r") as remote,
        h5py.File(replica / "objects" / SMAP_KEY, "r") as local,
    ):
        for name in ("sm_surface", "sm_rootzone", "surface_temp"):
            variable = f"Geophysical_Data/{name}"
            np.testing.assert_array_equal(remote[variable][...], local[variable][...])
    log = read_access_log(flaky.access_log)[before:]
    assert any(r["fault"] for r in log)
    assert fs.cat(f"{flaky.bucket}/{SMAP_KEY}") == (replica / "objects" / SMAP_KEY).read_bytes()
