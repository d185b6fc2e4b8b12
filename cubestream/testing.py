"""Helpers for tests of cubestream and of the code that uses it: a small replica, served.

Plain functions, no pytest: ``tests/conftest.py`` turns :func:`create_test_replica` and
:func:`served_replica` into the session fixtures ``replica_root`` and ``replica_endpoints``.
The server's process control itself is :mod:`cubestream.replica.process` (re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cubestream.endpoints import Endpoints
from cubestream.replica.process import (
    read_access_log,
    start_replica_server,
    stop_replica_server,
)

__all__ = [
    "create_test_replica",
    "write_test_cog",
    "read_access_log",
    "served_replica",
    "start_replica_server",
    "stop_replica_server",
    "write_replica_locations",
]


def create_test_replica(base: Path) -> Path:
    """A ``tiny`` replica world under ``base`` (or in ``$CUBESTREAM_TEST_REPLICA``).

    Set ``CUBESTREAM_TEST_REPLICA`` to a directory to keep the world between sessions (it is
    created there if missing, and reused if it holds the same spec).
    """
    from cubestream.replica.create import create_replica
    from cubestream.replica.spec import preset

    kept = os.environ.get("CUBESTREAM_TEST_REPLICA")
    root = Path(kept) if kept else base / "tiny"
    return create_replica(root, preset("tiny"))


@contextmanager
def served_replica(root: Path) -> Iterator[Endpoints]:
    """The replica at ``root`` served by ``cubestream replica serve`` while the block runs."""
    process, endpoints = start_replica_server(root)
    try:
        yield endpoints
    finally:
        stop_replica_server(process)


def write_replica_locations(root: Path, out: Path, *, target: int, seed: int = 1) -> Path:
    """Sample ``target`` boxes of the replica at ``root`` into the locations table ``out``.

    Proportional allocation with no minimum per stratum, 8 km split blocks: the table the L1
    tests build from.
    """
    from cubestream.replica import layout
    from cubestream.sample import (
        AllocationRule,
        SampleConfig,
        SplitRule,
        StrataSources,
        sample_locations,
        write_locations,
    )

    config = SampleConfig(
        area=str(root / layout.IMAGED_FILE),
        strata=StrataSources.from_replica(root),
        target=target,
        allocation=AllocationRule(method="proportional", min_per_stratum=0),
        splits=SplitRule(block_km=8),
        seed=seed,
    )
    write_locations(sample_locations(config), out)
    return out


def write_test_cog(path: Path, values: Any, resolution: float, corner: tuple[float, float]) -> str:
    """Write a single-band uint16 COG as the archive's: UTM 37S, no-data 0, deflate, predictor 2.

    Parameters
    ----------
    path : Path
        Where to write.
    values : ndarray of uint16, 2-D
        The pixels.
    resolution : float
        Pixel size in metres.
    corner : tuple of float
        ``(x, y)`` of the upper-left corner.

    Returns
    -------
    str
        The path, as an href.
    """
    import rasterio
    from rasterio.transform import Affine

    height, width = values.shape
    with rasterio.open(
        path,
        "w",
        driver="COG",
        width=width,
        height=height,
        count=1,
        dtype="uint16",
        crs="EPSG:32737",
        transform=Affine(resolution, 0, corner[0], 0, -resolution, corner[1]),
        nodata=0,
        compress="DEFLATE",
        predictor=2,
        blocksize=64,
    ) as dst:
        dst.write(values, 1)
    return str(path)
