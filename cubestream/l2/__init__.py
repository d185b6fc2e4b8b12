"""X4: the level-2 generator: deep-learning-ready minicubes from the L1 store.

``build_l2`` (``cubestream l2``) turns the L1 store into one L2 store of 45-step, 10-daily,
gap-filled samples with the kNDVI target, weather, static layers and splits; ``check_store``
validates a store against the contract of :mod:`cubestream.l2.schema`; ``export_netcdf`` writes
one NetCDF file per sample for the earlier tools.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cubestream._lazy import lazy_attributes

if TYPE_CHECKING:
    from cubestream.l2.build import build_l2
    from cubestream.l2.check import check_store
    from cubestream.l2.config import L2Config
    from cubestream.l2.export import export_netcdf
    from cubestream.l2.schema import STEP_DAYS, STEPS, VARIABLES

__all__ = [
    "STEPS",
    "STEP_DAYS",
    "VARIABLES",
    "L2Config",
    "build_l2",
    "check_store",
    "export_netcdf",
]

_WHERE = {
    "L2Config": "config",
    "build_l2": "build",
    "check_store": "check",
    "export_netcdf": "export",
    "STEP_DAYS": "schema",
    "STEPS": "schema",
    "VARIABLES": "schema",
}


__getattr__ = lazy_attributes(__name__, _WHERE)
