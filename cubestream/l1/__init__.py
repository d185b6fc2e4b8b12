"""X2 + X3: the level-1 builder: minicubes read lazily from the archives into chunked Zarr."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cubestream.l1.build import L1Config, build_l1
    from cubestream.l1.plan import IntegrityPolicy, TilePlan, plan_tile

__all__ = ["IntegrityPolicy", "L1Config", "TilePlan", "build_l1", "plan_tile"]

_WHERE = {
    "L1Config": "build",
    "build_l1": "build",
    "IntegrityPolicy": "plan",
    "TilePlan": "plan",
    "plan_tile": "plan",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (keeps ``cubestream --help`` quick)."""
    if name in _WHERE:
        return getattr(import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
