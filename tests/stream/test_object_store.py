"""The loader's two clients of ``s3://`` stores (fsspec, obstore) deliver the same batches.

Both read one store served by the replica's S3 server class, with the endpoint and
credentials of one :class:`~cubestream.storage.S3Settings`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cubestream.errors import LoaderConfigError, LoaderStoreNotFoundError
from cubestream.storage import S3Settings
from cubestream.stream import make_loader
from cubestream.stream.store import open_store

BUCKET = "l2-object-store"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Settings]:
    """The replica's S3 server on loopback with an empty bucket, and its settings."""
    import s3fs

    from cubestream.replica._s3server import AccessLog, S3Server

    log = AccessLog(tmp_path_factory.mktemp("s3") / "access.ndjson")
    server = S3Server("127.0.0.1", 0, log)
    endpoint = f"http://127.0.0.1:{server.port}"
    server.start()
    found = S3Settings(endpoint_url=endpoint, region="us-west-2", key="id-1", secret="secret-1")
    s3fs.S3FileSystem(**found.storage_options()).mkdir(BUCKET)
    try:
        yield found
    finally:
        server.stop(endpoint)
        log.close()


@pytest.fixture(scope="module")
def url(store_s4: str, settings: S3Settings) -> str:
    import s3fs

    target = f"{BUCKET}/{Path(store_s4).name}"
    s3fs.S3FileSystem(**settings.storage_options()).put(store_s4, target, recursive=True)
    return f"s3://{target}"


def test_both_clients_give_identical_batches(url: str, settings: S3Settings) -> None:
    got = {
        kind: list(
            make_loader(
                url,
                storage_options=settings.storage_options(),
                object_store=kind,
                batch_size=4,
                seed=3,
                chunk_buffer=2,
                decode="device",
            )
        )
        for kind in ("fsspec", "obstore")
    }
    assert len(got["fsspec"]) == len(got["obstore"]) == 8
    for a, b in zip(got["fsspec"], got["obstore"], strict=True):
        assert a.keys() == b.keys() and a["cube_id"] == b["cube_id"]
        for name, value in a.items():
            if name != "cube_id":
                assert value.dtype == b[name].dtype
                np.testing.assert_array_equal(value.numpy(), b[name].numpy())


def test_obstore_takes_credentials_from_the_settings(url: str, settings: S3Settings) -> None:
    group = open_store(url, settings.storage_options(), "obstore")
    config = group.store.store.config  # type: ignore[attr-defined]
    assert config["endpoint"] == settings.endpoint_url
    assert config["access_key_id"] == settings.key
    assert config["secret_access_key"] == settings.secret
    assert config["region"] == settings.region
    assert S3Settings.from_storage_options(settings.storage_options()) == settings


def test_unsigned_settings_skip_the_signature() -> None:
    anonymous = S3Settings(endpoint_url="https://example.org")
    config = anonymous.obstore_config()
    assert config["config"]["skip_signature"] is True
    assert config["client_options"] == {"allow_http": False}
    assert S3Settings.from_storage_options(anonymous.storage_options()) == anonymous


def test_missing_store_and_unknown_client_are_named(url: str, settings: S3Settings) -> None:
    missing = url + "-missing"
    with pytest.raises(LoaderStoreNotFoundError, match="missing"):
        open_store(missing, settings.storage_options(), "obstore")
    with pytest.raises(LoaderConfigError, match="object_store='boto'"):
        open_store(url, settings.storage_options(), "boto")  # type: ignore[arg-type]
    options = {**settings.storage_options(), "profile": "dev"}
    with pytest.raises(LoaderConfigError, match=r"\['profile'\].*object_store=\"fsspec\""):
        open_store(url, options, "obstore")
