"""cubestream: Earth-observation archives to deep-learning minicubes, streamed into training."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

__all__ = ["__version__"]

try:
    __version__ = version("cubestream")
    """The installed distribution's version (``pyproject.toml``), as ``cubestream --version``."""
except PackageNotFoundError:  # a checkout on PYTHONPATH that was never installed
    __version__ = "0+unknown"
