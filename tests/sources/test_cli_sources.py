"""`cubestream l1` hands the DEM and SMAP source options to the build and to its signature."""

from __future__ import annotations

from typing import Any

import pytest

import cubestream.l1
from cubestream.cli import main

BASE = ["l1", "--locations", "loc.parquet", "--stac", "items.ndjson", "--out", "l1.zarr"]
DAYS = ["--start", "2021-12-01", "--end", "2021-12-02"]


def configs(monkeypatch: pytest.MonkeyPatch, *argv: str) -> Any:
    seen: list[Any] = []

    def build(config: Any, *, client: Any = None, dry_run: bool = False) -> dict[str, Any]:
        seen.append(config)
        return {"tiles": {}, "seconds": 0.0}

    monkeypatch.setattr(cubestream.l1, "build_l1", build)
    # the inputs are names only here: their checks have their own test (tests/test_cli_errors.py)
    monkeypatch.setattr("cubestream._cli_inputs.check_l1", lambda args, options: None)
    assert main([*BASE, *DAYS, *argv]) == 0
    return seen[0]


def test_dem_and_smap_options_reach_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    old = configs(monkeypatch, "--srtm", "s3://bucket")
    assert (old.auxiliary.srtm, old.auxiliary.dem_source) == ("s3://bucket", "auto")
    assert old.auxiliary.smap_version is None
    new = configs(
        monkeypatch,
        "--dem",
        "s3://copernicus-dem-30m",
        "--dem-source",
        "copernicus",
        "--smap",
        "/data/SPL4SMGP.008",
        "--smap-version",
        "8",
    )
    aux = new.auxiliary
    assert (aux.srtm, aux.dem_source, aux.smap, aux.smap_version) == (
        "s3://copernicus-dem-30m",
        "copernicus",
        "/data/SPL4SMGP.008",
        "8",
    )
    signature = new.signature()
    assert signature["dem_source"] == "copernicus" and signature["smap_version"] == "8"
    assert old.signature()["dem_source"] == "auto"
    assert main([*BASE, *DAYS, "--dem", "x", "--dem-source", "lidar"]) == 2  # a usage error
