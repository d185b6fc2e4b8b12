"""The unit of work of the Sentinel-2 part of a tile: one read chunk, cut into its boxes, written.

A read chunk of :func:`cubestream.l1.sentinel2.tile_stacks` holds the items of one time chunk
over one COG block (1024 px: 8 x 8 boxes). :func:`plan_blocks` lists, purely, the read chunks
under some box whose chunks are still missing, and which boxes each one writes. One task then
reads its chunk and writes every box under it (:func:`write_reflectance`, :func:`write_scl`), so
that:

- each COG block of each item is fetched once per build, by one task;
- no pixel moves between workers: a task's only input is its own read;
- a worker holds at most one read chunk per thread (the items of one time chunk x 9 bands x
  1024 x 1024 uint16, 19 MB per item) until its boxes are written.

Reading one item per chunk and letting each box gather its items from many chunks (the design
before this one) made Dask hold and move gigabytes of shared chunks on 90 cubes, and the build
stalled.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from cubestream.l1.plan import TilePlan
from cubestream.l1.sentinel2 import BOX, fuse_days

__all__ = ["BlockTask", "TimeChunk", "plan_blocks", "time_chunk", "write_reflectance", "write_scl"]


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


def time_chunk(plan: TilePlan, t: int, offsets: bool) -> TimeChunk:
    """The items of time chunk ``t`` of ``plan``; ``offsets=False`` for SCL (classes)."""
    starts = np.cumsum((0, *plan.item_chunks))
    items = slice(int(starts[t]), int(starts[t + 1]))
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
    return zarr.open_array(
        url, path=path, mode="r+", zarr_format=3, storage_options=storage_options
    )


def _fused_boxes(
    chunk: np.ndarray, task: BlockTask, times: TimeChunk
) -> Iterator[tuple[int, np.ndarray]]:
    """Each box of ``task`` cut from its read ``chunk``, its days fused: ``(cube, array)``."""
    n_days = times.days.stop - times.days.start
    for c, y0, x0 in task.boxes:
        box = chunk[:, :, y0 : y0 + BOX, x0 : x0 + BOX]
        yield c, fuse_days(box, times.item_day, times.offsets, n_days)


def write_reflectance(
    chunk: np.ndarray,
    task: BlockTask,
    times: TimeChunk,
    url: str,
    storage_options: dict[str, Any] | None,
    tile: str,
) -> int:
    """Fuse and write ``s2`` of every box of ``task`` from its read ``chunk``; return chunks."""
    s2 = _array(url, storage_options, f"{tile}/s2")
    for c, fused in _fused_boxes(chunk, task, times):
        s2[c : c + 1, times.days] = fused[None]
    return len(task.boxes)


def write_scl(
    chunk: np.ndarray,
    task: BlockTask,
    times: TimeChunk,
    url: str,
    storage_options: dict[str, Any] | None,
    tile: str,
) -> int:
    """Fuse and write ``scl`` and ``data_fraction`` of every box of ``task``; return chunks."""
    scl = _array(url, storage_options, f"{tile}/scl")
    fraction = _array(url, storage_options, f"{tile}/data_fraction")
    for c, fused in _fused_boxes(chunk, task, times):
        classes = fused[:, 0]
        scl[c : c + 1, times.days] = classes[None]
        fraction[c : c + 1, times.days] = (classes > 0).mean(axis=(1, 2), dtype=np.float32)[None]
    return 2 * len(task.boxes)
