"""Fixtures of the L2 tests: a hand-built L1 store, its locations table, a Dask cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from l1_fixture import write_l1, write_locations


@pytest.fixture(scope="session")
def l2_client() -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        yield client


@pytest.fixture(scope="session")
def l1_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_l1(
        tmp_path_factory.mktemp("l1") / "l1.zarr", cloudy=("37MCU1111",), water=("37MCU1112",)
    )


@pytest.fixture(scope="session")
def locations(l1_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_locations(tmp_path_factory.mktemp("loc") / "locations.parquet", l1_store)
