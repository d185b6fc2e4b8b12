"""Allocation rule, seeded draw and spatial-block splits on synthetic boxes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cubestream.errors import SamplingError
from cubestream.sample.allocate import AllocationRule, allocate, draw, stratum_keys
from cubestream.sample.report import bias_report, jensen_shannon
from cubestream.sample.splits import (
    NEIGHBOUR_RADIUS_M,
    SplitRule,
    assign_splits,
    assign_tracks,
    spatial_blocks,
)


def _boxes(n_tiles: int = 12, seed: int = 0) -> pd.DataFrame:
    """Boxes on a regular lon/lat lattice (3840 m apart), with skewed strata."""
    rng = np.random.default_rng(seed)
    step = 3840 / 111_320
    rows = []
    for t in range(n_tiles):
        for r in range(26):
            for c in range(26):
                rows.append(
                    {
                        "cube_id": f"T{t:02d}{r:02d}{c:02d}",
                        "tile": f"T{t:02d}",
                        "lon": 30 + (t % 4) * 1.0 + c * step,
                        "lat": -5 + (t // 4) * 1.0 + r * step,
                    }
                )
    boxes = pd.DataFrame(rows)
    n = len(boxes)
    boxes["climate"] = rng.choice(["Aw", "BSh", "Cwb"], n, p=[0.7, 0.25, 0.05])
    boxes["landcover"] = rng.choice(["grassland", "tree cover", "cropland"], n, p=[0.6, 0.3, 0.1])
    boxes["heterogeneity"] = rng.choice(["low", "medium", "high"], n)
    boxes["topography"] = rng.choice(["flat", "slope"], n)
    boxes["eligible"] = rng.random(n) > 0.1
    return boxes


def test_proportional_allocation_follows_the_population() -> None:
    population = pd.Series({"a": 600, "b": 300, "c": 100})
    quotas = allocate(population, 100, AllocationRule(method="proportional", min_per_stratum=0))
    assert quotas.to_dict() == {"a": 60, "b": 30, "c": 10}


def test_equalised_allocation_water_fills_small_strata() -> None:
    population = pd.Series({"a": 600, "b": 300, "c": 5})
    quotas = allocate(population, 300, AllocationRule(method="equalised"))
    assert quotas["c"] == 5, "a stratum never gets more than it holds"
    assert quotas.sum() == 300
    assert abs(quotas["a"] - quotas["b"]) <= 1, "the rest is shared equally"


def test_mixed_allocation_and_minimum() -> None:
    population = pd.Series({"a": 1000, "b": 10, "c": 1})
    rule = AllocationRule(method="mixed", mix=0.5, min_per_stratum=1)
    quotas = allocate(population, 60, rule)
    assert quotas.sum() == 60 and quotas["c"] == 1
    assert 30 < quotas["a"] < 60 and quotas["b"] == 10


@pytest.mark.parametrize(
    ("population", "target", "match"),
    [
        (pd.Series({"a": 5}), 6, "larger than the 5 eligible"),
        (pd.Series({"a": 5}), 0, "positive"),
        (pd.Series({"a": 5, "b": 5, "c": 5}), 2, "min_per_stratum"),
    ],
)
def test_bad_targets_are_refused(population: pd.Series, target: int, match: str) -> None:
    with pytest.raises(SamplingError, match=match):
        allocate(population, target, AllocationRule())


def test_unknown_method_is_refused() -> None:
    with pytest.raises(SamplingError, match="unknown"):
        AllocationRule(method="random")  # type: ignore[arg-type]


def test_draw_hits_quotas_respects_cap_and_is_reproducible() -> None:
    boxes = _boxes()
    rule = AllocationRule(method="equalised")
    chosen, quotas = draw(boxes, 400, rule, seed=3, cap_per_tile=40)
    again, _ = draw(boxes, 400, rule, seed=3, cap_per_tile=40)
    other, _ = draw(boxes, 400, rule, seed=4, cap_per_tile=40)
    assert len(chosen) == 400 and chosen.equals(again) and not chosen.equals(other)
    picked = boxes.loc[chosen]
    assert picked["eligible"].all()
    assert picked["tile"].value_counts().max() <= 40
    keys = stratum_keys(picked).value_counts()
    assert set(keys.index) <= set(quotas.index)


def test_draw_without_cap_meets_each_quota_exactly() -> None:
    boxes = _boxes()
    chosen, quotas = draw(boxes, 300, AllocationRule(method="mixed"), seed=1)
    counts = stratum_keys(boxes.loc[chosen]).value_counts().reindex(quotas.index, fill_value=0)
    pd.testing.assert_series_equal(counts, quotas, check_names=False)


def test_cap_too_tight_is_an_error() -> None:
    with pytest.raises(SamplingError, match="per-tile cap"):
        draw(_boxes(n_tiles=2), 100, AllocationRule(), seed=0, cap_per_tile=10)


def test_splits_are_blockwise_and_near_the_shares() -> None:
    # a sparse sample, as drawn (contiguous boxes would make every tile one block)
    boxes = _boxes(n_tiles=12).sample(frac=0.1, random_state=0)
    rule = SplitRule.with_validation(0.05, block_km=20)
    splits = assign_splits(boxes, rule, seed=0)
    shares = splits.value_counts(normalize=True)
    for name, share in rule.shares.items():
        assert abs(shares[name] - share) < 0.02
    blocks = spatial_blocks(boxes["lon"].to_numpy(), boxes["lat"].to_numpy(), 20)
    per_block = pd.Series(splits.to_numpy()).groupby(blocks).nunique()
    assert (per_block == 1).all(), "no block is shared between splits"


def test_neighbouring_boxes_never_straddle_splits() -> None:
    boxes = _boxes(n_tiles=4)
    splits = assign_splits(boxes, SplitRule(block_km=10), seed=2)
    lon, lat = boxes["lon"].to_numpy(), boxes["lat"].to_numpy()
    x = np.radians(lon) * 6_371_008.8 * np.cos(np.radians(lat))
    y = np.radians(lat) * 6_371_008.8
    from scipy.spatial import cKDTree

    pairs = cKDTree(np.column_stack([x, y])).query_pairs(NEIGHBOUR_RADIUS_M * 0.99)
    values = splits.to_numpy()
    assert pairs and all(values[i] == values[j] for i, j in pairs)


def test_split_rule_validation() -> None:
    with pytest.raises(SamplingError, match="sum to 1"):
        SplitRule(shares={"train": 0.7, "test": 0.2})
    with pytest.raises(SamplingError, match="unknown split"):
        SplitRule(shares={"train": 0.8, "holdout": 0.2})


def test_bias_report_divergences() -> None:
    assert jensen_shannon(np.array([1, 1]), np.array([1, 1])) == 0
    assert jensen_shannon(np.array([1, 0]), np.array([0, 1])) == 1
    boxes = _boxes()
    boxes["stratum"] = stratum_keys(boxes)
    rule = AllocationRule(method="proportional", min_per_stratum=0)
    chosen, quotas = draw(boxes, 500, rule, seed=0)
    eligible = boxes[boxes["eligible"]]
    sample = boxes.loc[chosen].assign(split="train")
    report = bias_report(eligible, sample, quotas)
    climate = report["strata"]["climate"]
    assert climate["js_divergence_vs_population"] < 0.01
    assert climate["js_divergence_vs_intended"] < 0.001
    assert report["counts"]["sampled_boxes"] == 500


def test_held_out_regions_make_the_ood_space_track() -> None:
    boxes = _boxes(n_tiles=12).sample(frac=0.1, random_state=0)
    rule = SplitRule.with_validation(0.05, test=0.3, block_km=10, ood_space=0.15, region_km=60)
    tracks = assign_tracks(boxes, rule, seed=0)
    held = tracks["track"] == "ood_space"
    assert 0.1 < held.mean() < 0.3
    assert (tracks.loc[held, "split"] == "test").all()
    assert set(tracks.loc[tracks["split"] == "test", "track"]) == {"iid", "ood_space"}
    assert (tracks.loc[tracks["split"] != "test", "track"] == "").all()
    assert abs((tracks["split"] == "test").mean() - 0.3) < 0.05
    # no held-out region shares a region cell with a box of another track
    regions = spatial_blocks(boxes["lon"].to_numpy(), boxes["lat"].to_numpy(), 60)
    per_region = pd.Series(held.to_numpy()).groupby(regions).nunique()
    assert (per_region == 1).all()


def test_without_ood_space_the_splits_are_unchanged() -> None:
    boxes = _boxes(n_tiles=6).sample(frac=0.2, random_state=1)
    tracks = assign_tracks(boxes, SplitRule(block_km=10), seed=3)
    assert ((tracks["track"] == "iid") == (tracks["split"] == "test")).all()
    assert set(tracks["track"]) == {"", "iid"}
    with pytest.raises(SamplingError, match="ood_space"):
        SplitRule.with_validation(0.0, test=0.1, ood_space=0.2)
