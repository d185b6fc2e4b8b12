"""The samples/s a GPU consumes per model, from FLOPs counted here, and the loader cores it needs.

No GPU is needed: :func:`train_step_flops` counts the FLOPs of the forward pass of one
training step (``train_pixels`` pixels per cube, as :class:`trainers.task.ForecastTask` trains)
with ``torch.utils.flop_counter.FlopCounterMode`` on the CPU, for each model at its original
size (the constructors' defaults: RNN hidden 128; ContextRNN with an EfficientNet-B3 FPN and
hidden 192) on 128 x 128 cubes; a training step is taken as 3 x the forward (the backward
computes two products per forward product). The counter's own backward count is recorded too
but not used: it ignores ``groups`` in the weight gradient of a convolution, so it counts
EfficientNet's depthwise convolutions' backward C times over (about 25 x the forward
convolutions here). Then, with the assumptions written out in :data:`H100`:

    GPU samples/s = peak bf16 FLOP/s x utilisation / training FLOPs per sample
    loader cores per GPU = GPU samples/s / loader samples per core-second

The counter counts matrix products and convolutions (what a GPU spends its FLOPs on); the
elementwise work it leaves out, depthwise convolutions and the 45 sequential GRU steps are why
the utilisation is an assumption well below 1, given as a range. A GPU measurement
(``make gpu-check``) replaces these figures where a GPU is lent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from trainers.models.base import PixelForecaster

__all__ = ["H100", "MODELS", "feed", "feed_model", "train_step_flops"]

H100: dict[str, Any] = {
    "name": "NVIDIA H100 SXM",
    "peak_bf16_flops": 989e12,
    "peak_source": "NVIDIA H100 datasheet: 989 TFLOP/s dense BF16 tensor core (SXM)",
    "utilisation": 0.10,
    "utilisation_range": (0.05, 0.25),
    "utilisation_why": (
        "assumed: depthwise convolutions on 128 px images and a GRU of 45 sequential steps reach "
        "a small fraction of the tensor-core peak; the issue's estimate from timm's "
        "EfficientNet-B3 training rates (20-40 ms per step of 64 cubes) is 5-10 % here; to be "
        "replaced by make gpu-check's measurement"
    ),
}
"""The GPU the figures are for, and the assumptions behind them."""
MODELS = ("rnn", "context_rnn")
TRAIN_PIXELS = 512
"""Pixels per cube a training step decodes (``ForecastTask(train_pixels=512)``, the default)."""


def _batch(batch_size: int, size: int) -> dict[str, Any]:
    """A batch as the trainers' loader gives it (``s2`` of the context steps only)."""
    from cubestream.l2.schema import BANDS, STEPS
    from trainers.batch import READ_STEPS

    generator = torch.Generator().manual_seed(0)
    shape = (batch_size, STEPS, size, size)
    s2_steps = READ_STEPS.get("s2", STEPS)
    return {
        "s2": torch.rand((batch_size, s2_steps, len(BANDS), size, size), generator=generator),
        "kndvi": torch.rand(shape, generator=generator) * 0.7,
        "mask": torch.zeros(shape),
        "weather": torch.randn((batch_size, STEPS, 6), generator=generator),
        "dem": torch.randn((batch_size, size, size), generator=generator),
        "landcover": torch.full((batch_size, size, size), 10, dtype=torch.int64),
        "geomorphons": torch.ones((batch_size, size, size), dtype=torch.int64),
        "sample": torch.arange(batch_size),
        "cube_id": [str(i) for i in range(batch_size)],
    }


def _model(name: str) -> PixelForecaster:
    from trainers.models import RNN, ContextRNN

    return RNN() if name == "rnn" else ContextRNN()


def train_step_flops(name: str, *, batch_size: int = 1, size: int = 128) -> dict[str, Any]:
    """FLOPs of one training step per sample (3 x the forward counted on the CPU)."""
    from trainers.objective import ForecastObjective

    torch.manual_seed(0)
    model = _model(name)
    objective = ForecastObjective(model)
    batch: Any = _batch(batch_size, size)
    pixels = objective.training_pixels(batch, TRAIN_PIXELS, seed=0, step=0, rank=0)
    counter = FlopCounterMode(display=False)
    with counter:
        out = objective(batch, pixels)
        forward = counter.get_total_flops()
        by_operator = counter.get_flop_counts().get("Global", {})
        out.loss.backward()
    counted_backward = counter.get_total_flops() - forward
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "flops_per_sample": 3 * forward / batch_size,
        "forward_flops_per_sample": forward / batch_size,
        "counter_backward_flops_per_sample": counted_backward / batch_size,
        "gflop_per_sample": round(3 * forward / batch_size / 1e9, 3),
        "counted_batch": batch_size,
        "size": size,
        "train_pixels": TRAIN_PIXELS,
        "forward_by_operator": {str(op): int(n) for op, n in by_operator.items()},
    }


def feed_model(name: str, size: int = 128) -> dict[str, Any]:
    """FLOPs of ``name``'s training step and the samples/s an H100 takes (:data:`H100`)."""
    counted = train_step_flops(name, size=size)
    flops = counted["flops_per_sample"]
    low, high = (H100["peak_bf16_flops"] * u / flops for u in H100["utilisation_range"])
    return {
        **counted,
        "gpu_samples_per_s": round(H100["peak_bf16_flops"] * H100["utilisation"] / flops, 1),
        "gpu_samples_per_s_range": [round(low, 1), round(high, 1)],
    }


def feed(loader_samples_per_core_s: float, size: int = 128) -> dict[str, Any]:
    """GPU samples/s per model and the loader cores per GPU at ``loader_samples_per_core_s``.

    ``loader_samples_per_core_s`` must be measured at ``size`` px (the encoding benchmark's).
    """
    models = {}
    for name in MODELS:
        counted = feed_model(name, size)
        rate = counted["gpu_samples_per_s"]
        low, high = counted["gpu_samples_per_s_range"]
        models[name] = {
            **counted,
            "loader_cores_per_gpu": round(rate / loader_samples_per_core_s, 2),
            "loader_cores_per_gpu_range": [
                round(low / loader_samples_per_core_s, 2),
                round(high / loader_samples_per_core_s, 2),
            ],
        }
    return {
        "gpu": H100,
        "loader_samples_per_core_s": loader_samples_per_core_s,
        "formula": "GPU samples/s = peak x utilisation / FLOPs per sample; cores = GPU rate / "
        "loader samples per core-second",
        "models": models,
    }
