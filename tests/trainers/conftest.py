"""Fixtures of the trainer tests: tiny synthetic L2 stores (models and settings: trainer_models)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from replica_l2 import write_replica_l2
from trainer_models import SIZE

from cubestream.l2.synthetic import write_synthetic_l2


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    """The test machine is shared: keep torch to one thread per process."""
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def l2_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 samples of 32 x 32 px: 6 train, 2 val, 2 test."""
    return write_synthetic_l2(tmp_path_factory.mktemp("l2") / "l2.zarr", samples=10, size=SIZE)


@pytest.fixture(scope="session")
def replica_l2_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The replica world's L2 store (``replica_l2``): 8 samples of 32 x 32 px, 6 train, 2 val."""
    from distributed import LocalCluster

    root = tmp_path_factory.mktemp("replica_l2")
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        yield write_replica_l2(root, scheduler=cluster.scheduler_address)
