"""Batch size and ``chunk_pixels`` from the free GPU memory, or an error naming what to lower.

The footprint of a model is measured once on any device (:func:`footprint`, CPU is fine): the
bytes of the tensors autograd saves for the backward of one training sample (``train_pixels``
pixels decoded per cube, as :class:`~trainers.task.ForecastTask` trains), and of one decoded
pixel of the pixelwise decoder (an upper bound for evaluation, which saves nothing), both
counted with ``torch.autograd.graph.saved_tensors_hooks`` in float32 (bf16-mixed saves some of
them in half, so the figures err on the safe side). :func:`plan_memory` then fits, into
``headroom`` of the free memory:

=========================  ============================================================
term                       bytes
=========================  ============================================================
weights and AdamW state    16 per parameter (float32 weights, gradients, two moments)
a training batch           ``batch_size`` x (decoded inputs + codes + saved activations)
an evaluation chunk        ``chunk_pixels`` x bytes per decoded pixel, beside the
                           decoded inputs of an evaluation batch of the same size
=========================  ============================================================

Whatever is not given is chosen: ``batch_size`` the largest power of two that fits (at most
``max_batch_size``), ``chunk_pixels`` the largest power of two that fits (at most 65536). A
given setting that does not fit, or a plan that fits nothing, raises
:class:`~trainers.errors.GpuMemoryError` naming the setting to lower and the most that fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import torch

from trainers.errors import GpuMemoryError

if TYPE_CHECKING:
    from trainers.models.base import PixelForecaster

__all__ = ["Footprint", "MemoryPlan", "footprint", "free_gpu_bytes", "plan_memory"]

ADAM_BYTES_PER_PARAMETER = 16
"""float32 weights, gradients and AdamW's two moments."""
MAX_CHUNK_PIXELS = 65536
MIN_CHUNK_PIXELS = 1024


@dataclass(frozen=True, kw_only=True)
class Footprint:
    """What one model needs, per parameter, per training sample and per decoded pixel."""

    parameters: int
    input_bytes_per_sample: int
    """Decoded float32 batch tensors of one sample plus its stored codes."""
    train_bytes_per_sample: int
    """Saved activations of one training sample."""
    decode_bytes_per_pixel: int
    """Saved activations of one pixel through the pixelwise decoder."""

    def to_dict(self) -> dict[str, Any]:
        """The footprint as plain values."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class MemoryPlan:
    """Settings that fit the free memory, with the estimate behind them."""

    batch_size: int
    chunk_pixels: int
    free_bytes: int
    budget_bytes: int
    train_bytes: int
    eval_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """The plan as plain values."""
        return asdict(self)


@contextmanager
def _saved_bytes(model: torch.nn.Module) -> Iterator[list[int]]:
    """Count the bytes autograd saves for backward inside the block.

    Each storage counts once (a tensor saved by several operations, or views of one storage,
    take its memory once), and the model's parameters not at all (they are counted apart).
    """
    total = [0]
    seen = {p.untyped_storage().data_ptr() for p in model.parameters()}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in seen:
            seen.add(storage.data_ptr())
            total[0] += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        yield total


def _input_bytes(batch: dict[str, Any]) -> int:
    decoded = sum(v.numel() * 4 for v in batch.values() if torch.is_tensor(v))
    codes = batch["s2"].numel() * 2 + batch["kndvi"].numel() * 2  # uint16 codes
    return int(decoded + codes) // len(batch["cube_id"])


def footprint(model: PixelForecaster, batch: dict[str, Any], *, train_pixels: int) -> Footprint:
    """Measure a model's :class:`Footprint` on one batch (any device; CPU is fine)."""
    from trainers.objective import ForecastObjective

    objective = ForecastObjective(model)
    size = len(batch["cube_id"])
    contract: Any = batch
    pixels = objective.training_pixels(contract, train_pixels, seed=0, step=0, rank=0)
    with _saved_bytes(model) as train:
        objective(contract, pixels)
    chosen = pixels.shape[1] if pixels is not None else batch["kndvi"].shape[-1] ** 2
    inputs = objective.encode(contract)
    features = objective.model.pixel_features(inputs).detach()
    count = min(chosen, features.shape[-1] * features.shape[-2])
    flat = features.flatten(2)[0, :, :count].T.contiguous().requires_grad_(True)
    weather = inputs.weather[:1].expand(count, -1, -1)
    with _saved_bytes(model) as decode:
        objective.model.decode(flat, weather)
    return Footprint(
        parameters=sum(p.numel() for p in model.parameters()),
        input_bytes_per_sample=_input_bytes(batch),
        train_bytes_per_sample=train[0] // size,
        decode_bytes_per_pixel=max(decode[0] // count, 1),
    )


def free_gpu_bytes(device: int | None = None) -> int:
    """Free memory of a CUDA device (``torch.cuda.mem_get_info``).

    Raises
    ------
    GpuMemoryError
        If there is no CUDA device.
    """
    if not torch.cuda.is_available():
        raise GpuMemoryError("no CUDA device: the GPU memory plan needs one (or a free_bytes)")
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def _power_of_two_at_most(value: float) -> int:
    return 1 << (int(value).bit_length() - 1) if value >= 1 else 0


def plan_memory(
    needs: Footprint,
    free_bytes: int,
    *,
    batch_size: int | None = None,
    chunk_pixels: int | None = None,
    max_batch_size: int = 256,
    headroom: float = 0.85,
) -> MemoryPlan:
    """Choose (or check) ``batch_size`` and ``chunk_pixels`` for ``free_bytes`` of GPU memory.

    Raises
    ------
    GpuMemoryError
        Naming the setting to lower (``batch_size`` or ``chunk_pixels``) and the most that
        fits, or saying that even the weights do not fit.
    """
    budget = int(free_bytes * headroom) - needs.parameters * ADAM_BYTES_PER_PARAMETER
    gib = 2**30
    if budget <= needs.input_bytes_per_sample:
        raise GpuMemoryError(
            f"{free_bytes / gib:.1f} GiB of free GPU memory do not hold the model's "
            f"{needs.parameters:,} parameters with their optimiser state and one sample: use a "
            "GPU with more memory, a smaller model, or DeepSpeed ZeRO (strategy deepspeed)"
        )
    per_sample = needs.input_bytes_per_sample + needs.train_bytes_per_sample
    fits = budget // per_sample
    if batch_size is None:
        batch_size = _power_of_two_at_most(min(fits, max_batch_size))
        if batch_size < 1:
            raise GpuMemoryError(
                f"not one training sample fits in {free_bytes / gib:.1f} GiB of free GPU "
                f"memory (a sample needs {per_sample / gib:.2f} GiB): lower train_pixels or "
                "the model's size"
            )
    elif batch_size > fits:
        raise GpuMemoryError(
            f"batch_size {batch_size} needs about {(batch_size * per_sample) / gib:.1f} GiB of "
            f"GPU memory beside the model, {budget / gib:.1f} GiB are usable: lower batch_size "
            f"to at most {fits}"
        )
    eval_inputs = batch_size * needs.input_bytes_per_sample
    pixel_fits = (budget - eval_inputs) // needs.decode_bytes_per_pixel
    if chunk_pixels is None:
        chunk_pixels = _power_of_two_at_most(min(pixel_fits, MAX_CHUNK_PIXELS))
        if chunk_pixels < MIN_CHUNK_PIXELS:
            raise GpuMemoryError(
                f"batch_size {batch_size} leaves room to decode only {max(pixel_fits, 0)} "
                f"pixels at once in evaluation (at least {MIN_CHUNK_PIXELS} needed): lower "
                "batch_size"
            )
    elif chunk_pixels > pixel_fits:
        raise GpuMemoryError(
            f"chunk_pixels {chunk_pixels} needs about "
            f"{chunk_pixels * needs.decode_bytes_per_pixel / gib:.1f} GiB of GPU memory in "
            f"evaluation, {max(budget - eval_inputs, 0) / gib:.1f} GiB are left beside the "
            f"batch: lower chunk_pixels to at most {max(pixel_fits, 0)} (or batch_size)"
        )
    return MemoryPlan(
        batch_size=batch_size,
        chunk_pixels=chunk_pixels,
        free_bytes=free_bytes,
        budget_bytes=budget,
        train_bytes=batch_size * per_sample,
        eval_bytes=eval_inputs + chunk_pixels * needs.decode_bytes_per_pixel,
    )
