"""The order of one epoch: which items each rank delivers, in which batches, read by which worker.

Pure planning, no I/O: :func:`plan_epoch` turns the selected samples of a store, the chunking and
a :class:`ShardSpec` into a :class:`RankPlan`. Every process (the main one and each DataLoader
worker) computes the same plan from the same inputs, so nothing but ``(epoch, start batch, rank,
world size)`` and, after an elastic resume, a few intervals has to travel between them.

The steps (see :mod:`cubestream.stream` for the rules they implement):

1. **Units.** A unit is the block of ``unit`` consecutive samples that one chunk of every
   requested variable covers (the least common multiple of their chunk lengths along
   ``sample``). An item is a ``(sample, patch)`` pair; a unit holds its selected samples times
   the patches per sample.
2. **Chunk shuffle.** The units are permuted by a generator seeded with ``(seed, epoch)``
   (kept in storage order when ``shuffle`` is off).
3. **Buffers.** Consecutive units are grouped into buffers of at least ``chunk_buffer`` units;
   a buffer closes once the items so far fill whole batches, or at ``2 * chunk_buffer`` units.
   The items of each buffer are shuffled by sorting them on a 64-bit key mixed from
   ``(seed, epoch)`` and the item's position. This is the one global item sequence of the
   epoch (:class:`EpochOrder`); it does not depend on ranks or workers, and any range of it is
   computed from the buffers it overlaps alone.
4. **Even ranks.** What is left of the epoch (all of it, or the intervals an elastic resume
   left, :func:`remaining`) is padded (``uneven="pad"``: items of the last buffer repeated) or,
   for a fresh epoch with ``"drop"``, cut to ``world_size * n_batches * batch_size`` items,
   with ``n_batches`` the same for every rank. Rank ``r`` takes the ``r``-th contiguous range,
   and maps only that range to items.
5. **Runs.** A rank's batches are cut into runs at the batch boundaries that are also buffer
   boundaries: no unit is needed by two runs. Runs go to DataLoader workers by least load; a
   worker reads each unit of its runs once and yields the runs' batches in order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cubestream.errors import LoaderConfigError

__all__ = [
    "EpochOrder",
    "Intervals",
    "RankPlan",
    "ShardSpec",
    "Uneven",
    "batches_per_rank",
    "phase_batches",
    "phase_todo",
    "plan_epoch",
    "remaining",
]

Uneven = Literal["pad", "drop"]
"""What evens the ranks: repeat items of the last buffer (``pad``) or cut the tail (``drop``)."""

Intervals = tuple[tuple[int, int], ...]
"""``[start, end)`` ranges of positions in the epoch's global item sequence, ascending."""


@dataclass(frozen=True, kw_only=True)
class ShardSpec:
    """How an epoch is ordered and cut.

    Attributes
    ----------
    batch_size : int
        Items per batch.
    seed : int
        Seed of the shuffle; the order depends on ``(seed, epoch)`` only.
    shuffle : bool
        Shuffle units and items (training); off keeps storage order (validation, tests).
    chunk_buffer : int
        Units (chunks) whose items are shuffled together; a worker holds one or two decoded
        buffers at a time.
    uneven : {"pad", "drop"}
        How every rank gets the same number of batches.
    """

    batch_size: int
    seed: int = 0
    shuffle: bool = True
    chunk_buffer: int = 4
    uneven: Uneven = "pad"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise LoaderConfigError(f"batch_size must be at least 1, not {self.batch_size}")
        if self.chunk_buffer < 1:
            raise LoaderConfigError(f"chunk_buffer must be at least 1, not {self.chunk_buffer}")
        if self.uneven not in ("pad", "drop"):
            raise LoaderConfigError(f"uneven must be 'pad' or 'drop', not {self.uneven!r}")


@dataclass(frozen=True, eq=False)
class RankPlan:
    """What one rank delivers in one epoch (or in the part of it left after a resume).

    Attributes
    ----------
    epoch, rank, world_size, batch_size : int
        What the plan is for.
    items : numpy.ndarray
        ``(n_batches * batch_size, 2)`` int64: ``(sample, patch)`` of each item, in order.
    buffers : numpy.ndarray
        Global buffer number of each item (the chunk buffer its unit belongs to).
    runs : tuple of (int, int)
        ``[first, end)`` batch ranges that share no unit with each other.
    unit : int
        Samples per unit.
    """

    epoch: int
    rank: int
    world_size: int
    batch_size: int
    items: np.ndarray
    buffers: np.ndarray
    runs: tuple[tuple[int, int], ...]
    unit: int

    @property
    def n_batches(self) -> int:
        """Batches of this rank in this epoch."""
        return len(self.items) // self.batch_size

    def batch(self, index: int) -> np.ndarray:
        """The ``(sample, patch)`` items of batch ``index``."""
        return self.items[index * self.batch_size : (index + 1) * self.batch_size]

    def owners(self, num_workers: int) -> tuple[int, ...]:
        """Worker of each run: the next run goes to the worker with the fewest batches so far."""
        loads = [0] * max(num_workers, 1)
        owners = []
        for first, end in self.runs:
            worker = loads.index(min(loads))
            owners.append(worker)
            loads[worker] += end - first
        return tuple(owners)

    def runs_of(self, worker: int, num_workers: int) -> list[tuple[int, int]]:
        """The runs worker ``worker`` of ``num_workers`` reads, in order."""
        owners = self.owners(num_workers)
        return [run for run, owner in zip(self.runs, owners, strict=True) if owner == worker]

    def units_of(self, positions: slice) -> dict[int, np.ndarray]:
        """Units needed by the items at ``positions``, by buffer, buffers in order."""
        buffers = self.buffers[positions]
        units = self.items[positions, 0] // self.unit
        out: dict[int, np.ndarray] = {}
        for buffer in dict.fromkeys(buffers.tolist()):
            out[buffer] = np.unique(units[buffers == buffer])
        return out


def batches_per_rank(items: int, world_size: int, batch_size: int, uneven: Uneven) -> int:
    """Batches each rank delivers per epoch when the store holds ``items`` selected items.

    ``pad``: enough for every item (``ceil``); ``drop``: only whole batches (``floor``).
    """
    per_round = world_size * batch_size
    return math.ceil(items / per_round) if uneven == "pad" else items // per_round


def _closes(counts: np.ndarray, spec: ShardSpec) -> np.ndarray:
    """Where buffers end: positions (in epoch order) after which a buffer closes (step 3).

    A buffer that starts at ``c`` closes after the first ``p >= c + chunk_buffer - 1`` where
    the items so far fill whole batches, or at ``p = c + 2 * chunk_buffer - 1``: one step per
    buffer, with the next whole position looked up.
    """
    n, size = len(counts), spec.chunk_buffer
    whole = np.cumsum(counts) % spec.batch_size == 0
    candidates = np.where(whole, np.arange(n), n)
    next_whole = np.minimum.accumulate(candidates[::-1])[::-1].tolist()
    closes, start = [], 0
    while start < n:
        first = start + size - 1
        close = n if first >= n else min(next_whole[first] + 1, first + size + 1, n)
        closes.append(close)
        start = close
    return np.array(closes, np.int64)


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64 of each value: a well-mixed 64-bit key, computed item by item."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class EpochOrder:
    """The global item sequence of one epoch, computed range by range (steps 1 to 3).

    Building it costs O(units); :meth:`items` then computes a range of the sequence from the
    buffers it overlaps only (vectorised, O(items log items)), so a rank never materialises
    the other ranks' items. Within a buffer, items are ordered by a 64-bit key mixed from the
    epoch's seed and the item's position: a permutation of each buffer that needs no other.

    Parameters
    ----------
    selected : numpy.ndarray
        Indices of the samples to deliver, ascending.
    unit, patches : int
        Samples per unit and patches per sample.
    spec : ShardSpec
        Seed, shuffle and buffer size.
    epoch : int
        Which epoch.
    """

    def __init__(
        self, selected: np.ndarray, *, unit: int, patches: int, spec: ShardSpec, epoch: int
    ) -> None:
        if unit < 1 or patches < 1:
            raise LoaderConfigError(f"unit and patches must be positive, not {unit}, {patches}")
        self.selected = np.asarray(selected, np.int64)
        self.patches, self.spec, self.epoch = patches, spec, epoch
        units, first = np.unique(self.selected // unit, return_index=True)
        self._first = np.append(first, len(self.selected)).astype(np.int64)
        counts = np.diff(self._first) * patches
        order = np.arange(len(units), dtype=np.int64)
        rng = np.random.default_rng([spec.seed, epoch])
        if spec.shuffle:
            order = rng.permutation(len(units))
        self._base = np.uint64(rng.integers(0, 2**63))
        self._order = order
        self._cumulative = np.concatenate([[0], np.cumsum(counts[order])]).astype(np.int64)
        closes = _closes(counts[order], spec)
        self.starts = self._cumulative[np.concatenate([[0], closes]).astype(np.int64)]
        """Position of each buffer's first item; the last entry is :attr:`total`."""

    @property
    def total(self) -> int:
        """Items in the epoch."""
        return int(self.starts[-1])

    def buffer_of(self, position: int) -> int:
        """The buffer holding the item at ``position``."""
        return int(np.searchsorted(self.starts, position, side="right") - 1)

    def buffer_items(self, buffer: int) -> np.ndarray:
        """The ``(sample, patch)`` items of ``buffer`` in their shuffled order."""
        return self.items(int(self.starts[buffer]), int(self.starts[buffer + 1]))[0]

    def _unshuffled(self, positions: np.ndarray) -> np.ndarray:
        """Items at ``positions`` of the units in epoch order, before the buffers' shuffle."""
        rank = np.searchsorted(self._cumulative, positions, side="right") - 1
        offset = positions - self._cumulative[rank]
        rows = self._first[self._order[rank]] + offset // self.patches
        return np.stack([self.selected[rows], offset % self.patches], axis=1)

    def items(self, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
        """Items at positions ``[start, end)`` and the buffer of each."""
        if end <= start:
            return np.empty((0, 2), np.int64), np.empty(0, np.int64)
        lo = int(self.starts[self.buffer_of(start)])
        hi = int(self.starts[self.buffer_of(end - 1) + 1])
        positions = np.arange(lo, hi, dtype=np.int64)
        buffers = np.searchsorted(self.starts, positions, side="right") - 1
        items = self._unshuffled(positions)
        if self.spec.shuffle:
            keys = _mix(positions.astype(np.uint64) ^ self._base)
            items = items[np.lexsort((keys, buffers))]
        return items[start - lo : end - lo], buffers[start - lo : end - lo]


def _length(todo: Intervals) -> int:
    return sum(end - start for start, end in todo)


def _select(todo: Intervals, lo: int, hi: int) -> Intervals:
    """Positions ``[lo, hi)`` of the concatenation of ``todo``, as intervals of the sequence."""
    out, offset = [], 0
    for start, end in todo:
        a, b = max(lo - offset, 0), min(hi - offset, end - start)
        if a < b:
            out.append((start + a, start + b))
        offset += end - start
    return tuple(out)


def _merge(intervals: Sequence[tuple[int, int]]) -> Intervals:
    out: list[tuple[int, int]] = []
    for start, end in intervals:
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        elif end > start:
            out.append((start, end))
    return tuple(out)


def phase_todo(todo: Intervals | None, total: int, world_size: int, spec: ShardSpec) -> Intervals:
    """What a phase delivers: ``todo``, or a fresh epoch's ``total`` items (cut by ``drop``)."""
    if todo is not None:
        return _merge(todo)
    if spec.uneven == "drop":
        total = batches_per_rank(total, world_size, spec.batch_size, "drop")
        total *= world_size * spec.batch_size
    return _merge([(0, total)])


def phase_batches(todo: Intervals, world_size: int, batch_size: int) -> int:
    """Batches per rank that deliver the items of ``todo``, the final round padded."""
    return math.ceil(_length(todo) / (world_size * batch_size))


def remaining(todo: Intervals, world_size: int, batch_size: int, delivered: int) -> Intervals:
    """What is left of ``todo`` after each of ``world_size`` ranks delivered ``delivered`` batches.

    Rank ``r`` of a phase delivers the ``r``-th range of ``phase_batches * batch_size``
    positions of ``todo`` (padding beyond its end); what each rank has not yet delivered is the
    tail of its range. Pure interval arithmetic: at most ``len(todo) + world_size`` intervals.
    """
    per = phase_batches(todo, world_size, batch_size) * batch_size
    done = min(delivered * batch_size, per)
    left = [_select(todo, r * per + done, (r + 1) * per) for r in range(world_size)]
    return _merge([interval for part in left for interval in part])


def plan_epoch(
    selected: np.ndarray,
    *,
    unit: int,
    patches: int,
    spec: ShardSpec,
    epoch: int,
    rank: int,
    world_size: int,
    todo: Intervals | None = None,
    order: EpochOrder | None = None,
) -> RankPlan:
    """Plan what rank ``rank`` of ``world_size`` delivers in ``epoch``.

    Parameters
    ----------
    selected : numpy.ndarray
        Indices of the samples to deliver (split and filters applied), ascending.
    unit : int
        Samples per unit (chunk length along ``sample``).
    patches : int
        Patches per sample.
    spec : ShardSpec
        Batch size, seed, shuffle, buffer and uneven policy.
    epoch, rank, world_size : int
        Which epoch and which rank.
    todo : Intervals, optional
        Positions of the epoch's sequence still to deliver (after an elastic resume: see
        :func:`remaining`); the whole epoch when None. Its final round is padded, whatever
        ``uneven``, so that every item left is delivered.
    order : EpochOrder, optional
        The epoch's order, if already built from the same inputs.

    Returns
    -------
    RankPlan

    Raises
    ------
    LoaderConfigError
        If the rank is out of range or there is not one batch per rank.
    """
    if world_size < 1 or not 0 <= rank < world_size:
        raise LoaderConfigError(f"rank {rank} is not in 0..{world_size - 1} (world_size)")
    if order is None:
        order = EpochOrder(selected, unit=unit, patches=patches, spec=spec, epoch=epoch)
    phase = phase_todo(todo, order.total, world_size, spec)
    n_batches = phase_batches(phase, world_size, spec.batch_size)
    if n_batches == 0 and todo is None:
        raise LoaderConfigError(
            f"{len(order.selected)} samples x {patches} patches do not fill one batch of "
            f"{spec.batch_size} on each of {world_size} ranks; use a smaller batch_size, "
            "uneven='pad' or fewer ranks"
        )
    per, length = n_batches * spec.batch_size, _length(phase)
    parts = [order.items(a, b) for a, b in _select(phase, rank * per, (rank + 1) * per)]
    pads = (rank + 1) * per - max(length, rank * per)
    if pads > 0:
        end = phase[-1][1]  # repeat the last buffer's items, none past the phase's end
        last = order.buffer_of(end - 1)
        fill = order.buffer_items(last)[: end - int(order.starts[last])]
        first = max(length, rank * per) - length
        taken = np.arange(first, first + pads) % len(fill)
        parts.append((fill[taken], np.full(pads, last, np.int64)))
    items = np.concatenate([np.empty((0, 2), np.int64), *(p[0] for p in parts)])
    buffers = np.concatenate([np.empty(0, np.int64), *(p[1] for p in parts)])
    return RankPlan(
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        batch_size=spec.batch_size,
        items=items,
        buffers=buffers,
        runs=_runs(buffers, spec.batch_size),
        unit=unit,
    )


def _runs(buffers: np.ndarray, batch_size: int) -> tuple[tuple[int, int], ...]:
    """Cut a rank's batches where a batch boundary is also a buffer boundary."""
    n_batches = len(buffers) // batch_size
    starts = np.flatnonzero(buffers[1:] != buffers[:-1]) + 1
    cuts = sorted({0, n_batches, *(int(s) // batch_size for s in starts if s % batch_size == 0)})
    return tuple(itertools.pairwise(cuts))
