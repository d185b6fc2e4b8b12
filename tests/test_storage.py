"""Storage settings: one S3 description gives GDAL, rasterio, fsspec and boto3 what they need."""

from __future__ import annotations

import pickle
from pathlib import Path

import fsspec
import numpy as np
import rasterio

from cubestream._gdalenv import CREDENTIALS, StaticAWSSession, rasterio_env, session_options
from cubestream.replica import layout
from cubestream.replica.serve import Endpoints
from cubestream.storage import S3Settings

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
