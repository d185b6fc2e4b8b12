"""The local replica of the production archives: a synthetic world in the real formats, served.

Public entry points: :func:`create_replica` writes a world into a directory (see
:mod:`cubestream.replica.layout` for what goes where); :func:`serve` serves it on loopback through
an S3 API and a STAC API (:func:`start_replica_server` runs ``cubestream replica serve`` in a
subprocess and returns its :class:`Endpoints`); :class:`ReplicaSpec` and :func:`preset` define
worlds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cubestream._lazy import lazy_attributes

if TYPE_CHECKING:
    from cubestream.endpoints import Endpoints
    from cubestream.replica.create import create_replica
    from cubestream.replica.process import start_replica_server, stop_replica_server
    from cubestream.replica.serve import serve, served
    from cubestream.replica.spec import (
        BANDS,
        BUCKET,
        PRESETS,
        ReplicaSpec,
        Window,
        load_spec,
        preset,
    )
    from cubestream.replica.world import Acquisition, World

__all__ = [
    "BANDS",
    "BUCKET",
    "PRESETS",
    "Acquisition",
    "Endpoints",
    "ReplicaSpec",
    "Window",
    "World",
    "create_replica",
    "load_spec",
    "preset",
    "serve",
    "served",
    "start_replica_server",
    "stop_replica_server",
]

_WHERE = {
    "create_replica": "create",
    "BANDS": "spec",
    "BUCKET": "spec",
    "PRESETS": "spec",
    "ReplicaSpec": "spec",
    "Window": "spec",
    "load_spec": "spec",
    "preset": "spec",
    "Acquisition": "world",
    "World": "world",
    "serve": "serve",
    "served": "serve",
    "Endpoints": "serve",
    "start_replica_server": "process",
    "stop_replica_server": "process",
}


__getattr__ = lazy_attributes(__name__, _WHERE)
