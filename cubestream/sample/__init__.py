"""X1: unbiased minicube locations on the Sentinel-2 tile grid, stratified, with leak-free splits.

The stage reads top to bottom in :func:`sample_locations`: the area (:mod:`.area`), the candidate
boxes of its tiles (:mod:`.boxes`), their strata from rasters (:mod:`.strata`), the stratified draw
(:mod:`.allocate`), the spatial-block splits (:mod:`.splits`) and the bias report (:mod:`.report`).
The options of ``cubestream sample`` are declared once, in :mod:`.options`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cubestream._lazy import lazy_attributes

if TYPE_CHECKING:
    from cubestream.sample.allocate import AllocationRule
    from cubestream.sample.area import Area, parse_area
    from cubestream.sample.boxes import candidate_boxes, tile_boxes
    from cubestream.sample.locations import (
        LOCATION_COLUMNS,
        SampleConfig,
        SampleResult,
        sample_locations,
        write_locations,
    )
    from cubestream.sample.options import SampleOptions
    from cubestream.sample.splits import SplitRule
    from cubestream.sample.strata import StrataSources, box_strata

__all__ = [
    "LOCATION_COLUMNS",
    "AllocationRule",
    "Area",
    "SampleConfig",
    "SampleOptions",
    "SampleResult",
    "SplitRule",
    "StrataSources",
    "box_strata",
    "candidate_boxes",
    "parse_area",
    "sample_locations",
    "tile_boxes",
    "write_locations",
]

_WHERE = {
    "LOCATION_COLUMNS": "locations",
    "AllocationRule": "allocate",
    "Area": "area",
    "SampleConfig": "locations",
    "SampleOptions": "options",
    "SampleResult": "locations",
    "SplitRule": "splits",
    "StrataSources": "strata",
    "box_strata": "strata",
    "candidate_boxes": "boxes",
    "parse_area": "area",
    "sample_locations": "locations",
    "tile_boxes": "boxes",
    "write_locations": "locations",
}

__getattr__ = lazy_attributes(__name__, _WHERE)
