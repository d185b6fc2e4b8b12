"""The order of one epoch: which items each rank delivers, in which batches, read by which worker.

Pure planning, no I/O: :func:`plan_epoch` turns the selected samples of a store, the chunking and
a :class:`ShardSpec` into a :class:`RankPlan`. Every process (the main one and each DataLoader
worker) computes the same plan from the same inputs, so nothing but ``(epoch, start batch, rank,
world size)`` has to travel between them.

The steps (see :mod:`cubestream.stream` for the rules they implement):

1. **Units.** A unit is the block of ``unit`` consecutive samples that one chunk of every
   requested variable covers (the least common multiple of their chunk lengths along
   ``sample``). An item is a ``(sample, patch)`` pair; a unit holds its selected samples times
   the patches per sample.
2. **Chunk shuffle.** The units are permuted by a generator seeded with ``(seed, epoch)``
   (kept in storage order when ``shuffle`` is off).
3. **Buffers.** Consecutive units are grouped into buffers of at least ``chunk_buffer`` units;
   a buffer closes once the items so far fill whole batches, or at ``2 * chunk_buffer`` units.
   The items of a buffer are shuffled with the same generator. This is the one global item
   sequence of the epoch; it does not depend on ranks or workers.
4. **Even ranks.** The sequence is padded (``uneven="pad"``: items of the last buffer repeated)
   or cut (``"drop"``) to ``world_size * n_batches * batch_size`` items, with ``n_batches`` the
   same for every rank and every epoch. Rank ``r`` takes the ``r``-th contiguous range.
5. **Runs.** A rank's batches are cut into runs at the batch boundaries that are also buffer
   boundaries: no unit is needed by two runs. Runs go to DataLoader workers by least load; a
   worker reads each unit of its runs once and yields the runs' batches in order.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from cubestream.errors import LoaderConfigError

__all__ = ["RankPlan", "ShardSpec", "Uneven", "batches_per_rank", "plan_epoch"]

Uneven = Literal["pad", "drop"]
"""What evens the ranks: repeat items of the last buffer (``pad``) or cut the tail (``drop``)."""


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
    """What one rank delivers in one epoch.

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


def _buffers(counts: np.ndarray, order: np.ndarray, spec: ShardSpec) -> list[np.ndarray]:
    """Group the units in ``order`` into buffers (step 3 of the module's description)."""
    buffers, current, filled = [], [], 0
    for position in order.tolist():
        current.append(position)
        filled += int(counts[position])
        whole = filled % spec.batch_size == 0
        if len(current) >= spec.chunk_buffer and (whole or len(current) >= 2 * spec.chunk_buffer):
            buffers.append(np.array(current, np.int64))
            current = []
    if current:
        buffers.append(np.array(current, np.int64))
    return buffers


def _sequence(
    samples: list[np.ndarray], order: np.ndarray, patches: int, spec: ShardSpec, epoch: int
) -> tuple[np.ndarray, np.ndarray]:
    """The global item sequence of the epoch and the buffer of each item."""
    rng = np.random.default_rng([spec.seed, epoch])
    counts = np.array([len(s) * patches for s in samples], np.int64)
    if spec.shuffle:
        order = order[rng.permutation(len(order))]
    parts, owners = [], []
    for number, buffer in enumerate(_buffers(counts, order, spec)):
        chosen = np.concatenate([samples[u] for u in buffer.tolist()])
        items = np.stack(
            [np.repeat(chosen, patches), np.tile(np.arange(patches), len(chosen))], axis=1
        )
        if spec.shuffle:
            items = items[rng.permutation(len(items))]
        parts.append(items)
        owners.append(np.full(len(items), number, np.int64))
    return np.concatenate(parts), np.concatenate(owners)


def _even(items: np.ndarray, buffers: np.ndarray, total: int) -> tuple[np.ndarray, np.ndarray]:
    """Cut or pad the sequence to ``total`` items; padding repeats the last buffer's items."""
    if total <= len(items):
        return items[:total], buffers[:total]
    last = buffers[-1]
    extra = total - len(items)
    pad = np.resize(items[buffers == last], (extra, 2))
    return np.concatenate([items, pad]), np.concatenate([buffers, np.full(extra, last)])


def _runs(buffers: np.ndarray, batch_size: int) -> tuple[tuple[int, int], ...]:
    """Cut a rank's batches where a batch boundary is also a buffer boundary."""
    n_batches = len(buffers) // batch_size
    starts = np.flatnonzero(buffers[1:] != buffers[:-1]) + 1
    cuts = sorted({0, n_batches, *(int(s) // batch_size for s in starts if s % batch_size == 0)})
    return tuple(itertools.pairwise(cuts))


def plan_epoch(
    selected: np.ndarray,
    *,
    unit: int,
    patches: int,
    spec: ShardSpec,
    epoch: int,
    rank: int,
    world_size: int,
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
    if unit < 1 or patches < 1:
        raise LoaderConfigError(f"unit and patches must be positive, not {unit}, {patches}")
    selected = np.asarray(selected, np.int64)
    n_batches = batches_per_rank(len(selected) * patches, world_size, spec.batch_size, spec.uneven)
    if n_batches == 0:
        raise LoaderConfigError(
            f"{len(selected)} samples x {patches} patches do not fill one batch of "
            f"{spec.batch_size} on each of {world_size} ranks; use a smaller batch_size, "
            "uneven='pad' or fewer ranks"
        )
    units, first = np.unique(selected // unit, return_index=True)
    samples = np.split(selected, first[1:])
    items, buffers = _sequence(samples, np.arange(len(units)), patches, spec, epoch)
    per_rank = n_batches * spec.batch_size
    items, buffers = _even(items, buffers, world_size * per_rank)
    mine = slice(rank * per_rank, (rank + 1) * per_rank)
    return RankPlan(
        epoch=epoch,
        rank=rank,
        world_size=world_size,
        batch_size=spec.batch_size,
        items=items[mine],
        buffers=buffers[mine],
        runs=_runs(buffers[mine], spec.batch_size),
        unit=unit,
    )
