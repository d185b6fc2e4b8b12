"""Keep a decoding worker's large allocations in the heap instead of fresh mappings.

Dask's nanny starts each worker with ``MALLOC_TRIM_THRESHOLD_=65536``, which turns off glibc's
dynamic mmap threshold: every allocation over 128 KB then gets a fresh ``mmap`` and is unmapped
when freed, and each page of it is faulted in and zeroed by the kernel when first written. A
level-1 task allocates a few such buffers per COG block (GDAL's block, the decoded run, the
window, the averaging's sums): building 196 cubes of the native tile replica from local paths
on 2 worker processes, the workers spent 12.7 of 36.4 CPU seconds in the kernel, and 4.9-5.4
of 27.7-30.3 with this setting (wall 18.8-20.4 s against 14.9-17.0 s; the same 2 cores).

:func:`keep_large_allocations` raises the mmap threshold to 32 MB (glibc's largest) in the
calling process, once: blocks and runs are then served from the heap and reused. It also
raises the trim threshold from Dask's 64 KB to 64 MB, what glibc itself uses once its dynamic
threshold has grown to 32 MB: with Dask's, every free of a block at the top of the heap gave
its pages back, to be faulted in again by the next block. Decoding tiles from their bytes
(:mod:`cubestream.sources.tiffraw`) allocates one buffer per tile: on 676 cubes of the native
tile replica (2 worker processes, 2 cores), the workers spent 20.2 of 58.7 CPU seconds in the
kernel with Dask's threshold and 11.2 of 42.4 without it. A worker so keeps at most 64 MB of
free heap per malloc arena (one per thread that allocated concurrently). Elsewhere than glibc
it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "keep_large_allocations"]

MMAP_THRESHOLD = 32 * 1024 * 1024
"""Allocations up to this size come from the heap (glibc's ``DEFAULT_MMAP_THRESHOLD_MAX``)."""

TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
"""Free memory at the top of a heap kept for reuse (glibc's dynamic rule: twice the mmap one)."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
"""``mallopt`` parameter numbers (``malloc.h``)."""


@functools.cache
def keep_large_allocations() -> bool:
    """Raise glibc's mmap and trim thresholds (:data:`MMAP_THRESHOLD`, :data:`TRIM_THRESHOLD`).

    In this process, once.

    Returns
    -------
    bool
        Whether it was set (False where the C library is not glibc).
    """
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    mmap = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    return bool(mmap and trim)
