"""The replica world is coherent: vegetation follows water with a lag, clouds hide it."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cubestream.errors import ReplicaError
from cubestream.replica.drivers import GREENNESS_PARAMS
from cubestream.replica.sentinel2 import render
from cubestream.replica.spec import ReplicaSpec, Window, preset
from cubestream.replica.world import World


@pytest.fixture(scope="module")
def world() -> World:
    spec = ReplicaSpec.from_dict(
        {**preset("tiny").to_dict(), "start": "2021-01-01", "end": "2021-12-31"}
    )
    return World(spec)


def test_spec_round_trips_through_json() -> None:
    spec = preset("small")
    assert ReplicaSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    "change",
    [
        {"tiles": []},
        {"end": "2000-01-01"},
        {"resolution": "20m"},
        {"data_windows": {"31UDQ": {"row": 0, "col": 0, "height": 10, "width": 10}}},
        {"data_windows": {"37MBU": {"row": 3600, "col": 0, "height": 128, "width": 128}}},
    ],
)
def test_bad_specs_are_refused(change: dict) -> None:
    with pytest.raises(ReplicaError):
        ReplicaSpec.from_dict({**preset("tiny").to_dict(), **change})


def test_window_rejects_negative_offsets() -> None:
    with pytest.raises(ReplicaError, match="invalid window"):
        Window(row=-1, col=0, height=1, width=1)


def test_greenness_follows_root_zone_moisture_with_a_lag(world: World) -> None:
    ds = world.drivers
    grass = list(ds.landcover.values).index(30)
    green = ds.greenness[:, grass].mean(["lat", "lon"]).values
    root = ds.sm_rootzone.mean(["lat", "lon"]).values
    lags = range(0, 60, 5)
    corr = [np.corrcoef(root[: len(root) - lag], green[lag:])[0, 1] for lag in lags]
    assert max(corr) > 0.6
    assert int(np.argmax(corr)) > 0, "greenness should respond to moisture with a delay"


def test_greenness_differs_by_land_cover(world: World) -> None:
    ds = world.drivers
    mean = ds.greenness.mean(["day", "lat", "lon"]).to_series()
    assert mean[10] > mean[30] > mean[60] > mean[80]
    trees, grass = ds.greenness.sel(landcover=10), ds.greenness.sel(landcover=30)
    assert float(trees.std("day").mean()) < float(grass.std("day").mean())
    assert set(mean.index) == set(GREENNESS_PARAMS)


def test_acquisitions_have_the_archives_awkward_cases() -> None:
    world = World(preset("tiny"))
    acqs = world.acquisitions("37MBU")
    days = [a.day for a in acqs]
    regular = set(world.days[:: world.spec.revisit_days])
    assert len(regular - set(days)) == world.spec.missing_dates
    parts = [a.part for a in acqs]
    assert parts.count("upper") == parts.count("lower") == world.spec.split_datatakes
    baselines = {a.baseline for a in acqs}
    assert baselines == {"03.01", "04.00"}
    assert all(a.offset == (1000 if a.day >= dt.date(2022, 1, 25) else 0) for a in acqs)


def test_render_classes_and_offsets(world: World) -> None:
    acqs = world.acquisitions("37MBU")[:60]
    scl_seen: set[int] = set()
    for acq in acqs[::3]:
        out = render(world, acq)
        scl_seen |= set(np.unique(out.scl).tolist())
        valid = out.scl > 0
        assert (out.dn[:, ~valid] == 0).all(), "no-data pixels carry DN 0 in every band"
        assert (out.dn[:, valid] > 0).all()
    assert {3, 4, 5, 8, 9} <= scl_seen


def test_split_datatakes_and_swath_edges_leave_no_data(world: World) -> None:
    acqs = world.acquisitions("37MBU")
    upper = next(a for a in acqs if a.part == "upper")
    lower = next(a for a in acqs if a.part == "lower" and a.day == upper.day)
    a, b = render(world, upper), render(world, lower)
    assert not (a.covered & b.covered).any(), "the two parts of a datatake do not overlap"
    assert (a.covered | b.covered).all(), "together they cover the whole window"
    edges = [a for a in acqs if a.swath_edge and a.part == "full"]
    assert edges, "some days have a swath edge"
    assert any((render(world, a).scl == 0).any() for a in edges)


def test_clear_vegetation_is_greener_in_the_wet_season(world: World) -> None:
    def clear_ndvi(day: dt.date) -> float:
        acq = min(world.acquisitions("37MBU"), key=lambda a: abs((a.day - day).days))
        out = render(world, acq)
        red = out.dn[2].astype(float) - acq.offset
        nir = out.dn[6].astype(float) - acq.offset
        clear = np.isin(out.scl, (4, 5))
        return float(np.median(((nir - red) / (nir + red))[clear]))

    assert clear_ndvi(dt.date(2021, 5, 15)) > clear_ndvi(dt.date(2021, 9, 25)) + 0.05


def test_render_does_not_depend_on_its_strips(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A band is computed in row strips (big tiles at 10 m); the noise stream stays the same."""
    from cubestream.replica import sentinel2

    split = next(a for a in world.acquisitions("37MBU") if a.part != "full")
    whole = {res: render(world, split, resolution=res) for res in (30, 10)}
    monkeypatch.setattr(sentinel2, "_STRIP_PIXELS", 5000)
    sentinel2._statics.cache_clear()
    for res, before in whole.items():
        after = render(world, split, resolution=res)
        assert np.array_equal(after.dn, before.dn) and np.array_equal(after.scl, before.scl)
