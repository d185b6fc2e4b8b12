"""Leak-free train / val / test splits by spatial blocks.

The rule (a contract): each sampled box falls in a block of an equal-area grid (EASE-Grid 2.0,
EPSG:6933) of ``block_km`` a side. Blocks holding boxes that are neighbours (centres closer than
1.6 box sides on the sphere: edge or corner neighbours, also across tile and UTM-zone borders)
are merged, so neighbouring boxes always share a split. Blocks are then dealt, largest first and
ties in seeded random order, to the split furthest below its requested share. The achieved shares
are reported; with blocks much smaller than the sample they land within a few tenths of a percent.

Test tracks (GreenEarthNet's protocol): with ``ood_space > 0`` whole *regions* (the same merged
grid with ``region_km`` cells) are first held out, taken in seeded random order until they hold
``ood_space`` of the boxes (at most 1.5 times that, or the smallest region); all their boxes are
``test`` on the track ``ood_space``. The other boxes are dealt by blocks as above, the test
share lowered by what the regions took; their test boxes are on the track ``iid`` (unseen blocks
among the training blocks). Train and val boxes have the track ``""``. The time tracks
(``ood_time``, ``ood_space_time``) are drawn by ``cubestream l2`` from the windows' start dates
(:mod:`cubestream.l2.plan`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.spatial import cKDTree

from cubestream.errors import SamplingError

__all__ = ["TRACKS", "SplitRule", "assign_splits", "assign_tracks", "spatial_blocks"]

EARTH_RADIUS_M = 6_371_008.8
BOX_SIZE_M = 3840.0
NEIGHBOUR_RADIUS_M = 1.6 * BOX_SIZE_M
SPLIT_NAMES = ("train", "val", "test")
TRACKS = ("iid", "ood_space", "ood_time", "ood_space_time")
"""Test tracks: seen regions and period, held-out regions, later period, both."""


@dataclass(frozen=True, kw_only=True)
class SplitRule:
    """Requested split shares and block size.

    Attributes
    ----------
    shares : dict of str to float
        Shares of ``train``, ``val`` (optional) and ``test``; they must sum to 1.
    block_km : float
        Side of the spatial blocks in kilometres.
    ood_space : float
        Share of all boxes held out as whole regions (the ``ood_space`` track, part of ``test``).
    region_km : float
        Side of the held-out regions in kilometres.
    """

    shares: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "test": 0.2})
    block_km: float = 50.0
    ood_space: float = 0.0
    region_km: float = 500.0

    def __post_init__(self) -> None:
        unknown = set(self.shares) - set(SPLIT_NAMES)
        if unknown:
            raise SamplingError(f"unknown split names {sorted(unknown)}; use train, val, test")
        if any(v < 0 for v in self.shares.values()) or abs(sum(self.shares.values()) - 1) > 1e-9:
            raise SamplingError(f"split shares must be >= 0 and sum to 1, got {self.shares}")
        if self.block_km <= 0:
            raise SamplingError("block_km must be positive")
        if not 0 <= self.ood_space <= self.shares.get("test", 0.0):
            raise SamplingError(
                f"ood_space ({self.ood_space}) must lie between 0 and the test share "
                f"({self.shares.get('test', 0.0)}): held-out regions are part of the test split"
            )
        if self.region_km < self.block_km:
            raise SamplingError(
                f"region_km ({self.region_km}) must be at least block_km ({self.block_km})"
            )

    @classmethod
    def with_validation(
        cls,
        val: float,
        test: float = 0.2,
        block_km: float = 50.0,
        *,
        ood_space: float = 0.0,
        region_km: float = 500.0,
    ) -> SplitRule:
        """Train / val / test, ``val`` taken from train (0.8 / 0.2 -> 0.75 / 0.05 / 0.2)."""
        shares = {"train": 1 - test - val, "test": test}
        if val > 0:
            shares["val"] = val
        return cls(shares=shares, block_km=block_km, ood_space=ood_space, region_km=region_km)


def _unit_xyz(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    lam, phi = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def _find(parent: np.ndarray, k: int) -> int:
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


def spatial_blocks(lon: np.ndarray, lat: np.ndarray, block_km: float) -> np.ndarray:
    """Block label per box: equal-area grid cells, merged where neighbouring boxes straddle them."""
    x, y = Transformer.from_crs(4326, 6933, always_xy=True).transform(lon, lat)
    size = block_km * 1000.0
    cells = pd.Series(list(zip(np.floor(x / size), np.floor(y / size), strict=True)))
    labels = pd.factorize(cells)[0]
    parent = np.arange(labels.max() + 1 if len(labels) else 0)
    chord = 2 * np.sin(NEIGHBOUR_RADIUS_M / EARTH_RADIUS_M / 2)
    tree = cKDTree(_unit_xyz(np.asarray(lon), np.asarray(lat)))
    for i, j in tree.query_pairs(chord, output_type="ndarray"):
        a, b = _find(parent, labels[i]), _find(parent, labels[j])
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots = np.array([_find(parent, k) for k in labels], dtype=np.int64)
    codes: np.ndarray = pd.factorize(roots)[0]
    return codes


def assign_splits(boxes: pd.DataFrame, rule: SplitRule, seed: int) -> pd.Series:
    """Split name per box (``boxes`` needs ``lon`` and ``lat``), by spatial blocks."""
    return assign_tracks(boxes, rule, seed)["split"]


def _held_out_regions(boxes: pd.DataFrame, rule: SplitRule, seed: int) -> np.ndarray:
    """True for the boxes of the regions held out for the ``ood_space`` track.

    Regions are taken in seeded random order while they keep the held-out boxes within 1.5
    times the wanted count; the smallest region when none fits.
    """
    out = np.zeros(len(boxes), dtype=bool)
    if rule.ood_space <= 0:
        return out
    regions = spatial_blocks(boxes["lon"].to_numpy(), boxes["lat"].to_numpy(), rule.region_km)
    sizes = np.bincount(regions)
    wanted = rule.ood_space * len(boxes)
    held = 0
    for region in np.random.default_rng([seed, 6]).permutation(len(sizes)):
        if held >= wanted:
            break
        if held + sizes[region] <= max(1.5 * wanted, 1.0):
            out |= regions == region
            held += int(sizes[region])
    if not held:
        out = regions == int(np.argmin(sizes))
    return out


def assign_tracks(boxes: pd.DataFrame, rule: SplitRule, seed: int) -> pd.DataFrame:
    """Split and test track per box (``boxes`` needs ``lon`` and ``lat``).

    Returns a frame with the index of ``boxes`` and the columns ``split`` and ``track`` (see the
    module docstring).
    """
    if boxes.empty:
        return pd.DataFrame({"split": [], "track": []}, index=boxes.index, dtype=object)
    held = _held_out_regions(boxes, rule, seed)
    split = np.where(held, "test", "").astype(object)
    track = np.where(held, "ood_space", "").astype(object)
    rest = boxes[~held]
    if len(rest):
        left = len(rest) / len(boxes)
        test = max(rule.shares.get("test", 0.0) - held.mean(), 0.0) / left
        shares = {k: v / left for k, v in rule.shares.items() if k != "test"}
        total = sum(shares.values()) + test
        shares = {k: v / total for k, v in shares.items()} | {"test": test / total}
        split[~held] = _deal_blocks(rest, shares, rule.block_km, seed)
        track[~held] = np.where(split[~held] == "test", "iid", "")
    return pd.DataFrame({"split": split, "track": track}, index=boxes.index)


def _deal_blocks(
    boxes: pd.DataFrame, shares: dict[str, float], block_km: float, seed: int
) -> np.ndarray:
    blocks = spatial_blocks(boxes["lon"].to_numpy(), boxes["lat"].to_numpy(), block_km)
    sizes = np.bincount(blocks)
    rng = np.random.default_rng([seed, 5])
    order = np.lexsort((rng.random(len(sizes)), -sizes))
    names = [n for n in SPLIT_NAMES if n in shares]
    wanted = np.array([shares[n] for n in names]) * len(boxes)
    have = np.zeros(len(names))
    block_split = np.empty(len(sizes), dtype=np.int64)
    for block in order:
        k = int(np.argmax(wanted - have))
        block_split[block] = k
        have[k] += sizes[block]
    split: np.ndarray = np.array(names, dtype=object)[block_split[blocks]]
    return split
