"""One world, every catalogue's schema: the L1 builds are equal pixel for pixel.

The replica writes its Sentinel-2 items in the schemas of Earth Search v1 (with the long PDI
``s2:tile_id`` on the 2025-style items), Earth Search Collection 1, Planetary Computer and CDSE,
over the same COGs, with the offset label wrong on some days where the real catalogues err, and
the same items correctly labelled (``*.truth.ndjson``). Each file is built with the default
``--offset verify``; every build must equal the build of the correctly labelled Earth Search
items, and the report must list exactly the mislabelled items as disagreements.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr

from cubestream.l1 import L1Config, build_l1
from cubestream.replica import layout
from cubestream.replica.spec import ReplicaSpec
from cubestream.replica.world import World
from cubestream.testing import write_replica_locations

TILE = "37MBU"


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=2, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def window(replica_root: Path) -> tuple[dt.date, dt.date]:
    """Three weeks around the tile's mislabelled day."""
    manifest = json.loads((replica_root / "replica.json").read_text())
    world = World(ReplicaSpec.from_dict(manifest["spec"]))
    (day,) = world.mislabelled_days(TILE)
    return day - dt.timedelta(days=10), day + dt.timedelta(days=10)


@pytest.fixture(scope="module")
def locations(replica_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loc") / "locations.parquet"
    return write_replica_locations(replica_root, out, target=2)


def _build(
    items: Path, locations: Path, window: tuple[dt.date, dt.date], out: Path, client: Any
) -> tuple[xr.Dataset, dict[str, Any]]:
    config = L1Config(
        locations=str(locations),
        stac=str(items),
        out=str(out),
        start=window[0],
        end=window[1],
        days_per_chunk=4,
    )
    report = build_l1(config, client=client)
    assert report["tiles"][TILE]["status"] == "built", report["tiles"][TILE]
    ds = xr.open_zarr(out, group=TILE, consolidated=False, mask_and_scale=False)
    return ds.load(), report


@pytest.fixture(scope="module")
def reference(
    replica_root: Path,
    locations: Path,
    window: tuple[dt.date, dt.date],
    client: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> xr.Dataset:
    truth = replica_root / layout.catalogue_files("earth-search")[1]
    out = tmp_path_factory.mktemp("l1") / "truth.zarr"
    ds, report = _build(truth, locations, window, out, client)
    assert report["offset_disagreements"] == []
    assert report["tiles"][TILE]["offset_decisions"].get("verified", 0) > 0
    return ds


@pytest.mark.parametrize(
    "catalogue", ["earth-search", "earth-search-c1", "planetary-computer", "cdse"]
)
def test_every_schema_builds_the_same_l1(
    catalogue: str,
    reference: xr.Dataset,
    replica_root: Path,
    locations: Path,
    window: tuple[dt.date, dt.date],
    client: Any,
    tmp_path: Path,
) -> None:
    items = replica_root / layout.catalogue_files(catalogue)[0]
    ds, report = _build(items, locations, window, tmp_path / "l1.zarr", client)
    np.testing.assert_array_equal(ds.time.values, reference.time.values)
    for name in ("s2", "scl", "data_fraction"):
        np.testing.assert_array_equal(ds[name].values, reference[name].values, err_msg=name)
    manifest = json.loads((replica_root / "replica.json").read_text())["mislabelled_offsets"]
    days = {str(d)[:10] for d in ds.time.values}
    in_window = [i for i in manifest[catalogue] if any(d.replace("-", "") in i for d in days)]
    flagged = sorted(d["item"] for d in report["offset_disagreements"])
    assert flagged == sorted(in_window)
    if catalogue in ("earth-search", "earth-search-c1"):
        assert flagged, "the replica mislabels one day of these catalogues"
        for d in report["offset_disagreements"]:
            assert (d["metadata"], d["dn"], d["status"]) == (0, 1000, "corrected")
            assert "+1000 in the data" in d["reason"]


def test_trusting_the_mislabels_shifts_that_day_only(
    reference: xr.Dataset,
    replica_root: Path,
    locations: Path,
    window: tuple[dt.date, dt.date],
    client: Any,
    tmp_path: Path,
) -> None:
    """What ``--offset trust`` would have stored: the mislabelled day 0.1 too bright."""
    config = L1Config(
        locations=str(locations),
        stac=str(replica_root / layout.catalogue_files("earth-search")[0]),
        out=str(tmp_path / "trust.zarr"),
        start=window[0],
        end=window[1],
        days_per_chunk=4,
        offset="trust",
    )
    report = build_l1(config, client=client)
    assert report["offset_disagreements"] == []
    ref = reference.s2.astype(np.int32)
    raw = xr.open_zarr(
        tmp_path / "trust.zarr", group=TILE, consolidated=False, mask_and_scale=False
    )
    got = raw.s2.load().astype(np.int32)
    valid = (ref > 0) & (got > 0)
    shifted = ((got - ref).where(valid) == 1000).any(dim=("cube", "band", "y", "x")).values
    assert shifted.sum() == 1, "exactly the mislabelled day is shifted by +1000 DN"
