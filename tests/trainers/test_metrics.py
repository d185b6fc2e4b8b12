from __future__ import annotations

import math

import pytest
import torch

from trainers.batch import CONTEXT_STEPS
from trainers.metrics import (
    MaskedErrors,
    climatology_forecast,
    masked_mae,
    masked_rmse,
    per_sample_errors,
    persistence_forecast,
    score_weight,
    vegetation_mask,
)


def test_weight_keeps_vegetation_with_valid_observations_only() -> None:
    landcover = torch.tensor([[[10, 50], [95, 80]]])  # tree, built-up / mangroves, water
    mask = torch.tensor([[[[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 1.0]]]])  # (1, 2, 2, 2)
    weight = score_weight(mask, landcover)
    expected = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]], [[1.0, 0.0], [1.0, 0.0]]]])
    torch.testing.assert_close(weight, expected)
    assert vegetation_mask(landcover, (50,)).tolist() == [[[False, True], [False, False]]]


def test_masked_mae_and_rmse_by_hand() -> None:
    # One sample, two steps, 2 x 2 pixels. Scored: tree pixel (0, 0) at both steps and
    # mangrove pixel (1, 0) at step 1 only; the others are built-up, water, or gaps.
    landcover = torch.tensor([[[10, 50], [95, 80]]])
    mask = torch.tensor([[[[0.0, 0.0], [1.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]]])
    target = torch.tensor([[[[0.5, 0.9], [0.2, 0.0]], [[0.6, 0.9], [0.3, 0.0]]]])
    prediction = torch.tensor([[[[0.4, 0.0], [0.9, 0.9]], [[0.9, 0.0], [0.1, 0.9]]]])
    weight = score_weight(mask, landcover)
    errors = [0.1, 0.3, 0.2]  # |0.4-0.5|, |0.9-0.6|, |0.1-0.3|
    assert masked_mae(prediction, target, weight).item() == pytest.approx(sum(errors) / 3)
    rmse = math.sqrt(sum(e * e for e in errors) / 3)
    assert masked_rmse(prediction, target, weight).item() == pytest.approx(rmse)
    mae, rmse_s, count = per_sample_errors(prediction, target, weight)
    assert mae.tolist() == pytest.approx([sum(errors) / 3])
    assert rmse_s.tolist() == pytest.approx([rmse])
    assert count.tolist() == [3.0]


def test_per_sample_errors_and_overall_accumulation() -> None:
    g = torch.Generator().manual_seed(1)
    prediction, target = torch.rand(3, 4, 5, 5, generator=g), torch.rand(3, 4, 5, 5, generator=g)
    weight = (torch.rand(3, 4, 5, 5, generator=g) > 0.5).float()
    weight[2] = 0  # nothing scored in sample 2
    mae, rmse, count = per_sample_errors(prediction, target, weight)
    assert math.isnan(mae[2]) and math.isnan(rmse[2]) and count[2] == 0
    first = (prediction[0] - target[0]).abs()[weight[0] > 0].mean()
    assert mae[0].item() == pytest.approx(first.item(), rel=1e-6)
    metric = MaskedErrors()
    for i in range(3):  # batch by batch
        metric.update(prediction[i : i + 1], target[i : i + 1], weight[i : i + 1])
    overall = metric.compute()
    assert overall["mae"].item() == pytest.approx(masked_mae(prediction, target, weight).item())
    assert overall["rmse"].item() == pytest.approx(masked_rmse(prediction, target, weight).item())
    empty = MaskedErrors()
    empty.update(prediction, target, torch.zeros_like(weight))
    assert torch.isnan(empty.compute()["mae"])


def test_persistence_and_climatology_by_hand() -> None:
    t = CONTEXT_STEPS + 3
    kndvi = torch.zeros(1, t, 1, 3)
    mask = torch.ones(1, t, 1, 3)
    kndvi[0, :CONTEXT_STEPS, 0, 0] = torch.arange(CONTEXT_STEPS) / 10.0
    mask[0, [1, 4], 0, 0] = 0  # pixel 0: valid at steps 1 (0.1) and 4 (0.4)
    kndvi[0, :CONTEXT_STEPS, 0, 1] = 0.7
    mask[0, 8, 0, 1] = 0  # pixel 1: valid at the last context step
    kndvi[0, :CONTEXT_STEPS, 0, 2] = torch.linspace(
        0.1, 0.9, CONTEXT_STEPS
    )  # pixel 2: no valid value
    persistence = persistence_forecast(kndvi, mask, 3)
    climatology = climatology_forecast(kndvi, mask, 3)
    assert persistence.shape == climatology.shape == (1, 3, 1, 3)
    torch.testing.assert_close(persistence[0, :, 0], torch.tensor([[0.4, 0.7, 0.9]] * 3))
    torch.testing.assert_close(climatology[0, :, 0], torch.tensor([[0.25, 0.7, 0.5]] * 3))
