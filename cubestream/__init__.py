"""cubestream: Earth-observation archives to deep-learning minicubes, streamed into training."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
