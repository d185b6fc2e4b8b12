"""Losses, metrics and baselines on vegetation pixels with valid observations.

Every score is taken over the forecast steps of the pixels whose land cover is a vegetation
class (:data:`trainers.batch.VEGETATION_CLASSES` by default, a setting) and whose step holds a
valid observation (``mask == 0``); gap-filled values are never scored. The weight of a
(sample, step, pixel) is 1 for such a value and 0 otherwise, and a masked error is
``sum(w * e) / sum(w)``. Prediction, target and weight share one shape
``(B, S, *pixels)``: ``(B, 36, H, W)`` for whole samples, ``(B, 36, P)`` for sampled pixels.

Two baselines give the scores context:

- **persistence**: the last valid kNDVI of the context period, repeated over the forecast
  (the gap-filled value of the last context step where a pixel has no valid context value);
- **climatology**: each store holds one 45-step window per cube, not several years, so no
  step-of-year mean can be taken per pixel. The honest stand-in used here is the pixel's mean
  kNDVI over the valid values of its context period (all 9 gap-filled values where none is
  valid), repeated: the level a model without weather would hold. It is named
  ``climatology`` in the logs and scores with this definition.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from trainers.batch import CONTEXT_STEPS, VEGETATION_CLASSES

__all__ = [
    "MaskedErrors",
    "climatology_forecast",
    "masked_mae",
    "masked_mse",
    "masked_rmse",
    "per_sample_errors",
    "persistence_forecast",
    "score_weight",
    "vegetation_mask",
]


def vegetation_mask(landcover: Tensor, classes: tuple[int, ...] = VEGETATION_CLASSES) -> Tensor:
    """Boolean mask of the pixels whose WorldCover code is in ``classes``."""
    wanted = torch.tensor(classes, device=landcover.device, dtype=landcover.dtype)
    return torch.isin(landcover, wanted)


def score_weight(
    mask: Tensor, landcover: Tensor, classes: tuple[int, ...] = VEGETATION_CLASSES
) -> Tensor:
    """Weight 1 where a forecast value is scored, else 0.

    Parameters
    ----------
    mask : Tensor
        (B, S, H, W) gap mask of the forecast steps (0 valid, 1 gap).
    landcover : Tensor
        (B, H, W) WorldCover codes.
    classes : tuple of int
        Scored classes.
    """
    vegetation = vegetation_mask(landcover, classes)[:, None]
    return ((mask == 0) & vegetation).to(torch.float32)


def _sums(error: Tensor, weight: Tensor) -> tuple[Tensor, Tensor]:
    return (error * weight).sum(), weight.sum()


def masked_mae(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean absolute error over the weighted values (0 when no value is weighted)."""
    total, count = _sums((prediction - target).abs(), weight)
    return total / count.clamp_min(1.0)


def masked_mse(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Mean squared error over the weighted values (0 when no value is weighted)."""
    total, count = _sums((prediction - target) ** 2, weight)
    return total / count.clamp_min(1.0)


def masked_rmse(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """Root mean squared error over the weighted values."""
    return masked_mse(prediction, target, weight).sqrt()


def per_sample_errors(
    prediction: Tensor, target: Tensor, weight: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """MAE, RMSE and scored count of each sample; NaN errors for a sample with nothing scored."""
    dims = tuple(range(1, prediction.ndim))
    error = (prediction - target).float()
    weight = weight.float()
    count = weight.sum(dims)
    denominator = torch.where(count > 0, count, torch.nan)
    mae = (error.abs() * weight).sum(dims) / denominator
    rmse = ((error**2 * weight).sum(dims) / denominator).sqrt()
    return mae, rmse, count


def persistence_forecast(kndvi: Tensor, mask: Tensor, steps: int) -> Tensor:
    """Last valid context kNDVI of each pixel, repeated over ``steps`` forecast steps.

    Parameters
    ----------
    kndvi, mask : Tensor
        (B, T, H, W) gap-filled kNDVI and gap mask of whole samples.
    steps : int
        Forecast steps to fill.
    """
    context = kndvi[:, :CONTEXT_STEPS]
    valid = mask[:, :CONTEXT_STEPS] == 0
    position = torch.arange(CONTEXT_STEPS, device=kndvi.device).view(1, -1, 1, 1)
    last = torch.where(valid, position, -1).amax(dim=1, keepdim=True)
    last = torch.where(last < 0, CONTEXT_STEPS - 1, last)
    value = context.gather(1, last)
    return value.expand(-1, steps, -1, -1)


def climatology_forecast(kndvi: Tensor, mask: Tensor, steps: int) -> Tensor:
    """Mean valid context kNDVI of each pixel, repeated (see the module docstring)."""
    context = kndvi[:, :CONTEXT_STEPS]
    valid = (mask[:, :CONTEXT_STEPS] == 0).to(kndvi.dtype)
    count = valid.sum(1, keepdim=True)
    mean = torch.where(
        count > 0,
        (context * valid).sum(1, keepdim=True) / count.clamp_min(1.0),
        context.mean(1, keepdim=True),
    )
    return mean.expand(-1, steps, -1, -1)


class MaskedErrors(Metric):
    """Overall masked MAE and RMSE accumulated over batches (and summed over ranks).

    ``compute()`` returns ``{"mae": ..., "rmse": ...}``: ratios of sums over every scored value,
    not means of per-batch ratios.
    """

    full_state_update = False
    abs_sum: Tensor
    sq_sum: Tensor
    count: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("abs_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sq_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, prediction: Tensor, target: Tensor, weight: Tensor) -> None:
        """Add a batch of values."""
        error = (prediction - target).double()
        weight = weight.double()
        self.abs_sum += (error.abs() * weight).sum()
        self.sq_sum += (error**2 * weight).sum()
        self.count += weight.sum()

    def compute(self) -> dict[str, Tensor]:
        """MAE and RMSE over everything added (NaN when nothing was scored)."""
        count = torch.where(self.count > 0, self.count, torch.nan)
        return {"mae": self.abs_sum / count, "rmse": (self.sq_sum / count).sqrt()}
