"""A level-1 worker keeps its large allocations in the heap (glibc's mmap threshold raised)."""

from __future__ import annotations

import platform

import numpy as np
import pytest

from cubestream._malloc import keep_large_allocations


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_the_threshold_is_set_once_and_allocations_still_work() -> None:
    assert keep_large_allocations() is True
    assert keep_large_allocations() is True  # cached: set once per process
    values = np.ones((1024, 1024), dtype=np.uint16)  # 2 MB: now from the heap
    assert int(values.sum()) == 1024 * 1024
