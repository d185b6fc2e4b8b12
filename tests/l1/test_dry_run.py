"""``cubestream l1 --dry-run``: the plan per tile from the catalogue alone, nothing written."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest

from cubestream.cli import main
from cubestream.l1 import L1Config, build_l1
from cubestream.l1.blocks import plan_blocks
from cubestream.l1.build import _plan
from cubestream.replica import layout
from cubestream.testing import write_replica_locations

START, END = dt.date(2021, 12, 1), dt.date(2022, 2, 28)


@pytest.fixture(scope="module")
def locations(replica_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loc") / "locations.parquet"
    return write_replica_locations(replica_root, out, target=5)


def test_dry_run_reports_the_plan_and_writes_nothing(
    locations: Path, replica_root: Path, tmp_path: Path
) -> None:
    out = tmp_path / "l1.zarr"
    config = L1Config(
        locations=str(locations),
        stac=str(replica_root / layout.ITEMS_FILE),
        out=str(out),
        start=START,
        end=END,
    )
    report = build_l1(config, dry_run=True)
    assert not out.exists() and not Path(f"{out}.report.json").exists()
    (tile, entry), *_ = report["tiles"].items()
    plan = _plan(config, tile, pd.read_parquet(locations))
    tasks = plan_blocks(plan, plan.read_block(config.read_block))
    assert entry["items"] == len(plan.items) and entry["days"] == len(plan.days)
    assert entry["read_blocks"] == len(tasks) > 0
    # the replica's assets are 30 m COGs: per item and read block, 9 uint16 bands + SCL (uint8)
    starts = [0]
    for n in plan.item_chunks:
        starts.append(starts[-1] + n)
    expected = sum(
        (starts[t.t + 1] - starts[t.t])
        * min(1024, 3660 - 1024 * t.by)
        * min(1024, 3660 - 1024 * t.bx)
        * (9 * 2 + 1)
        for t in tasks
    )
    assert entry["expected_bytes_uncompressed"] == expected
    # the replica states no file:size yet: the estimate is the uncompressed size
    assert entry["expected_bytes"] <= expected
    assert entry["providers"] == ["earth-search"]


def test_dry_run_command_prints_one_json_line_per_tile(
    locations: Path, replica_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "l1",
            "--locations",
            str(locations),
            "--stac",
            str(replica_root / layout.ITEMS_FILE),
            "--out",
            str(tmp_path / "l1.zarr"),
            "--start",
            START.isoformat(),
            "--end",
            END.isoformat(),
            "--dry-run",
        ]
    )
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert code == 0 and [x["tile"] for x in lines] == ["37MBU"]
    assert lines[0]["status"] == "planned (dry run)" and lines[0]["read_blocks"] > 0
