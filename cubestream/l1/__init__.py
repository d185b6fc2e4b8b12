"""X2 + X3: the level-1 builder: minicubes read lazily from the archives into chunked Zarr."""

from __future__ import annotations

from cubestream.l1.build import L1Config, build_l1
from cubestream.l1.plan import IntegrityPolicy, TilePlan, plan_tile

__all__ = ["IntegrityPolicy", "L1Config", "TilePlan", "build_l1", "plan_tile"]
