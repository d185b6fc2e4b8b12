"""Fixtures of the trainer tests: a tiny synthetic L2 store and small model configs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from replica_l2 import write_replica_l2

from cubestream.l2.synthetic import write_synthetic_l2
from trainers.models import RNN, Contextformer, ContextRNN, ConvLSTM
from trainers.setting import KndviSetting
from trainers.testing import SyntheticL2DataModule

SIZE = 32


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


def tiny_rnn(**kwargs: object) -> RNN:
    return RNN(**{"hidden": 16, "weather_hidden": 8, **kwargs})  # type: ignore[arg-type]


def tiny_context_rnn(**kwargs: object) -> ContextRNN:
    options: dict[str, object] = {
        "hidden": 16,
        "embedding": 8,
        "weather_hidden": 8,
        "pyramid_channels": 16,
        "segmentation_channels": 8,
    }
    return ContextRNN(**{**options, **kwargs})  # type: ignore[arg-type]


def setting_of(
    store: Path, batch_size: int = 2, seed: int = 0, loader: str = "helper"
) -> KndviSetting:
    """The Setting over the test helper loader, or over cubestream.stream (``"stream"``)."""
    if loader == "stream":
        return KndviSetting(str(store), batch_size=batch_size, num_workers=0, seed=seed)
    helper = SyntheticL2DataModule(store, batch_size=batch_size, seed=seed)
    return KndviSetting(str(store), batch_size=batch_size, loader=helper)


def tiny_conv_lstm(**kwargs: object) -> ConvLSTM:
    return ConvLSTM(**{"hidden": 4, "layers": 2, **kwargs})  # type: ignore[arg-type]


def tiny_contextformer(**kwargs: object) -> Contextformer:
    options: dict[str, object] = {"width": 16, "depth": 1, "heads": 2, "patch": 4}
    return Contextformer(**{**options, "spatial_depth": 1, **kwargs})  # type: ignore[arg-type]
