"""The phases of the loader benchmark: the zarr ceiling, cubestream's loader, xbatcher's loaders.

Private helper of :mod:`benchmarks.loader`. Every phase reads the same variables of the same
store with the same number of decoding threads. A loader makes a warm-up pass (which starts
its persistent workers), then ``passes`` timed passes, each right after a pass of the ceiling
in this process: each loader pass is compared with the ceiling pass just before it, which
keeps the ratios sound on a machine whose load changes from minute to minute.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import zarr
import zarr.api.asynchronous as zarr_async
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync

from benchmarks._memory import MemoryWatch
from cubestream.stream.loader import StartMethod

__all__ = [
    "Phase",
    "ceiling",
    "ceiling_pass",
    "counts",
    "cubestream_loader",
    "threads_env",
    "xbatcher_loader",
]


@dataclass(frozen=True, kw_only=True)
class Phase:
    """What a phase reads: the store, variables, batch size and decoding threads."""

    store: str
    variables: tuple[str, ...]
    batch_size: int
    threads: int
    samples: int
    start_method: StartMethod = "spawn"
    chunk_buffer: int = 4
    passes: int = 2
    steps: tuple[tuple[str, int], ...] = ()
    """Variables read for their leading ``time`` steps only, as ``(name, steps)`` pairs."""

    def region(self, name: str, rows: slice) -> tuple[slice, ...]:
        """The selection of ``rows`` of ``name``: its leading steps only, where asked."""
        steps = dict(self.steps).get(name)
        return (rows,) if steps is None else (rows, slice(0, steps))

    def block(self, name: str, array: Any) -> tuple[int, ...]:
        """The shape of one block of samples of ``name`` as read (its steps only)."""
        shape = (array.chunks[0], *array.shape[1:])
        steps = dict(self.steps).get(name)
        return shape if steps is None else (shape[0], steps, *shape[2:])


def _rate(seconds: float, samples: int, nbytes: int) -> dict[str, float]:
    return {
        "seconds": round(seconds, 3),
        "samples_per_s": round(samples / seconds, 2),
        "mb_per_s": round(nbytes / 1e6 / seconds, 1),
    }


_BUFFERS: dict[tuple[Any, ...], list[list[np.ndarray]]] = {}


def _buffers(phase: Phase, arrays: list[Any], slots: int) -> list[list[np.ndarray]]:
    """The ceiling's decode buffers: made and written once, so no pass pays for fresh pages."""
    key = (phase.store, phase.variables, phase.steps, slots)
    if key not in _BUFFERS:
        _BUFFERS[key] = [
            [
                np.zeros(phase.block(n, a), a.dtype)
                for n, a in zip(phase.variables, arrays, strict=True)
            ]
            for _ in range(slots)
        ]
    return _BUFFERS[key]


def ceiling_pass(phase: Phase, *, reuse: bool = True) -> tuple[float, int]:
    """One pass of zarr alone over every chunk of the variables: ``(seconds, bytes)``.

    Of a variable in ``phase.steps``, only the chunks of its leading steps.

    At most ``2 * threads`` chunks are in flight. With ``reuse`` each read decodes into one of
    that many buffers made before timing (zarr's ``out=``), so nothing is allocated while
    timing: the decoder's own rate. Without, each chunk is read with ``getitem`` into a new
    array, as a user of zarr would.
    """
    slots = 2 * phase.threads
    group = zarr.open_group(phase.store, mode="r")
    buffers = _buffers(phase, [group[name] for name in phase.variables], slots) if reuse else []

    async def run() -> int:
        opened = await zarr_async.open_group(phase.store, mode="r")
        arrays: list[Any] = [await opened.getitem(name) for name in phase.variables]
        free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(slots):
            free.put_nowait(slot)
        prototype = default_buffer_prototype()

        async def one(number: int, array: Any, start: int) -> int:
            slot = await free.get()
            try:
                stop = min(start + array.chunks[0], array.shape[0])
                region = phase.region(phase.variables[number], slice(start, stop))
                if not reuse:
                    return int(np.asarray(await array.getitem(region)).nbytes)
                out = buffers[slot][number][: stop - start]
                view = prototype.nd_buffer.from_numpy_array(out)
                await array.get_orthogonal_selection(region, out=view)
                return int(out.nbytes)
            finally:
                free.put_nowait(slot)

        reads = [
            one(n, a, s) for n, a in enumerate(arrays) for s in range(0, a.shape[0], a.chunks[0])
        ]
        return sum(await asyncio.gather(*reads))

    started = time.perf_counter()
    nbytes = sync(run())
    return time.perf_counter() - started, nbytes


def ceiling(phase: Phase, *, reuse: bool = True) -> dict[str, Any]:
    """The ceiling on its own: a warm-up pass, then ``passes`` timed passes (the fastest kept)."""
    with MemoryWatch() as watch:
        ceiling_pass(phase, reuse=reuse)
        runs = [ceiling_pass(phase, reuse=reuse) for _ in range(phase.passes)]
    seconds, nbytes = min(runs)
    return {
        **_rate(seconds, phase.samples, nbytes),
        "epoch_samples_per_s": round(phase.samples / seconds, 2),
        "seconds_runs": [round(s, 3) for s, _ in runs],
        "reuse_buffers": reuse,
        "bytes": nbytes,
        "memory_mb": watch.summary(),
    }


@contextmanager
def threads_env(per_process: int) -> Iterator[None]:
    """Decoding threads of worker processes: zarr's and dask's, read from the environment."""
    names = ("ZARR_THREADING__MAX_WORKERS", "DASK_NUM_WORKERS")
    old = {name: os.environ.get(name) for name in names}
    os.environ.update(dict.fromkeys(names, str(per_process)))
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _nbytes(batch: Any) -> int:
    if isinstance(batch, dict):
        return sum(_nbytes(v) for v in batch.values())
    if isinstance(batch, list | tuple):
        return sum(_nbytes(v) for v in batch)
    return int(batch.nbytes) if torch.is_tensor(batch) else 0


def _pass(loader: Iterable[Any], count: Callable[[Any], list[int]]) -> tuple[float, list[int], int]:
    started = time.perf_counter()
    samples: list[int] = []
    nbytes = 0
    for batch in loader:
        samples += count(batch)
        nbytes += _nbytes(batch)
    return time.perf_counter() - started, samples, nbytes


def _timed(
    loader: Iterable[Any],
    phase: Phase,
    count: Callable[[Any], list[int]],
    close: Callable[[], None],
) -> dict[str, Any]:
    """A warm-up pass, then ``passes`` pairs (a ceiling pass, a loader pass).

    ``epoch_samples_per_s`` is the store's distinct samples over a pass's seconds (what the
    ceiling measures; ``samples_per_s`` counts what was delivered, repeats included).
    ``ratio`` is the median of each loader pass's epoch rate over the ceiling pass before it.
    """
    with MemoryWatch() as watch:
        first, _, _ = _pass(loader, count)
        pairs = []
        for _ in range(phase.passes):
            reference, _ = ceiling_pass(phase)
            pairs.append((reference, _pass(loader, count)))
        close()
    seconds, samples, nbytes = min((run for _, run in pairs), key=lambda run: run[0])
    ratios = [reference / run[0] for reference, run in pairs]
    return {
        **_rate(seconds, len(samples), nbytes),
        "epoch_samples_per_s": round(phase.samples / seconds, 2),
        "seconds_runs": [round(run[0], 3) for _, run in pairs],
        "ceiling_seconds_runs": [round(reference, 3) for reference, _ in pairs],
        "ratio": round(statistics.median(ratios), 3),
        "ratios": [round(r, 3) for r in ratios],
        "first_pass_seconds": round(first, 3),
        "samples": len(samples),
        "distinct_samples": len(set(samples)),
        "memory_mb": watch.summary(),
    }


def cubestream_loader(phase: Phase, workers: int) -> dict[str, Any]:
    """Time cubestream's loader, shuffled, with ``workers`` DataLoader workers (persistent)."""
    from cubestream.stream import make_loader

    loader = make_loader(
        phase.store,
        variables=phase.variables,
        batch_size=phase.batch_size,
        num_workers=workers,
        persistent_workers=workers > 0,
        multiprocessing_context=phase.start_method,
        threads=phase.threads,
        chunk_buffer=phase.chunk_buffer,
        shuffle=True,
        seed=0,
    )
    out = _timed(loader, phase, lambda b: b["sample"].tolist(), loader.shutdown)
    return {
        **out,
        "prefetch_factor": loader.prefetch_factor,
        "memory_bound_mb": loader.memory_bound_mb(),
        "loader_stats": loader.stats.as_dict(),
    }


def _xbatcher_dataset(phase: Phase, kind: str) -> Any:
    """Make xbatcher's torch dataset over the store, as its documentation builds it."""
    import xarray as xr
    import xbatcher
    import xbatcher.loaders.torch

    ds = xr.open_dataset(phase.store, engine="zarr", chunks={}, consolidated=False)
    x_gen, *rest = [
        xbatcher.BatchGenerator(
            ds[name], input_dims={"sample": phase.batch_size, **_rest(ds[name])}
        )
        for name in phase.variables[:2]
    ]
    y_gen = rest[0] if rest else None
    if kind == "map":
        return xbatcher.loaders.torch.MapDataset(x_gen, y_gen)
    return xbatcher.loaders.torch.IterableDataset(x_gen, y_gen)


def _rest(array: Any) -> dict[str, int]:
    return {str(d): int(s) for d, s in array.sizes.items() if d != "sample"}


def xbatcher_loader(phase: Phase, kind: str, workers: int) -> dict[str, Any]:
    """Time xbatcher's ``MapDataset`` (``shuffle=True``) or ``IterableDataset`` in a DataLoader.

    ``batch_size=None`` (xbatcher makes the batches), ``workers`` persistent workers. The
    iterable dataset does not split its batches among workers: each worker yields all of them.
    """
    import dask

    dataset = _xbatcher_dataset(phase, kind)
    options: dict[str, Any] = {"batch_size": None, "num_workers": workers}
    if kind == "map":
        options["shuffle"] = True
    if workers:
        options |= {"persistent_workers": True, "multiprocessing_context": phase.start_method}
    loader = torch.utils.data.DataLoader(dataset, **options)

    def count(batch: Any) -> list[int]:
        x = batch[0] if isinstance(batch, tuple | list) else batch
        return [-1] * int(x.shape[0])  # xbatcher's batches carry no sample index

    with dask.config.set(scheduler="threads", num_workers=phase.threads):
        out = _timed(loader, phase, count, lambda: None)
    del loader
    return {**out, "distinct_samples": None, "variables": list(phase.variables[:2])}


def counts(store: str, variables: Sequence[str]) -> dict[str, Any]:
    """Chunks and bytes of the variables read (decoded and as stored)."""
    group = zarr.open_group(store, mode="r")
    out: dict[str, Any] = {}
    for name in variables:
        array = group[name]
        assert isinstance(array, zarr.Array)
        out[name] = {
            "chunks": int(np.prod(array.cdata_shape)),
            "chunk_shape": list(array.chunks),
            "decoded_bytes": int(array.nbytes),
            "stored_bytes": int(array.nbytes_stored()),
        }
    return out
