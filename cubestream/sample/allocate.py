"""Stratified allocation of a target count over strata, and the seeded draw of boxes.

The rule (a contract, reported with every sample): a stratum is one combination of the stratum
columns (climate, land cover, heterogeneity, topography by default). With ``N_s`` eligible boxes in
stratum ``s`` of ``S`` non-empty strata, the weight of ``s`` is

    w_s = (1 - a) N_s / N + a / S

with ``a = 0`` for ``proportional``, ``a = 1`` for ``equalised`` and ``a = mix`` for ``mixed``.
Every stratum first gets ``min(N_s, min_per_stratum)``; the rest of the target is shared by the
weights by water-filling: a stratum never gets more than it holds, and what it cannot take goes to
the others in proportion to their weights; the last units go by largest remainder. The draw then
takes, in each stratum, the boxes with the smallest seeded random priority, skipping tiles that have
reached the per-tile cap; a shortfall (capped tiles) is re-allocated over what remains, in rounds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from cubestream.errors import SamplingError

__all__ = ["STRATUM_COLUMNS", "AllocationRule", "allocate", "draw", "stratum_keys"]

STRATUM_COLUMNS = ("climate", "landcover", "heterogeneity", "topography")
_MAX_ROUNDS = 8


@dataclass(frozen=True, kw_only=True)
class AllocationRule:
    """How a target count is shared over strata.

    Attributes
    ----------
    method : {"proportional", "equalised", "mixed"}
        Weights proportional to the population, equal, or a mix.
    mix : float
        Weight of the equal share in ``mixed`` (0 proportional ... 1 equalised).
    min_per_stratum : int
        Boxes every non-empty stratum gets first (as far as it holds them).
    columns : tuple of str
        Columns whose combinations are the strata.
    """

    method: Literal["proportional", "equalised", "mixed"] = "mixed"
    mix: float = 0.5
    min_per_stratum: int = 1
    columns: tuple[str, ...] = STRATUM_COLUMNS

    def __post_init__(self) -> None:
        if self.method not in ("proportional", "equalised", "mixed"):
            raise SamplingError(
                f"allocation {self.method!r} is unknown; use proportional, equalised or mixed"
            )
        if not 0.0 <= self.mix <= 1.0:
            raise SamplingError(f"mix must lie in [0, 1], not {self.mix}")
        if self.min_per_stratum < 0:
            raise SamplingError("min_per_stratum must be >= 0")

    @property
    def equal_weight(self) -> float:
        """The ``a`` of the rule."""
        return {"proportional": 0.0, "equalised": 1.0, "mixed": self.mix}[self.method]


def stratum_keys(boxes: pd.DataFrame, columns: tuple[str, ...] = STRATUM_COLUMNS) -> pd.Series:
    """One string key per box, ``"Aw|grassland|low|flat"``."""
    missing = [c for c in columns if c not in boxes.columns]
    if missing:
        raise SamplingError(f"the boxes have no stratum columns {missing}")
    parts = [boxes[c].astype(str) for c in columns]
    key = parts[0]
    for part in parts[1:]:
        key = key + "|" + part
    return key.rename("stratum")


def _water_fill(capacity: np.ndarray, weights: np.ndarray, amount: int) -> np.ndarray:
    """Share ``amount`` by ``weights`` without exceeding ``capacity``; integers, exact total."""
    out = np.zeros(capacity.shape, dtype=np.int64)
    for _ in range(len(capacity) + 1):
        room = capacity - out
        open_ = room > 0
        if amount <= 0 or not open_.any():
            break
        w = np.where(open_, weights, 0.0)
        ideal = amount * w / w.sum()
        add = np.minimum(np.floor(ideal).astype(np.int64), room)
        if add.sum() == 0:
            order = np.argsort(-(ideal - np.floor(ideal)) - open_ * 1e-12, kind="stable")
            for k in order[:amount]:
                if room[k] > 0:
                    out[k] += 1
            break
        out += add
        amount -= int(add.sum())
    return out


def allocate(population: pd.Series, target: int, rule: AllocationRule) -> pd.Series:
    """Quota per stratum for ``target`` boxes.

    Parameters
    ----------
    population : pandas.Series
        Eligible boxes per stratum (index: stratum key).
    target : int
        Boxes to draw in total.
    rule : AllocationRule
        The allocation rule.

    Raises
    ------
    SamplingError
        If the target exceeds the eligible population or is not positive.
    """
    total = int(population.sum())
    if target <= 0:
        raise SamplingError(f"the target must be a positive number of boxes, not {target}")
    if target > total:
        raise SamplingError(
            f"the target of {target} boxes is larger than the {total} eligible boxes of the "
            "area; lower --target, widen the area or relax the eligibility threshold"
        )
    capacity = population.to_numpy(dtype=np.int64)
    a = rule.equal_weight
    weights = (1 - a) * capacity / total + a / len(capacity)
    base = np.minimum(capacity, rule.min_per_stratum)
    if base.sum() > target:
        raise SamplingError(
            f"min_per_stratum={rule.min_per_stratum} over {len(capacity)} strata asks for "
            f"{int(base.sum())} boxes, more than the target of {target}; lower "
            "--min-per-stratum (0 is allowed) or raise --target"
        )
    extra = _water_fill(capacity - base, weights, target - int(base.sum()))
    return pd.Series(base + extra, index=population.index, name="quota")


def _take(
    order: pd.DataFrame, quotas: pd.Series, cap: int | None, per_tile: pd.Series
) -> list[int]:
    """Walk boxes in priority order, taking each if its stratum and tile still have room."""
    left = quotas.to_dict()
    tiles = per_tile.to_dict()
    taken = []
    for index, stratum, tile in zip(order.index, order["stratum"], order["tile"], strict=True):
        if left.get(stratum, 0) <= 0:
            continue
        if cap is not None and tiles.get(tile, 0) >= cap:
            continue
        left[stratum] -= 1
        tiles[tile] = tiles.get(tile, 0) + 1
        taken.append(index)
    return taken


def draw(
    boxes: pd.DataFrame,
    target: int,
    rule: AllocationRule,
    *,
    seed: int,
    cap_per_tile: int | None = None,
) -> tuple[pd.Index, pd.Series]:
    """Draw ``target`` eligible boxes by the rule; return their index and the quotas used.

    ``boxes`` needs the stratum columns, ``tile`` and ``eligible``; the draw depends only on the
    boxes (in their given order), the rule and the seed.
    """
    eligible = boxes[boxes["eligible"]].assign(stratum=stratum_keys(boxes, rule.columns))
    rng = np.random.default_rng(seed)
    priority = pd.Series(rng.random(len(boxes)), index=boxes.index)
    eligible = eligible.assign(priority=priority[eligible.index])
    quotas = allocate(eligible["stratum"].value_counts().sort_index(), target, rule)
    chosen: list[int] = []
    per_tile = pd.Series(dtype=np.int64)
    pool = eligible.sort_values(["priority"], kind="stable")
    want = quotas
    for _ in range(_MAX_ROUNDS):
        taken = _take(pool, want, cap_per_tile, per_tile)
        chosen += taken
        per_tile = eligible.loc[chosen, "tile"].value_counts()
        shortfall = target - len(chosen)
        pool = pool.drop(index=taken)
        if cap_per_tile is not None:
            pool = pool[~pool["tile"].isin(per_tile[per_tile >= cap_per_tile].index)]
        if shortfall == 0 or pool.empty:
            break
        want = allocate(
            pool["stratum"].value_counts().sort_index(),
            min(shortfall, len(pool)),
            AllocationRule(
                method=rule.method, mix=rule.mix, min_per_stratum=0, columns=rule.columns
            ),
        )
    if len(chosen) < target:
        raise SamplingError(
            f"only {len(chosen)} of {target} boxes could be drawn: the per-tile cap of "
            f"{cap_per_tile} leaves too few boxes; raise --cap-per-tile or lower --target"
        )
    return boxes.index[boxes.index.isin(chosen)], quotas
