"""cubestream: Earth-observation archives to deep-learning minicubes, streamed into training.

The stages, in the order the data flows (each imported on first use, so ``import cubestream``
stays light)::

    sample_locations(SampleConfig(...))     # X1  cubestream.sample
    build_l1(L1Config(...))                 # X3  cubestream.l1 (reading through cubestream.sources)
    build_l2(L2Config(...))                 # X4  cubestream.l2
    make_loader("l2.zarr", split="train")   #     cubestream.stream (the [train] extra)
    describe("store.zarr")                  #     cubestream.inspect
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from cubestream._lazy import lazy_attributes

if TYPE_CHECKING:
    from cubestream.inspect import describe
    from cubestream.l1 import L1Config, build_l1
    from cubestream.l2 import L2Config, build_l2
    from cubestream.sample import SampleConfig, sample_locations
    from cubestream.stream import make_loader

__all__ = [
    "L1Config",
    "L2Config",
    "SampleConfig",
    "__version__",
    "build_l1",
    "build_l2",
    "describe",
    "make_loader",
    "sample_locations",
]

try:
    __version__ = version("cubestream")
    """The installed distribution's version (``pyproject.toml``), as ``cubestream --version``."""
except PackageNotFoundError:  # a checkout on PYTHONPATH that was never installed
    __version__ = "0+unknown"

_WHERE = {
    "SampleConfig": "sample",
    "sample_locations": "sample",
    "L1Config": "l1",
    "build_l1": "l1",
    "L2Config": "l2",
    "build_l2": "l2",
    "make_loader": "stream",
    "describe": "inspect",
}

__getattr__ = lazy_attributes(__name__, _WHERE)
