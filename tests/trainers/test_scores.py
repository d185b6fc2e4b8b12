"""The GreenEarthNet scores on small arrays, against values worked out by hand."""

from __future__ import annotations

import math

import pytest
import torch

from trainers.errors import TrainerConfigError
from trainers.scores import PixelRule, beat_share, cube_class_rows, pixel_scores, summarize

RULE = PixelRule(min_obs=3, min_context_obs=1, min_target_std=0.1)


def _batch() -> dict[str, torch.Tensor]:
    """One cube of 1 x 4 pixels, 4 forecast steps (the last one a gap) and 2 context steps."""
    good = [0.2, 0.4, 0.6, 5.0]
    target = torch.tensor([good, good, [0.5, 0.5, 0.5, 0.5], good]).T.reshape(1, 4, 1, 4)
    pred = torch.tensor([[0.3, 0.3, 0.6, 0.0]] * 4).T.reshape(1, 4, 1, 4)
    mask = torch.zeros(1, 4, 1, 4)
    mask[:, 3] = 1
    context = torch.full((1, 2, 1, 4), 0.3)
    context_mask = torch.zeros(1, 2, 1, 4)
    landcover = torch.tensor([[[10, 50, 20, 30]]])
    return {
        "prediction": pred,
        "target": target,
        "mask": mask,
        "context_target": context,
        "context_mask": context_mask,
        "landcover": landcover,
    }


def test_pixel_scores_match_hand_computation() -> None:
    # y = 0.2 0.4 0.6, p = 0.3 0.3 0.6 (step 4 is a gap and ignored): SSE 0.02, SST 0.08,
    # NSE 0.75, NNSE 0.8, RMSE sqrt(0.02 / 3), r = 0.06 / sqrt(0.08 * 0.06), bias 0
    s = pixel_scores(**_batch(), rule=RULE)
    assert s.nse[0, 0, 0].item() == pytest.approx(0.75)
    assert s.nnse[0, 0, 0].item() == pytest.approx(0.8)
    assert s.rmse[0, 0, 0].item() == pytest.approx(math.sqrt(0.02 / 3))
    assert s.r[0, 0, 0].item() == pytest.approx(0.06 / math.sqrt(0.08 * 0.06))
    assert s.bias[0, 0, 0].item() == pytest.approx(0.0, abs=1e-6)
    assert s.n_obs[0, 0, 0].item() == 3
    # built-up is not scored; a constant target has no NSE and is not scored
    assert s.scored[0, 0].tolist() == [True, False, False, True]
    assert math.isnan(s.nse[0, 0, 2].item())


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ("mask", RULE),  # one more gap: 2 valid observations < 3
        ("context", RULE),  # no valid context observation < 1
        ("low", RULE),  # a valid target of -0.1 is not above 0
        ("none", PixelRule(min_obs=3, min_context_obs=1, min_target_std=0.2)),  # std 0.163
    ],
)
def test_pixel_rule_filters(change: str, rule: PixelRule) -> None:
    batch = _batch()
    if change == "mask":
        batch["mask"][0, 0, 0, 0] = 1
    elif change == "context":
        batch["context_mask"][0, :, 0, 0] = 1
    elif change == "low":
        batch["context_target"][0, 0, 0, 0] = -0.1
    assert not pixel_scores(**batch, rule=rule).scored[0, 0, 0]


def test_constant_forecast_has_zero_correlation() -> None:
    batch = _batch()
    batch["prediction"] = torch.full_like(batch["prediction"], 0.4)
    assert pixel_scores(**batch, rule=RULE).r[0, 0, 0].item() == 0.0


def test_rows_and_summary_average_per_cube_then_per_class() -> None:
    batch = _batch()
    scores = pixel_scores(**batch, rule=RULE)
    rows = cube_class_rows(scores, batch["landcover"], ["c1"], forecaster="m")
    by_class = {r["landcover"]: r for r in rows}
    assert set(by_class) == {10, 30}  # built-up and the constant shrub pixel add nothing
    assert by_class[10]["nnse"] == pytest.approx(0.8)
    assert by_class[10]["r2"] == pytest.approx(0.75)
    assert by_class[10]["forecaster"] == "m"
    # two cubes of class 10 with NNSE 0.8 and 0.5, one of class 30 with 0.8:
    # per class 0.65 and 0.8, macro mean 0.725 -> NSE 2 - 1/0.725
    rows.append({**by_class[10], "cube_id": "c2", "nnse": 0.5, "rmse": 0.3, "r2": 0.25})
    summary = summarize(rows)
    assert summary["nse"] == pytest.approx(2 - 1 / 0.725)
    assert summary["per_landcover"]["10"]["nse"] == pytest.approx(2 - 1 / 0.65)
    rmse = math.sqrt(0.02 / 3)
    assert summary["rmse"] == pytest.approx(((rmse + 0.3) / 2 + rmse) / 2)
    assert summary["r2"] == pytest.approx(((0.75 + 0.25) / 2 + 0.75) / 2)
    assert summary["cubes"] == 2
    # veg score pools pixels of tree, shrub, grass: 0.8 (c1 tree), 0.8 (c1 grass), 0.8 (c2 copy)
    assert summary["veg_score"] == pytest.approx(2 - 1 / 0.8)


def test_beat_share_needs_three_of_four_gains() -> None:
    base = {"cube_id": "c", "landcover": 10, "pixels": 4}
    ref = [{**base, "rmse": 0.2, "nse": 0.0, "r2": 0.3, "bias_abs": 0.05}]
    three = [{**base, "rmse": 0.15, "nse": 0.1, "r2": 0.4, "bias_abs": 0.05}]
    two = [{**base, "rmse": 0.15, "nse": 0.1, "r2": 0.32, "bias_abs": 0.05}]
    assert beat_share(three, ref) == 1.0
    assert beat_share(two, ref) == 0.0
    assert math.isnan(beat_share(two, []))


def test_rule_rejects_nonsense() -> None:
    with pytest.raises(TrainerConfigError, match="min_obs"):
        PixelRule(min_obs=1)
    with pytest.raises(TrainerConfigError, match="classes"):
        PixelRule(classes=())
