"""Leak-free train / val / test splits by spatial blocks.

The rule (a contract): each sampled box falls in a block of an equal-area grid (EASE-Grid 2.0,
EPSG:6933) of ``block_km`` a side. Blocks holding boxes that are neighbours (centres closer than
1.6 box sides on the sphere: edge or corner neighbours, also across tile and UTM-zone borders)
are merged, so neighbouring boxes always share a split. Blocks are then dealt, largest first and
ties in seeded random order, to the split furthest below its requested share. The achieved shares
are reported; with blocks much smaller than the sample they land within a few tenths of a percent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pyproj import Transformer
from scipy.spatial import cKDTree

from cubestream.errors import SamplingError

__all__ = ["SplitRule", "assign_splits", "spatial_blocks"]

EARTH_RADIUS_M = 6_371_008.8
BOX_SIZE_M = 3840.0
NEIGHBOUR_RADIUS_M = 1.6 * BOX_SIZE_M
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True, kw_only=True)
class SplitRule:
    """Requested split shares and block size.

    Attributes
    ----------
    shares : dict of str to float
        Shares of ``train``, ``val`` (optional) and ``test``; they must sum to 1.
    block_km : float
        Side of the spatial blocks in kilometres.
    """

    shares: dict[str, float] = field(default_factory=lambda: {"train": 0.8, "test": 0.2})
    block_km: float = 50.0

    def __post_init__(self) -> None:
        unknown = set(self.shares) - set(SPLIT_NAMES)
        if unknown:
            raise SamplingError(f"unknown split names {sorted(unknown)}; use train, val, test")
        if any(v < 0 for v in self.shares.values()) or abs(sum(self.shares.values()) - 1) > 1e-9:
            raise SamplingError(f"split shares must be >= 0 and sum to 1, got {self.shares}")
        if self.block_km <= 0:
            raise SamplingError("block_km must be positive")

    @classmethod
    def with_validation(cls, val: float, test: float = 0.2, block_km: float = 50.0) -> SplitRule:
        """Train / val / test, ``val`` taken from train (0.8 / 0.2 -> 0.75 / 0.05 / 0.2)."""
        shares = {"train": 1 - test - val, "test": test}
        if val > 0:
            shares["val"] = val
        return cls(shares=shares, block_km=block_km)


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
    return pd.factorize(roots)[0]


def assign_splits(boxes: pd.DataFrame, rule: SplitRule, seed: int) -> pd.Series:
    """Split name per box (``boxes`` needs ``lon`` and ``lat``), by spatial blocks."""
    if boxes.empty:
        return pd.Series([], index=boxes.index, dtype=object, name="split")
    blocks = spatial_blocks(boxes["lon"].to_numpy(), boxes["lat"].to_numpy(), rule.block_km)
    sizes = np.bincount(blocks)
    rng = np.random.default_rng([seed, 5])
    order = np.lexsort((rng.random(len(sizes)), -sizes))
    names = [n for n in SPLIT_NAMES if n in rule.shares]
    wanted = np.array([rule.shares[n] for n in names]) * len(boxes)
    have = np.zeros(len(names))
    block_split = np.empty(len(sizes), dtype=np.int64)
    for block in order:
        k = int(np.argmax(wanted - have))
        block_split[block] = k
        have[k] += sizes[block]
    return pd.Series(
        np.array(names, dtype=object)[block_split[blocks]], index=boxes.index, name="split"
    )
