"""The unit of work of the Sentinel-2 part of a tile: one read chunk, cut into its boxes, written.

A read chunk holds the items of one time chunk over one COG block (1024 px: 8 x 8 boxes).
:func:`plan_blocks` lists, purely, the read chunks under some box whose chunks are still missing,
and which boxes each one writes. One task then reads its chunk and writes every box under it:
:func:`read_and_write` (the default ``rasterio`` reader) reads the chunk's item x asset boxes
(:meth:`BlockTask.regions`, placed in the span of its boxes: :meth:`BlockTask.span`), each COG
block under them once and no other, on a thread pool straight into one array of one slice per box
(:mod:`cubestream.sources.cogread`), then fuses and writes the boxes on the same pool; the
``stackstac`` reader hands a whole-block chunk of :func:`cubestream.l1.sentinel2.tile_stacks`
to :func:`write_reflectance` or :func:`write_scl`. Either way:

- each COG block of each item is fetched once per build, by one task;
- no pixel moves between workers: a task's only input is its own read;
- a worker holds at most one read chunk per Dask thread (the items of one time chunk x 9 bands
  x its boxes, 0.29 MB per box and item; with the ``stackstac`` reader the whole block, 19 MB
  per item at 1024 px), the COG blocks of two block rows per reading thread, and one fused box
  per reading thread (the days of one time chunk x 9 bands x 128 x 128 uint16, 4.7 MB at 16
  days). The ``rasterio`` reader reads into one buffer per Dask thread, kept from task to task
  at the size of the largest chunk so far
  (:class:`~cubestream.sources.cogread.ReadBuffer`): a new chunk of hundreds of MB
  per task had the kernel zero every page of it again;
- every box's chunk is written, one with no data too: a chunk that exists is the resume state.

Reading one item per chunk and letting each box gather its items from many chunks (the design
before this one) made Dask hold and move gigabytes of shared chunks on 90 cubes, and the build
stalled.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import zarr

from cubestream._malloc import keep_large_allocations
from cubestream.l1.plan import TilePlan
from cubestream.l1.sentinel2 import BOX, fuse_days, remove_offset
from cubestream.sources.cogread import ReadBuffer, WindowRead, read_threads, read_windows
from cubestream.storage import zarr_store

__all__ = [
    "BlockTask",
    "TimeChunk",
    "chunk_items",
    "plan_blocks",
    "read_and_write",
    "time_chunk",
    "write_reflectance",
    "write_scl",
]


@dataclass(frozen=True)
class BlockTask:
    """One read chunk and the boxes it writes.

    Attributes
    ----------
    t : int
        Time chunk.
    by, bx : int
        Read block row and column on the tile's grid.
    boxes : tuple of (int, int, int)
        ``(cube, y0, x0)``: the cube's index in the tile's group and the box's upper-left pixel
        inside the read chunk.
    """

    t: int
    by: int
    bx: int
    boxes: tuple[tuple[int, int, int], ...]

    def span(self) -> tuple[int, int, int, int]:
        """``(y0, x0, height, width)``: the smallest window of the read block holding the boxes."""
        ys = [y0 for _, y0, _ in self.boxes]
        xs = [x0 for _, _, x0 in self.boxes]
        y0, x0 = min(ys), min(xs)
        return y0, x0, max(ys) + BOX - y0, max(xs) + BOX - x0

    def regions(self) -> tuple[tuple[int, int, int, int], ...]:
        """``(y0, x0, height, width)`` of each box inside the :meth:`span`: what the task reads."""
        return tuple((y, x, BOX, BOX) for _, y, x in self.cropped().boxes)

    def cropped(self) -> BlockTask:
        """The task with its boxes placed inside its :meth:`span` instead of the read block."""
        y0, x0, _, _ = self.span()
        boxes = tuple((c, y - y0, x - x0) for c, y, x in self.boxes)
        return replace(self, boxes=boxes)


@dataclass(frozen=True)
class TimeChunk:
    """What fusing the items of one time chunk needs.

    Attributes
    ----------
    index : int
        Time chunk.
    days : slice
        The chunk's days in the group's ``time``.
    item_day : ndarray of int
        Day of each item of the chunk, counted from the chunk's first day.
    offsets : ndarray of int
        DN offset of each item.
    """

    index: int
    days: slice
    item_day: np.ndarray
    offsets: np.ndarray


_BUFFERS = threading.local()
"""One :class:`ReadBuffer` per thread that runs :func:`read_and_write` (a Dask thread)."""


def _thread_buffer() -> ReadBuffer:
    buffer: ReadBuffer | None = getattr(_BUFFERS, "buffer", None)
    if buffer is None:
        buffer = _BUFFERS.buffer = ReadBuffer()
    return buffer


def chunk_items(plan: TilePlan, t: int) -> slice:
    """The slice of ``plan.items`` of time chunk ``t``."""
    starts = np.cumsum((0, *plan.item_chunks))
    return slice(int(starts[t]), int(starts[t + 1]))


def time_chunk(plan: TilePlan, t: int, offsets: bool) -> TimeChunk:
    """The items of time chunk ``t`` of ``plan``; ``offsets=False`` for SCL (classes)."""
    items = chunk_items(plan, t)
    first = t * plan.days_per_chunk
    item_offsets = (
        np.asarray(plan.offsets[items]) if offsets else np.zeros(items.stop - items.start)
    )
    return TimeChunk(
        index=t,
        days=slice(first, first + plan.day_chunks[t]),
        item_day=np.asarray(plan.item_day[items]) - first,
        offsets=item_offsets.astype(int),
    )


def plan_blocks(
    plan: TilePlan, block: int, missing: set[tuple[int, int]] | None = None
) -> list[BlockTask]:
    """The read chunks of ``plan`` that write some box, each with its boxes.

    Parameters
    ----------
    plan : TilePlan
        The tile.
    block : int
        Read chunk side (px), a multiple of the box side.
    missing : set of (int, int), optional
        ``(cube, time chunk)`` pairs still to write; all of them by default.
    """
    tasks: dict[tuple[int, int, int], list[tuple[int, int, int]]] = {}
    rows, cols = plan.cubes["row"].to_numpy(), plan.cubes["col"].to_numpy()
    for t in range(len(plan.day_chunks)):
        for c, (row, col) in enumerate(zip(rows, cols, strict=True)):
            if missing is not None and (c, t) not in missing:
                continue
            y, x = int(row) * BOX, int(col) * BOX
            key = (t, y // block, x // block)
            tasks.setdefault(key, []).append((c, y % block, x % block))
    return [BlockTask(t, by, bx, tuple(boxes)) for (t, by, bx), boxes in sorted(tasks.items())]


def _array(url: str, storage_options: dict[str, Any] | None, path: str) -> Any:
    """The array ``path`` for writing; every chunk written, all-fill ones too (the template's).

    A chunk that exists is the resume state (:mod:`cubestream.l1.store`), and zarr's test of a
    chunk against the fill value costs a pass over it.
    """
    store = zarr_store(url, storage_options, mode="r+")
    array = zarr.open_array(store, path=path, mode="r+", zarr_format=3)
    return array.with_config({"write_empty_chunks": True})


def _fused_box(
    chunk: np.ndarray, index: int, box: tuple[int, int, int], times: TimeChunk
) -> tuple[int, np.ndarray]:
    """Box ``index`` of a read ``chunk``, its days fused: ``(cube, array)``.

    ``chunk`` is ``(item, asset, y, x)``, the box cut at its place; or ``(item, asset, box, y,
    x)``, one array per box (what :func:`read_and_write` reads).
    """
    c, y0, x0 = box
    n_days = times.days.stop - times.days.start
    cut = chunk[:, :, index] if chunk.ndim == 5 else chunk[:, :, y0 : y0 + BOX, x0 : x0 + BOX]
    return c, fuse_days(cut, times.item_day, times.offsets, n_days)


def _each_box(write: Callable[[int], None], boxes: int, pool: ThreadPoolExecutor | None) -> None:
    """``write(index)`` every box, on ``pool`` when given (zarr encodes with the GIL released)."""
    if pool is None:
        for index in range(boxes):
            write(index)
    else:
        list(pool.map(write, range(boxes)))


def write_reflectance(
    chunk: np.ndarray,
    task: BlockTask,
    times: TimeChunk,
    url: str,
    storage_options: dict[str, Any] | None,
    tile: str,
    pool: ThreadPoolExecutor | None = None,
) -> int:
    """Fuse and write ``s2`` of every box of ``task`` from its read ``chunk``; return chunks."""
    s2 = _array(url, storage_options, f"{tile}/s2")

    def write(index: int) -> None:
        c, fused = _fused_box(chunk, index, task.boxes[index], times)
        s2[c : c + 1, times.days] = fused[None]

    _each_box(write, len(task.boxes), pool)
    return len(task.boxes)


def write_scl(
    chunk: np.ndarray,
    task: BlockTask,
    times: TimeChunk,
    url: str,
    storage_options: dict[str, Any] | None,
    tile: str,
    pool: ThreadPoolExecutor | None = None,
) -> int:
    """Fuse and write ``scl`` and ``data_fraction`` of every box of ``task``; return chunks."""
    scl = _array(url, storage_options, f"{tile}/scl")
    fraction = _array(url, storage_options, f"{tile}/data_fraction")

    def write(index: int) -> None:
        c, fused = _fused_box(chunk, index, task.boxes[index], times)
        classes = fused[:, 0]
        scl[c : c + 1, times.days] = classes[None]
        fraction[c : c + 1, times.days] = (classes > 0).mean(axis=(1, 2), dtype=np.float32)[None]

    _each_box(write, len(task.boxes), pool)
    return 2 * len(task.boxes)


def read_and_write(
    read: WindowRead,
    task: BlockTask,
    times: TimeChunk,
    url: str,
    storage_options: dict[str, Any] | None,
    tile: str,
    gdal: dict[str, str],
    threads: int | None = None,
) -> int:
    """Read one chunk with plain rasterio, then fuse and write its boxes; return chunks.

    ``read`` covers the window of ``task``'s boxes (:meth:`BlockTask.span`) and reads only
    the boxes (its parts, :meth:`BlockTask.regions`): the chunk holds one array per box, in the
    order of ``task.boxes``.

    One thread pool of :func:`~cubestream.sources.cogread.read_threads` threads does both:
    the item x asset reads (each item's DN offset removed in place by the thread that read it),
    then the boxes' fusion and encoding. The task holds one read chunk (the items of one time
    chunk x its assets x its boxes), in the calling thread's
    :class:`~cubestream.sources.cogread.ReadBuffer`, and one fused
    box per thread. The worker's large allocations are kept in its heap
    (:func:`cubestream._malloc.keep_large_allocations`).
    """
    keep_large_allocations()
    reflectance = read.dtype == "uint16"
    offsets = times.offsets

    def unshift(item: int, asset: int, values: np.ndarray) -> None:
        remove_offset(values, int(offsets[item]))

    plain = replace(times, offsets=np.zeros_like(times.offsets))
    write = write_reflectance if reflectance else write_scl
    workers = read_threads(threads)
    with ThreadPoolExecutor(workers, thread_name_prefix="l1-block") as pool:
        chunk = read_windows(
            read,
            gdal,
            threads=workers,
            pool=pool,
            post=unshift if reflectance else None,
            out=_thread_buffer().take(read.shape, read.dtype),
        )
        return write(chunk, task.cropped(), plain, url, storage_options, tile, pool=pool)
