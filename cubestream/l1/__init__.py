"""X2 + X3: the level-1 builder: minicubes read lazily from the archives into chunked Zarr."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cubestream._lazy import lazy_attributes

if TYPE_CHECKING:
    from cubestream.l1.build import build_l1
    from cubestream.l1.config import IntegrityPolicy, L1Config
    from cubestream.l1.plan import TilePlan, plan_tile

__all__ = ["IntegrityPolicy", "L1Config", "TilePlan", "build_l1", "plan_tile"]

_WHERE = {
    "L1Config": "config",
    "build_l1": "build",
    "IntegrityPolicy": "config",
    "TilePlan": "plan",
    "plan_tile": "plan",
}


__getattr__ = lazy_attributes(__name__, _WHERE)
