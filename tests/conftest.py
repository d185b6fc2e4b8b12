"""Shared fixtures: the replica world and its served endpoints (helpers in cubestream.testing)."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from cubestream.endpoints import Endpoints
from cubestream.testing import create_test_replica, served_replica


@pytest.fixture(scope="session")
def replica_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``tiny`` replica world, created once per test session (see create_test_replica)."""
    return create_test_replica(tmp_path_factory.mktemp("replica"))


@pytest.fixture(scope="session")
def replica_endpoints(replica_root: Path) -> Iterator[Endpoints]:
    """The ``tiny`` replica served by ``cubestream replica serve`` for the whole session."""
    with served_replica(replica_root) as endpoints:
        yield endpoints
