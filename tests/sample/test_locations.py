"""The whole X1 stage: a locations table that meets the DESIGN contract, reproducibly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cubestream import grid
from cubestream.errors import SamplingError
from cubestream.replica.spec import preset
from cubestream.replica.strata import write_strata
from cubestream.replica.world import World
from cubestream.sample import (
    LOCATION_COLUMNS,
    AllocationRule,
    SampleConfig,
    SplitRule,
    StrataSources,
    sample_locations,
    write_locations,
)
from cubestream.sample.splits import spatial_blocks

AREA = "36.35,-1.85,37.25,-0.95"  # most of tile 37MBU


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> StrataSources:
    objects = tmp_path_factory.mktemp("objects")
    write_strata(World(preset("tiny")), objects)
    return StrataSources(
        **{
            name: str(objects / "strata" / f"{name}.tif")
            for name in ("climate", "landcover", "geomorphons")
        }
    )


def _config(sources: StrataSources, **changes: object) -> SampleConfig:
    base = {
        "area": AREA,
        "strata": sources,
        "target": 160,
        "allocation": AllocationRule(method="mixed", mix=0.5),
        "splits": SplitRule.with_validation(0.05, block_km=8),
        "seed": 7,
    }
    return SampleConfig(**(base | changes))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def result(sources: StrataSources):
    return sample_locations(_config(sources))


def test_table_meets_the_design_contract(result) -> None:
    table = result.table
    assert list(table.columns[: len(LOCATION_COLUMNS)]) == list(LOCATION_COLUMNS)
    assert len(table) == 160 and table["cube_id"].is_unique
    for tile_id, rows in table.groupby("tile"):
        tile = grid.tile(str(tile_id))
        assert (rows["epsg"] == tile.epsg).all()
        assert (rows["x_min"] == tile.x0 + rows["col"] * 3840).all()
        assert (rows["y_max"] == tile.y0 - rows["row"] * 3840).all()
        assert (rows["x_max"] - rows["x_min"] == 3840).all()
        assert (rows["y_max"] - rows["y_min"] == 3840).all()
    expected_ids = (
        table["tile"] + table["row"].map("{:02d}".format) + table["col"].map("{:02d}".format)
    )
    assert (table["cube_id"] == expected_ids).all()
    assert table["row"].between(0, 27).all() and table["col"].between(0, 27).all()
    assert ((table["min_lon"] < table["lon"]) & (table["lon"] < table["max_lon"])).all()
    assert set(table["split"]) == {"train", "val", "test"}


def test_splits_within_two_percent_and_blocks_not_shared(result) -> None:
    table = result.table
    shares = table["split"].value_counts(normalize=True)
    for name, share in {"train": 0.75, "val": 0.05, "test": 0.2}.items():
        assert abs(shares[name] - share) <= 0.02, (name, shares[name])
    blocks = spatial_blocks(table["lon"].to_numpy(), table["lat"].to_numpy(), 8)
    assert (pd.Series(table["split"].to_numpy()).groupby(blocks).nunique() == 1).all()
    assert result.report["warnings"] == []


def test_report_compares_sample_with_population(result, tmp_path: Path) -> None:
    report = result.report
    assert set(report["strata"]) == {"climate", "landcover", "heterogeneity", "topography"}
    for entry in report["strata"].values():
        assert 0 <= entry["js_divergence_vs_population"] <= 1
        assert entry["js_divergence_vs_intended"] < 0.05
        shares = [c["sample_share"] for c in entry["classes"].values()]
        assert abs(sum(shares) - 1) < 1e-5
    assert report["counts"]["sampled_boxes"] == 160
    paths = write_locations(result, tmp_path / "locations.parquet")
    assert [p.name for p in paths] == [
        "locations.parquet",
        "locations.report.json",
        "locations.report.png",
    ]
    assert json.loads(paths[1].read_text())["counts"]["sampled_boxes"] == 160
    assert paths[2].stat().st_size > 10_000


def test_same_seed_same_bytes(sources: StrataSources, result, tmp_path: Path) -> None:
    first = write_locations(result, tmp_path / "a.parquet")[0]
    again = write_locations(sample_locations(_config(sources)), tmp_path / "b.parquet")[0]
    other = write_locations(sample_locations(_config(sources, seed=8)), tmp_path / "c.parquet")[0]
    assert first.read_bytes() == again.read_bytes()
    assert first.read_bytes() != other.read_bytes()


def test_top_tiles_and_cap(sources: StrataSources) -> None:
    area = "36.2,-1.85,38.2,-0.95"  # 37MBU and 37MCU
    rule = AllocationRule(method="proportional", min_per_stratum=0)
    out = sample_locations(
        _config(sources, area=area, target=60, top_tiles=1, cap_per_tile=60, allocation=rule)
    )
    assert out.table["tile"].nunique() == 1
    with pytest.raises(SamplingError, match="top 1 tiles hold only"):
        sample_locations(_config(sources, area=area, target=700, top_tiles=1, allocation=rule))


def test_target_above_population_is_an_error(sources: StrataSources) -> None:
    with pytest.raises(SamplingError, match="larger than the"):
        sample_locations(_config(sources, target=100_000))


def test_cli_reports_bad_input_clearly(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "cubestream.cli", "sample", "--area", "10,10,5,5",
         "--replica", str(tmp_path), "--target", "5", "--out", str(tmp_path / "x.parquet")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 3  # ExitCode.INPUT: the area is unusable
    assert run.stderr.startswith("cubestream: error:")
    assert not (tmp_path / "x.parquet").exists()
