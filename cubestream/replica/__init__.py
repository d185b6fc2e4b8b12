"""The local replica of the production archives: a synthetic world in the real formats, served.

Public entry points: :func:`create_replica` writes a world into a directory (see
:mod:`cubestream.replica.layout` for what goes where); :func:`serve` serves it on loopback through
an S3 API and a STAC API; :class:`ReplicaSpec` and :func:`preset` define worlds.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (keeps ``cubestream --help`` quick)."""
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
