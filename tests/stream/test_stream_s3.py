"""Reading the store from S3 (moto, as the replica serves it) gives the batches read from disk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cubestream.stream import make_loader

BUCKET = "l2-test"


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """An S3 API (moto, the replica's server class) on loopback with an empty bucket."""
    import s3fs

    from cubestream.replica._s3server import AccessLog, S3Server

    log = AccessLog(tmp_path_factory.mktemp("s3") / "access.ndjson")
    server = S3Server("127.0.0.1", 0, log)
    endpoint = f"http://127.0.0.1:{server.port}"
    server.start()
    options = {
        "key": "testing",
        "secret": "testing",
        "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-west-2"},
    }
    s3fs.S3FileSystem(**options).mkdir(BUCKET)
    try:
        yield options
    finally:
        server.stop(endpoint)
        log.close()


def upload(store: str, options: dict[str, Any]) -> str:
    import s3fs

    url = f"s3://{BUCKET}/{Path(store).name}"
    fs = s3fs.S3FileSystem(**options)
    fs.put(store, url.removeprefix("s3://"), recursive=True)
    return url


def test_s3_gives_the_batches_of_disk(store_s4: str, s3: dict[str, Any]) -> None:
    url = upload(store_s4, s3)
    options = {"batch_size": 4, "seed": 9, "chunk_buffer": 2}
    disk = list(make_loader(store_s4, **options))
    remote = list(make_loader(url, storage_options=s3, **options))
    assert len(disk) == len(remote) == 8
    for a, b in zip(disk, remote, strict=True):
        assert a.keys() == b.keys() and a["cube_id"] == b["cube_id"]
        for name, value in a.items():
            if name != "cube_id":
                np.testing.assert_array_equal(value.numpy(), b[name].numpy())
    workers = make_loader(
        url,
        storage_options=s3,
        num_workers=2,
        variables=["kndvi"],
        multiprocessing_context="forkserver",
        **options,
    )
    got = [batch["sample"].tolist() for batch in workers]
    assert got == [batch["sample"].tolist() for batch in disk]
