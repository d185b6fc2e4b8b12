"""Test tracks in the L2 plan: the spatial track from the locations table, the time track from
the window starts (plans only: no pixel is read)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest
from l1_fixture import write_locations

from cubestream.errors import L2InputError
from cubestream.l2.plan import open_l1, plan_samples, read_locations
from cubestream.l2.windows import candidate_starts

CUT = dt.date(2020, 6, 1)


def _table(tmp_path: Path, l1_store: Path) -> Path:
    path = write_locations(tmp_path / "loc.parquet", l1_store)
    table = pd.read_parquet(path)
    table.loc[table.index[-2:], "split"] = "test"
    test = table.index[table["split"] == "test"]
    assert len(test) >= 2 and (table["split"] == "train").any()
    table["track"] = ""
    table.loc[test, "track"] = "iid"
    table.loc[test[:1], "track"] = "ood_space"
    table.to_parquet(path)
    return path


def test_tracks_follow_space_and_start(tmp_path: Path, l1_store: Path) -> None:
    locations = read_locations(str(_table(tmp_path, l1_store)))
    plan = plan_samples(open_l1(str(l1_store)), locations, windows_per_cube=3, ood_time_from=CUT)
    assert candidate_starts(dt.date(2020, 1, 1), dt.date(2021, 12, 31))[-1] >= CUT
    seen = set()
    for s in plan.samples:
        start = dt.date(1970, 1, 1) + dt.timedelta(days=s.start)
        space = locations.at[s.cube_id, "track"]
        if s.split != "test":
            assert s.track == "" and start < CUT, "no train/val window starts in the later period"
        elif start < CUT:
            assert s.track == space
        else:
            assert s.track == {"iid": "ood_time", "ood_space": "ood_space_time"}[space]
        seen.add(s.track)
    assert seen == {"", "iid", "ood_space", "ood_time", "ood_space_time"}
    assert any("before the OOD-time day" in k["reason"] for k in plan.skipped)


def test_old_tables_put_test_cubes_on_iid(tmp_path: Path, l1_store: Path) -> None:
    locations = read_locations(str(write_locations(tmp_path / "old.parquet", l1_store)))
    plan = plan_samples(open_l1(str(l1_store)), locations, windows_per_cube=2)
    assert {s.track for s in plan.samples if s.split == "test"} == {"iid"}
    assert {s.track for s in plan.samples if s.split != "test"} == {""}


def test_unknown_track_is_refused(tmp_path: Path, l1_store: Path) -> None:
    path = write_locations(tmp_path / "bad.parquet", l1_store)
    pd.read_parquet(path).assign(track="holdout").to_parquet(path)
    with pytest.raises(L2InputError, match="tracks"):
        read_locations(str(path))
