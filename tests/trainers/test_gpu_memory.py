"""Batch size and chunk_pixels from the free GPU memory (a fake figure), or a clear error."""

from __future__ import annotations

import pytest
import torch

from benchmarks.gpu_rates import _batch
from trainers.errors import GpuMemoryError
from trainers.gpu_memory import Footprint, footprint, plan_memory
from trainers.models import RNN

GIB = 2**30
NEEDS = Footprint(
    parameters=10_000_000,
    input_bytes_per_sample=50_000_000,
    train_bytes_per_sample=300_000_000,
    decode_bytes_per_pixel=200_000,
)


def test_settings_are_chosen_to_fit() -> None:
    plan = plan_memory(NEEDS, 80 * GIB)
    assert plan.batch_size == 128 and plan.chunk_pixels == 65536  # powers of two that fit
    assert plan.train_bytes + NEEDS.parameters * 16 <= 0.85 * 80 * GIB
    small = plan_memory(NEEDS, 8 * GIB)
    assert small.batch_size == 16 and 1024 <= small.chunk_pixels < 65536
    assert small.eval_bytes <= small.budget_bytes


def test_a_batch_size_that_does_not_fit_names_the_setting() -> None:
    with pytest.raises(GpuMemoryError, match=r"lower batch_size to at most 20"):
        plan_memory(NEEDS, 8 * GIB, batch_size=64)


def test_chunk_pixels_that_do_not_fit_name_the_setting() -> None:
    with pytest.raises(GpuMemoryError, match=r"lower chunk_pixels to at most \d+"):
        plan_memory(NEEDS, 8 * GIB, batch_size=16, chunk_pixels=65536)


def test_too_little_memory_for_the_model_says_what_to_do() -> None:
    with pytest.raises(GpuMemoryError, match="DeepSpeed ZeRO"):
        plan_memory(NEEDS, GIB // 8)
    assert issubclass(GpuMemoryError, MemoryError)


def tiny_rnn() -> RNN:
    return RNN(hidden=16, weather_hidden=8)


def test_the_footprint_is_measured_on_the_cpu() -> None:
    torch.manual_seed(0)
    batch = _batch(2, 32)
    few = footprint(tiny_rnn(), batch, train_pixels=64)
    more = footprint(tiny_rnn(), batch, train_pixels=256)
    assert few.parameters == sum(p.numel() for p in tiny_rnn().parameters())
    assert few.input_bytes_per_sample > 9 * 9 * 32 * 32 * 4  # s2 of the context, float32
    assert 0 < few.train_bytes_per_sample < more.train_bytes_per_sample
    assert few.decode_bytes_per_pixel > 45 * 16 * 4  # at least the GRU's outputs
