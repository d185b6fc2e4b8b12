"""Small synthetic L2 stores (32 x 32 px) shared by the loader tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from cubestream.l2.synthetic import write_synthetic_l2


@pytest.fixture(scope="session")
def store_s1(tmp_path_factory: pytest.TempPathFactory) -> str:
    """24 samples, one per chunk; splits train, train, train, val, test."""
    root = tmp_path_factory.mktemp("stream") / "s1.zarr"
    return str(write_synthetic_l2(root, 24, samples_per_chunk=1, size=32, seed=1))


@pytest.fixture(scope="session")
def store_s4(tmp_path_factory: pytest.TempPathFactory) -> str:
    """30 samples, four per chunk (the last chunk holds two)."""
    root = tmp_path_factory.mktemp("stream") / "s4.zarr"
    return str(write_synthetic_l2(root, 30, samples_per_chunk=4, size=32, seed=2))


@pytest.fixture()
def no_dem(tmp_path: Path, store_s1: str) -> str:
    """A copy of ``store_s1`` without its ``dem`` variable."""
    import shutil

    copy = tmp_path / "no_dem.zarr"
    shutil.copytree(store_s1, copy)
    shutil.rmtree(copy / "dem")
    return str(copy)
