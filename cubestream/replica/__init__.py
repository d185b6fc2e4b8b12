"""The local replica of the production archives: a synthetic world in the real formats, served.

Public entry points: :func:`create_replica` writes a world into a directory (see
:mod:`cubestream.replica.layout` for what goes where); :func:`serve` serves it on loopback through
an S3 API and a STAC API; :class:`ReplicaSpec` and :func:`preset` define worlds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cubestream._lazy import lazy_attributes

if TYPE_CHECKING:
    from cubestream.replica.create import create_replica
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
    "ReplicaSpec",
    "Window",
    "World",
    "create_replica",
    "load_spec",
    "preset",
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
}


__getattr__ = lazy_attributes(__name__, _WHERE)
