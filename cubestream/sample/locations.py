"""X1: sample minicube locations: area -> boxes -> strata -> stratified draw -> splits -> table.

:func:`sample_locations` reads top to bottom as the stage: enumerate the candidate boxes of the
area on the Sentinel-2 grid, read their strata, draw the target by the allocation rule (optionally
only in the top-N tiles), assign leak-free splits by spatial blocks, and build the report.
:func:`write_locations` writes the table (Parquet, byte-for-byte reproducible for a seed) and the
bias report beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cubestream import __version__
from cubestream.errors import SamplingError
from cubestream.sample.allocate import AllocationRule, draw, stratum_keys
from cubestream.sample.area import Area, parse_area
from cubestream.sample.boxes import candidate_boxes
from cubestream.sample.report import bias_report, write_report
from cubestream.sample.splits import SplitRule, assign_tracks
from cubestream.sample.strata import StrataSources, box_strata

__all__ = [
    "LOCATION_COLUMNS",
    "SampleConfig",
    "SampleResult",
    "sample_locations",
    "write_locations",
]

LOCATION_COLUMNS = (
    "cube_id", "tile", "epsg", "row", "col", "x_min", "y_min", "x_max", "y_max", "lon", "lat",
    "min_lon", "min_lat", "max_lon", "max_lat", "climate", "landcover", "heterogeneity",
    "topography", "split",
)  # fmt: skip
"""Columns of the locations table, in order (DESIGN.md section 3); extras follow them."""


@dataclass(frozen=True, kw_only=True)
class SampleConfig:
    """Everything that defines a location sample; the same config gives the same table.

    Attributes
    ----------
    area : str
        ``"africa"``, a bbox ``"min_lon,min_lat,max_lon,max_lat"`` or a GeoJSON path.
    strata : StrataSources
        The strata rasters and eligibility threshold.
    target : int
        Boxes to draw.
    allocation : AllocationRule
        How the target is shared over strata.
    splits : SplitRule
        Split shares and block size.
    cap_per_tile : int, optional
        At most this many boxes per tile.
    top_tiles : int, optional
        Keep only the N tiles holding most boxes of a first draw, then draw the target in them.
    seed : int
        Seed of the draw and of the split assignment.
    workers : int
        Processes reading strata.
    """

    area: str = "africa"
    strata: StrataSources
    target: int
    allocation: AllocationRule = field(default_factory=AllocationRule)
    splits: SplitRule = field(default_factory=SplitRule)
    cap_per_tile: int | None = None
    top_tiles: int | None = None
    seed: int = 0
    workers: int = 1


@dataclass(frozen=True, kw_only=True)
class SampleResult:
    """The locations table, the eligible population it was drawn from and the bias report."""

    table: pd.DataFrame
    eligible: pd.DataFrame
    report: dict[str, Any]
    area: Area


def _top_tiles(boxes: pd.DataFrame, config: SampleConfig) -> pd.DataFrame:
    """Restrict to the N tiles holding most boxes of a first draw (ties: tile id)."""
    assert config.top_tiles is not None
    first, _ = draw(
        boxes, config.target, config.allocation, seed=config.seed, cap_per_tile=config.cap_per_tile
    )
    counts = boxes.loc[first, "tile"].value_counts()
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: config.top_tiles]
    keep = {tile for tile, _ in ranked}
    kept = boxes[boxes["tile"].isin(keep)]
    eligible = int(kept["eligible"].sum())
    if eligible < config.target:
        raise SamplingError(
            f"the top {config.top_tiles} tiles hold only {eligible} eligible boxes, fewer than "
            f"the target of {config.target}; raise --top-tiles or lower --target"
        )
    return kept


def _table(boxes: pd.DataFrame, chosen: pd.Index, config: SampleConfig) -> pd.DataFrame:
    sample = boxes.loc[chosen].sort_values("cube_id", kind="stable").reset_index(drop=True)
    tracks = assign_tracks(sample, config.splits, config.seed)
    sample["split"], sample["track"] = tracks["split"], tracks["track"]
    extras = [c for c in sample.columns if c not in LOCATION_COLUMNS]
    return sample[[*LOCATION_COLUMNS, *extras]]


def _split_warnings(achieved: dict[str, float], rule: SplitRule) -> list[str]:
    """Say so when the blocks could not meet the requested shares within 2 %."""
    off = {
        name: achieved.get(name, 0.0)
        for name, share in rule.shares.items()
        if abs(achieved.get(name, 0.0) - share) > 0.02
    }
    if not off:
        return []
    return [
        f"split shares {achieved} differ from the requested {rule.shares} by more than 2 %: "
        f"the sample is too dense for {rule.block_km} km blocks (neighbouring boxes always "
        "share a split); lower --block-km, draw fewer boxes or widen the area"
    ]


def sample_locations(config: SampleConfig) -> SampleResult:
    """Draw the locations table described by ``config`` (see the module docstring)."""
    area = parse_area(config.area)
    boxes = candidate_boxes(area)
    n_candidates = len(boxes)
    boxes = box_strata(boxes, config.strata, workers=config.workers)
    boxes = boxes.assign(stratum=stratum_keys(boxes, config.allocation.columns))
    if config.top_tiles is not None:
        boxes = _top_tiles(boxes, config)
    chosen, quotas = draw(
        boxes, config.target, config.allocation, seed=config.seed, cap_per_tile=config.cap_per_tile
    )
    table = _table(boxes, chosen, config)
    eligible = boxes[boxes["eligible"]]
    context = {
        "cubestream": __version__,
        "area": config.area,
        "target": config.target,
        "allocation": config.allocation.__dict__ | {"columns": list(config.allocation.columns)},
        "splits": config.splits.__dict__,
        "cap_per_tile": config.cap_per_tile,
        "top_tiles": config.top_tiles,
        "seed": config.seed,
        "candidate_boxes": n_candidates,
        "boxes_drawn_from": len(boxes),
        "population": "eligible boxes of the top tiles" if config.top_tiles else "eligible boxes",
    }
    report = bias_report(
        eligible, table, quotas, columns=config.allocation.columns, context=context
    )
    report["warnings"] = _split_warnings(report["splits"], config.splits)
    return SampleResult(table=table, eligible=eligible, report=report, area=area)


def write_locations(result: SampleResult, out: Path) -> list[Path]:
    """Write the table to ``out`` (Parquet, atomically) and the report beside it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = result.table.drop(columns=["stratum", "eligible", "core"], errors="ignore")
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    pq.write_table(arrow, tmp, compression="zstd")
    tmp.replace(out)
    json_path, png_path = write_report(
        result.report, result.eligible, result.table, out, result.area.geometry
    )
    return [out, json_path, png_path]
