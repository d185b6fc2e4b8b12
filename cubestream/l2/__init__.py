"""X4: the level-2 generator: deep-learning-ready minicubes from the L1 store."""

from __future__ import annotations

from cubestream.l2.schema import STEP_DAYS, STEPS, VARIABLES

__all__ = ["STEPS", "STEP_DAYS", "VARIABLES"]
