"""The pipeline's replica stage: the one module of ``cluster/`` that uses :mod:`cubestream.replica`.

``cubestream run`` on a pipeline with a ``replica`` stage creates the world (a command line, see
:mod:`cluster.pipeline_commands`) and serves it while ``l1`` runs; what it needs of the replica
beyond the command line is here: the period of a preset and the served world's endpoints.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cubestream.endpoints import Endpoints

__all__ = ["preset_period", "serving"]


def preset_period(name: str) -> tuple[str, str]:
    """First and last day (``YYYY-MM-DD``) of the replica preset ``name``."""
    from cubestream.replica.spec import preset

    world = preset(name)
    return world.start.isoformat(), world.end.isoformat()


@contextmanager
def serving(root: Path, access_log: Path) -> Iterator[Endpoints]:
    """Serve the replica at ``root`` (``cubestream replica serve``) while the block runs."""
    from cubestream.replica.process import start_replica_server, stop_replica_server

    process, endpoints = start_replica_server(root, access_log=access_log)
    try:
        yield endpoints
    finally:
        stop_replica_server(process)
