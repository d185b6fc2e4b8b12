r"""Scores as the GreenEarthNet protocol computes them: per-pixel NSE, RMSE, R2, the veg score.

The rules follow the evaluation script of GreenEarthNet (Benson et al., CVPR 2024;
``eval.py`` of github.com/vitusbenson/greenearthnet, commit a0329636, MIT licence) and the
``score_v2.py`` of earthnet-toolkit (github.com/earthnet2021/earthnet-toolkit, commit 78984aa8).

Per pixel, over the forecast steps ``t`` that hold a valid observation ``y_t`` (the forecast
``p_t`` is clipped to [-1, 1], NaN read as 0.5):

- ``NSE = 1 - sum (y_t - p_t)^2 / sum (y_t - mean y)^2`` and its normalised form
  ``NNSE = 1 / (2 - NSE)`` in (0, 1], which is what gets averaged (``NSE = 2 - 1 / mean NNSE``);
- ``RMSE = sqrt(mean (y_t - p_t)^2)``;
- ``r``, Pearson's correlation of ``y`` and ``p`` over those steps; ``R2`` is ``r^2`` (the
  protocol's R2 is the squared correlation, not a coefficient of determination). A constant
  forecast (persistence, our climatology) has no defined correlation; it gets ``r = 0``, which
  is the paper's persistence R2 of 0.00 (xarray would give NaN and drop the pixel);
- ``bias = mean y - mean p``.

A pixel is scored only when (:class:`PixelRule`, defaults those of GreenEarthNet) its land cover
is tree, shrub, grass or crop (WorldCover < 41), its lowest valid target over context and
forecast is above 0, it holds at least 10 valid forecast and 3 valid context observations, and
its target's standard deviation over the valid forecast steps (ddof 0) is above 0.1.

Averages: the mean per (cube, land cover), then the mean over cubes per land cover, then the
unweighted mean over land covers (:func:`summarize`). A (cube, land cover) "beats climatology"
when more than two of four gains over climatology hold: RMSE lower by > 0.01, NSE higher by
> 0.05, R2 higher by > 0.05, |bias| lower by > 0.01 (:func:`beat_share`; the paper reports it as
the share of cubes). The **veg score** is the toolkit's: ``2 - 1 / mean NNSE`` over every pixel
of tree, shrub and grass cover (WorldCover <= 30) with a finite NNSE, pooled, without the
observation filters.

Where our L2 differs from GreenEarthNet
---------------------------------------
- The target is kNDVI = tanh(NDVI^2), not NDVI: its values and spread are smaller, so the
  ``min_target_std`` of 0.1 removes more pixels; it is a setting.
- Valid observations are ``mask == 0`` (a cloud-free observation between step t-1 and t,
  :mod:`cubestream.l2.masks`), not a per-date cloud mask and SCL classes on the day itself.
- Steps are 10-daily, 9 context and 36 forecast steps (GreenEarthNet: 5-daily, 10 context and
  20 forecast steps); the observation counts keep the toolkit's numbers.
- Our climatology baseline is the context mean (:mod:`trainers.metrics`): a store holds one
  window per cube, not the multi-year record the paper's climatology is taken from.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from trainers.errors import TrainerConfigError

__all__ = [
    "GREENEARTHNET_CLASSES",
    "PixelRule",
    "PixelScores",
    "beat_share",
    "cube_class_rows",
    "pixel_scores",
    "summarize",
]

GREENEARTHNET_CLASSES = (10, 20, 30, 40)
"""WorldCover classes scored by GreenEarthNet: tree, shrub, grass, crop."""
VEG_SCORE_CLASSES = (10, 20, 30)
"""Classes pooled in the toolkit's veg score (``landcover <= 30``)."""
BEAT_THRESHOLDS = {"rmse": 0.01, "nse": 0.05, "r2": 0.05, "bias_abs": 0.01}
"""Gains over climatology that count towards "beats climatology" (more than two must hold)."""


@dataclass(frozen=True, kw_only=True)
class PixelRule:
    """Which pixels are scored (defaults: GreenEarthNet's ``subset_hq`` filter).

    Attributes
    ----------
    classes : tuple of int
        Scored WorldCover classes.
    min_obs : int
        Least valid forecast observations.
    min_context_obs : int
        Least valid context observations.
    min_target_std : float
        The target's standard deviation over its valid forecast steps must exceed this.
    min_target : float
        The lowest valid target (context and forecast) must exceed this.
    """

    classes: tuple[int, ...] = GREENEARTHNET_CLASSES
    min_obs: int = 10
    min_context_obs: int = 3
    min_target_std: float = 0.1
    min_target: float = 0.0

    def __post_init__(self) -> None:
        if not self.classes:
            raise TrainerConfigError("PixelRule.classes is empty: name the scored classes")
        if self.min_obs < 2 or self.min_context_obs < 0:
            raise TrainerConfigError(
                f"PixelRule needs min_obs >= 2 and min_context_obs >= 0, got {self.min_obs} "
                f"and {self.min_context_obs}"
            )


class PixelScores(NamedTuple):
    """Per-pixel scores of one batch, each ``(B, *pixels)``; NaN where undefined."""

    nnse: Tensor
    nse: Tensor
    rmse: Tensor
    r: Tensor
    bias: Tensor
    n_obs: Tensor
    scored: Tensor
    """bool: the pixel passes the :class:`PixelRule`."""


def _valid_mean(values: Tensor, valid: Tensor, count: Tensor) -> Tensor:
    return torch.where(valid, values, 0.0).sum(1) / count.clamp_min(1.0)


def pixel_scores(
    prediction: Tensor,
    target: Tensor,
    mask: Tensor,
    context_target: Tensor,
    context_mask: Tensor,
    landcover: Tensor,
    rule: PixelRule | None = None,
) -> PixelScores:
    """Per-pixel NSE, NNSE, RMSE, r and bias, and whether each pixel is scored.

    Parameters
    ----------
    prediction, target, mask : Tensor
        ``(B, S, *pixels)`` forecast, target and gap mask (0 valid) of the forecast steps.
    context_target, context_mask : Tensor
        ``(B, C, *pixels)`` target and gap mask of the context steps.
    landcover : Tensor
        ``(B, *pixels)`` WorldCover codes.
    rule : PixelRule, optional
        The scored pixels (GreenEarthNet's by default).
    """
    rule = rule or PixelRule()
    y = target.double()
    p = prediction.double().nan_to_num(0.5).clamp(-1.0, 1.0)
    valid = mask == 0
    n_obs = valid.sum(1).double()
    y_mean = _valid_mean(y, valid, n_obs)
    p_mean = _valid_mean(p, valid, n_obs)
    dy = torch.where(valid, y - y_mean[:, None], 0.0)
    dp = torch.where(valid, p - p_mean[:, None], 0.0)
    sse = torch.where(valid, (y - p) ** 2, 0.0).sum(1)
    sst = (dy**2).sum(1)
    ssp = (dp**2).sum(1)
    defined = (n_obs >= 2) & (sst > 0)
    nse = torch.where(defined, 1.0 - sse / torch.where(defined, sst, 1.0), torch.nan)
    has_obs = n_obs > 0
    rmse = torch.where(has_obs, (sse / n_obs.clamp_min(1.0)).sqrt(), torch.nan)
    spread = (sst * ssp).sqrt()
    r = torch.where(ssp > 0, (dy * dp).sum(1) / spread.clamp_min(1e-300), 0.0)
    r = torch.where(defined, r, torch.nan)
    bias = torch.where(has_obs, y_mean - p_mean, torch.nan)
    context_valid = context_mask == 0
    lowest = torch.minimum(
        torch.where(valid, y, math.inf).amin(1),
        torch.where(context_valid, context_target.double(), math.inf).amin(1),
    )
    classes = torch.tensor(rule.classes, device=landcover.device, dtype=landcover.dtype)
    scored = (
        torch.isin(landcover, classes)
        & (lowest > rule.min_target)
        & (n_obs >= rule.min_obs)
        & (context_valid.sum(1) >= rule.min_context_obs)
        & ((sst / n_obs.clamp_min(1.0)).sqrt() > rule.min_target_std)
        & defined
    )
    return PixelScores(1.0 / (2.0 - nse), nse, rmse, r, bias, n_obs, scored)


def cube_class_rows(
    scores: PixelScores, landcover: Tensor, cube_ids: Sequence[str], **labels: Any
) -> list[dict[str, Any]]:
    """Mean scores per (cube, land cover) over the scored pixels, one dict per pair.

    Each row holds ``cube_id``, ``landcover``, ``pixels`` (scored pixels), the means ``nnse``,
    ``nse``, ``rmse``, ``r2``, ``bias_abs`` and, for the veg score, ``veg_nnse_sum`` and
    ``veg_pixels`` over every pixel of that class with a finite NNSE when the class is pooled in
    the veg score (tree, shrub, grass), plus the given ``labels`` (forecaster, track, ...).
    A pair with no scored pixel gets a row only when it adds to the veg score.
    """
    rows: list[dict[str, Any]] = []
    flat = {k: v.reshape(len(cube_ids), -1).cpu() for k, v in scores._asdict().items()}
    cover = landcover.reshape(len(cube_ids), -1).cpu()
    for b, cube in enumerate(cube_ids):
        for code in torch.unique(cover[b]).tolist():
            here = cover[b] == code
            keep = here & flat["scored"][b]
            finite = here & torch.isfinite(flat["nnse"][b])
            veg = code in VEG_SCORE_CLASSES
            if not keep.any() and not (veg and finite.any()):
                continue
            row: dict[str, Any] = {"cube_id": str(cube), "landcover": int(code), **labels}
            row["pixels"] = int(keep.sum())
            for name in ("nnse", "nse", "rmse", "bias_abs", "r2"):
                source = {"bias_abs": "bias", "r2": "r"}.get(name, name)
                value = flat[source][b][keep]
                value = value.abs() if name == "bias_abs" else value**2 if name == "r2" else value
                row[name] = float(value.nanmean()) if keep.any() else math.nan
            row["veg_nnse_sum"] = float(flat["nnse"][b][finite].sum()) if veg else 0.0
            row["veg_pixels"] = int(finite.sum()) if veg else 0
            rows.append(row)
    return rows


def _mean(values: Iterable[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else math.nan


def _per_class(rows: Sequence[Mapping[str, Any]], name: str) -> dict[int, float]:
    by_class: dict[int, list[float]] = defaultdict(list)
    for row in rows:
        if row["pixels"] > 0:
            by_class[int(row["landcover"])].append(float(row[name]))
    return {code: _mean(values) for code, values in sorted(by_class.items())}


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Protocol scores of one forecaster from its :func:`cube_class_rows`.

    Returns ``nse``, ``rmse``, ``r2`` (macro means over land covers of the means over cubes),
    ``veg_score``, ``cubes`` and ``pixels`` scored, and ``per_landcover``: the same per class.
    NaN where nothing was scored.
    """
    nnse = _per_class(rows, "nnse")
    rmse = _per_class(rows, "rmse")
    r2 = _per_class(rows, "r2")
    veg_sum = sum(float(r["veg_nnse_sum"]) for r in rows)
    veg_count = sum(int(r["veg_pixels"]) for r in rows)
    per_class = {
        str(code): {
            "nse": 2.0 - 1.0 / nnse[code],
            "rmse": rmse[code],
            "r2": r2[code],
            "cubes": sum(1 for r in rows if r["landcover"] == code and r["pixels"] > 0),
        }
        for code in nnse
    }
    mean_nnse = _mean(nnse.values())
    return {
        "nse": 2.0 - 1.0 / mean_nnse if not math.isnan(mean_nnse) else math.nan,
        "rmse": _mean(rmse.values()),
        "r2": _mean(r2.values()),
        "veg_score": 2.0 - 1.0 / (veg_sum / veg_count) if veg_count else math.nan,
        "cubes": len({r["cube_id"] for r in rows if r["pixels"] > 0}),
        "pixels": sum(int(r["pixels"]) for r in rows),
        "per_landcover": per_class,
    }


def beat_share(rows: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]]) -> float:
    """Share of (cube, land cover) pairs where ``rows`` beat ``reference`` (climatology).

    A pair beats the reference when more than two of the gains in :data:`BEAT_THRESHOLDS` hold
    (RMSE and |bias| lower, NSE and R2 higher, each by more than its threshold). Both row lists
    come from the same pixels (the rule depends on the target only). NaN when no pair is shared.
    """
    ref = {(r["cube_id"], r["landcover"]): r for r in reference if r["pixels"] > 0}
    wins: list[float] = []
    for row in rows:
        other = ref.get((row["cube_id"], row["landcover"]))
        if other is None or row["pixels"] == 0:
            continue
        gains = {
            "rmse": other["rmse"] - row["rmse"],
            "nse": row["nse"] - other["nse"],
            "r2": row["r2"] - other["r2"],
            "bias_abs": other["bias_abs"] - row["bias_abs"],
        }
        held = sum(1 for k, v in gains.items() if v > BEAT_THRESHOLDS[k])
        wins.append(1.0 if held > 2 else 0.0)
    return sum(wins) / len(wins) if wins else math.nan
