"""A level-1 build against a flaky object store yields the store a clean build writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zarr

from cubestream.execution import ClientOptions, open_client
from cubestream.l1 import L1Config, build_l1
from cubestream.replica import layout
from cubestream.replica.spec import load_spec
from cubestream.sample.boxes import tile_boxes
from cubestream.testing import read_access_log, start_replica_server, stop_replica_server

ARRAYS = ("s2", "scl", "data_fraction")


def _locations(replica_root: Path, out: Path) -> Path:
    """Two boxes of the imaged window, with the columns the build reads."""
    spec = load_spec(replica_root)
    win = spec.data_windows["37MBU"]
    boxes = tile_boxes("37MBU")
    inside = boxes[(boxes["row"] == win.row // 128) & (boxes["col"] >= win.col // 128)]
    inside.head(2).assign(split="train").to_parquet(out)
    return out


def _config(replica_root: Path, stac: str, locations: Path, out: Path, **kw: object) -> L1Config:
    spec = load_spec(replica_root)
    return L1Config(
        locations=str(locations),
        stac=stac,
        out=str(out),
        start=spec.start,
        end=spec.end,
        **kw,  # type: ignore[arg-type]
    )


def _build(config: L1Config) -> dict[str, Any]:
    with open_client(ClientOptions(workers=1, threads=2)) as client:
        return build_l1(config, client=client)


@pytest.mark.slow
def test_flaky_store_yields_the_identical_store(replica_root: Path, tmp_path: Path) -> None:
    locations = _locations(replica_root, tmp_path / "locations.parquet")
    clean = tmp_path / "clean.zarr"
    items = str(replica_root / layout.ITEMS_FILE)
    report = _build(_config(replica_root, items, locations, clean))
    assert report["tiles"]["37MBU"]["status"] == "built"
    process, endpoints = start_replica_server(replica_root, fail_rate=0.2, fail_seed=4)
    try:
        flaky = tmp_path / "flaky.zarr"
        gdal_env = {"GDAL_HTTP_RETRY_DELAY": "0.05", "GDAL_HTTP_MAX_RETRY": "10"}
        config = _config(replica_root, endpoints.stac_api, locations, flaky, gdal_env=gdal_env)
        report = _build(config)
        log = read_access_log(endpoints.access_log)
    finally:
        stop_replica_server(process)
    assert report["tiles"]["37MBU"]["status"] == "built"
    assert sum(record["fault"] for record in log) > 10
    for name in ARRAYS:
        want = zarr.open_array(str(clean), path=f"37MBU/{name}", mode="r")[...]
        got = zarr.open_array(str(flaky), path=f"37MBU/{name}", mode="r")[...]
        np.testing.assert_array_equal(got, want)
