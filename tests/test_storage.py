"""Storage settings: one S3 description gives GDAL, rasterio, fsspec and boto3 what they need."""

from __future__ import annotations

import pickle
from pathlib import Path

import fsspec
import h5py
import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr
from zarr.storage import FsspecStore, LocalStore

from cubestream._gdalenv import CREDENTIALS, StaticAWSSession, rasterio_env, session_options
from cubestream.replica import layout
from cubestream.replica.serve import Endpoints
from cubestream.storage import (
    S3Settings,
    ZarrMode,
    filesystem,
    is_url,
    open_file,
    open_group,
    open_h5,
    storage_options,
    zarr_store,
)

SERVED = S3Settings(endpoint_url="http://127.0.0.1:9000", region="af-south-1", key="k", secret="s")


def test_one_description_gives_each_client_its_settings() -> None:
    assert SERVED.gdal_options() == {
        "AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "af-south-1",
        "AWS_DEFAULT_REGION": "af-south-1", "AWS_NO_SIGN_REQUEST": "NO",
    }  # fmt: skip
    assert SERVED.storage_options() == {
        "key": "k", "secret": "s",
        "client_kwargs": {"endpoint_url": "http://127.0.0.1:9000", "region_name": "af-south-1"},
    }  # fmt: skip
    assert SERVED.boto3_kwargs()["aws_access_key_id"] == "k"


def test_without_credentials_requests_are_not_signed() -> None:
    public = S3Settings(region="us-west-2")
    assert public.gdal_options() == {
        "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-west-2", "AWS_NO_SIGN_REQUEST": "YES",
    }  # fmt: skip
    assert public.storage_options() == {"anon": True, "client_kwargs": {"region_name": "us-west-2"}}


def test_credentials_travel_in_one_picklable_session() -> None:
    options = session_options({**SERVED.gdal_options(), "GDAL_CACHEMAX": "64"})
    assert not set(CREDENTIALS) & set(options), "rasterio refuses them as options"
    assert options["GDAL_CACHEMAX"] == 64 and options["AWS_S3_ENDPOINT"] == "127.0.0.1:9000"
    session = pickle.loads(pickle.dumps(options["session"]))
    assert isinstance(session, StaticAWSSession)
    assert session.credentials == {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}
    assert "session" not in session_options({"GDAL_HTTP_TIMEOUT": "5"})


def test_the_replica_endpoints_produce_the_storage_settings(
    replica_root: Path, replica_endpoints: Endpoints
) -> None:
    """Through the served S3 API: GDAL (rasterio) and fsspec read the same COG."""
    settings = replica_endpoints.s3()
    assert replica_endpoints.storage_options() == settings.storage_options()
    assert replica_endpoints.gdal_env().items() >= settings.gdal_options().items()
    objects = replica_root / layout.OBJECTS_DIR
    cog = next(p for p in sorted(objects.rglob("*.tif")) if "strata" not in p.parts)
    key = cog.relative_to(objects).as_posix()
    with rasterio.open(cog) as local:
        want = local.read(1, window=((0, 64), (0, 64)))
    url = f"/vsis3/{replica_endpoints.bucket}/{key}"
    for env in (rasterio_env(replica_endpoints.gdal_env()), replica_endpoints.rasterio_env()):
        with env, rasterio.open(url) as remote:
            np.testing.assert_array_equal(remote.read(1, window=((0, 64), (0, 64))), want)
    fs, path = fsspec.core.url_to_fs(replica_endpoints.s3_url(key), **settings.storage_options())
    assert fs.cat_file(path) == cog.read_bytes()


def test_settings_become_storage_options_for_urls_only() -> None:
    assert storage_options(SERVED) == SERVED.storage_options()
    given = {"anon": True}
    assert storage_options(given) == given and storage_options(given) is not given
    assert storage_options(None) == {}
    assert [is_url(u) for u in ("s3://b/k", "file:///tmp/a", "a/b.zarr", Path("s3://b"))] == [
        True, True, False, False,
    ]  # fmt: skip
    fs, path = filesystem("data/x.h5", SERVED)
    assert "file" in fs.protocol and path.endswith("data/x.h5")


def test_a_local_zarr_store_opens_like_zarr_opens_a_path(tmp_path: Path) -> None:
    url = str(tmp_path / "missing.zarr")
    modes: tuple[ZarrMode, ...] = ("r", "r+")
    for mode in modes:
        with pytest.raises(FileNotFoundError):
            zarr_store(url, mode=mode)
    assert not (tmp_path / "missing.zarr").exists(), "a failed open leaves nothing behind"
    url = str(tmp_path / "new.zarr")
    written = open_group(url, SERVED, mode="w")  # settings are ignored for a path
    written.create_array("v", data=np.arange(6, dtype=np.int16))
    store = zarr_store(url)
    assert isinstance(store, LocalStore) and store.read_only
    assert not zarr_store(url, mode="a").read_only
    group = open_group(url)
    assert group.metadata.zarr_format == 3
    np.testing.assert_array_equal(np.asarray(group.get("v")), np.arange(6))
    with pytest.raises(zarr.errors.GroupNotFoundError):
        open_group(url, zarr_format=2)


def test_credentials_reach_zarr_fsspec_and_h5py_one_way(
    replica_root: Path, replica_endpoints: Endpoints, tmp_path: Path
) -> None:
    """Through the served S3 API: a zarr group and a file written, read back, an HDF5 read."""
    settings = replica_endpoints.s3()
    fs, _ = filesystem("s3://storage-test", settings)
    fs.mkdir("storage-test")
    try:
        url = "s3://storage-test/roundtrip.zarr"
        written = open_group(url, settings, mode="w")
        data = np.arange(12, dtype=np.float32).reshape(3, 4)
        written.create_array("v", data=data, dimension_names=("y", "x"))
        written.attrs["note"] = "written over S3"
        store = zarr_store(url, settings)
        assert isinstance(store, FsspecStore) and store.read_only
        # settings as an S3Settings or as the storage_options the stage configs carry
        for given in (settings, settings.storage_options()):
            group = open_group(url, given)
            assert group.attrs["note"] == "written over S3"
            np.testing.assert_array_equal(np.asarray(group.get("v")), data)
        ds = xr.open_zarr(zarr_store(url, settings), consolidated=False)
        assert ds["v"].shape == (3, 4)
        with open_file("s3://storage-test/report.json", settings, "w") as handle:
            handle.write('{"ok": true}\n')
        assert fs.cat_file("storage-test/report.json") == b'{"ok": true}\n'
    finally:
        fs.rm("storage-test", recursive=True)
    local_report = tmp_path / "deep" / "report.json"
    with open_file(str(local_report), settings, "w") as handle:
        handle.write("{}\n")
    assert local_report.read_text() == "{}\n"

    objects = replica_root / layout.OBJECTS_DIR
    granule = next(iter(sorted(objects.rglob("*.h5"))))
    key = granule.relative_to(objects).as_posix()
    with open_h5(str(granule)) as local:
        name = _first_dataset(local)
        want = local[name][...]
    with open_h5(granule.as_uri()) as local:
        np.testing.assert_array_equal(local[name][...], want)
    with open_h5(replica_endpoints.s3_url(key), settings, block_size=64 * 1024) as remote:
        np.testing.assert_array_equal(remote[name][...], want)


def _first_dataset(f: h5py.File) -> str:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names[0]
