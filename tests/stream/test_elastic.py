"""Elastic resume, planned: a state of N ranks x W workers resumes on M ranks x V workers.

Pure planning over the whole grid (no I/O): rank r of a phase delivers the first ``b`` batches
of its plan, in plan order whatever its workers (the loader reorders them), the state is what
:func:`remaining` leaves, and the next phase plans only that. Across the phases every item of
the epoch is delivered exactly once, the only repeats being the counted padding of a final
round; with ``drop``, the items left out are those the uninterrupted run leaves out.
"""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest

from cubestream.stream import ShardSpec, plan_epoch
from cubestream.stream.shards import EpochOrder, Intervals, phase_batches, phase_todo, remaining

SELECTED = np.setdiff1d(np.arange(64), [3, 17, 18, 40])  # 60 samples, chunks of uneven fill
UNIT, PATCHES, EPOCH = 4, 2, 3  # 120 items
WORKERS = (0, 1, 2, 3)


def _order(spec: ShardSpec) -> EpochOrder:
    return EpochOrder(SELECTED, unit=UNIT, patches=PATCHES, spec=spec, epoch=EPOCH)


def _phase(
    spec: ShardSpec, world: int, todo: Intervals | None, delivered: int | None
) -> tuple[list[tuple[int, int]], int]:
    """Items the ranks of one phase deliver (``delivered`` batches each, all when None).

    Also checks that for every worker count the runs split each rank's batches exactly once.
    Returns the items and the padding among them.
    """
    order, items, pads = _order(spec), [], 0
    phase = phase_todo(todo, order.total, world, spec)
    length = sum(b - a for a, b in phase)
    per = phase_batches(phase, world, spec.batch_size) * spec.batch_size
    for rank in range(world):
        plan = plan_epoch(
            SELECTED,
            unit=UNIT,
            patches=PATCHES,
            spec=spec,
            epoch=EPOCH,
            rank=rank,
            world_size=world,
            todo=todo,
            order=order,
        )
        assert plan.n_batches * spec.batch_size == per
        for workers in WORKERS:
            runs = [plan.runs_of(w, workers) for w in range(max(workers, 1))]
            indices = [i for mine in runs for first, end in mine for i in range(first, end)]
            assert sorted(indices) == list(range(plan.n_batches))
        count = plan.n_batches if delivered is None else min(delivered, plan.n_batches)
        items += [tuple(item) for item in plan.items[: count * spec.batch_size].tolist()]
        pads += max(0, rank * per + count * spec.batch_size - max(length, rank * per))
    return items, pads


def _expected(spec: ShardSpec, world: int) -> set[tuple[int, int]]:
    """The items of an uninterrupted epoch on ``world`` ranks."""
    return set(_phase(spec, world, None, None)[0])


@pytest.mark.parametrize(("saved", "resumed"), list(itertools.product(range(1, 5), range(1, 5))))
@pytest.mark.parametrize("uneven", ["pad", "drop"])
def test_every_item_once_from_n_ranks_to_m_ranks(saved: int, resumed: int, uneven: str) -> None:
    spec = ShardSpec(batch_size=3, seed=7, chunk_buffer=2, uneven=uneven)  # type: ignore[arg-type]
    expected = _expected(spec, saved)
    total = _order(spec).total
    n_batches = phase_batches(phase_todo(None, total, saved, spec), saved, spec.batch_size)
    for stop in sorted({0, 1, n_batches // 3, n_batches // 2, n_batches - 1, n_batches}):
        first, pads_first = _phase(spec, saved, None, stop)
        todo = remaining(phase_todo(None, total, saved, spec), saved, spec.batch_size, stop)
        assert len(todo) <= saved  # small: one interval per rank at most
        second, pads_second = _phase(spec, resumed, todo if stop else None, None)
        got = Counter(first + second)
        want = expected if stop else _expected(spec, resumed)
        assert set(got) == want, f"stop {stop}: lost or foreign items"
        assert sum(got.values()) == len(want) + pads_first + pads_second, f"stop {stop}"
        assert pads_second < resumed * spec.batch_size  # padding: at most one final round


@pytest.mark.parametrize("worlds", [(2, 3, 1), (4, 1, 3), (1, 4, 2), (3, 3, 4)])
def test_every_item_once_over_two_resumes(worlds: tuple[int, int, int]) -> None:
    spec = ShardSpec(batch_size=2, seed=1, chunk_buffer=3, uneven="pad")
    total, todo, delivered, pads = _order(spec).total, None, Counter[tuple[int, int]](), 0
    for world, stop in zip(worlds, (4, 3, None), strict=True):
        items, padding = _phase(spec, world, todo, stop)
        delivered.update(items)
        pads += padding
        if stop is not None:
            phase = phase_todo(todo, total, world, spec)
            todo = remaining(phase, world, spec.batch_size, stop)
            assert len(todo) <= sum(worlds)
    assert set(delivered) == _expected(spec, worlds[0])
    assert sum(delivered.values()) == total + pads


def test_the_same_world_resumes_the_same_batches() -> None:
    spec = ShardSpec(batch_size=3, seed=2, chunk_buffer=2)
    whole = [plan_epoch(SELECTED, unit=UNIT, patches=PATCHES, spec=spec, epoch=EPOCH, rank=r,
                        world_size=3) for r in range(3)]  # fmt: skip
    todo = remaining(phase_todo(None, _order(spec).total, 3, spec), 3, 3, 5)
    for rank, plan in enumerate(whole):
        rest = plan_epoch(SELECTED, unit=UNIT, patches=PATCHES, spec=spec, epoch=EPOCH, rank=rank,
                          world_size=3, todo=todo)  # fmt: skip
        np.testing.assert_array_equal(rest.items, plan.items[5 * 3 :])


def test_a_rank_maps_only_its_own_range() -> None:
    """Rank plans are computed from the buffers they overlap, not from the whole sequence."""
    spec = ShardSpec(batch_size=4, seed=0, chunk_buffer=1)
    order = _order(spec)
    mapped: list[int] = []
    original = order._unshuffled

    def counted(positions: np.ndarray) -> np.ndarray:
        mapped.append(len(positions))
        return original(positions)

    order._unshuffled = counted  # type: ignore[method-assign]
    plan = plan_epoch(SELECTED, unit=UNIT, patches=PATCHES, spec=spec, epoch=EPOCH, rank=3,
                      world_size=6, order=order)  # fmt: skip
    widest = int(np.diff(order.starts).max())
    assert len(plan.items) <= sum(mapped) <= len(plan.items) + 2 * widest < order.total


def test_drop_never_delivers_an_item_the_uninterrupted_run_drops() -> None:
    """The padding of a resumed final round repeats items of the epoch, never dropped ones."""
    for batch_size, saved, resumed in itertools.product(range(2, 9), (2, 3), (1, 4)):
        spec = ShardSpec(batch_size=batch_size, seed=5, chunk_buffer=1, uneven="drop")
        expected = _expected(spec, saved)
        phase = phase_todo(None, _order(spec).total, saved, spec)
        n_batches = phase_batches(phase, saved, batch_size)
        for stop in (1, n_batches - 1):
            first, _ = _phase(spec, saved, None, stop)
            todo = remaining(phase, saved, batch_size, stop)
            second, _ = _phase(spec, resumed, todo, None)
            assert set(first + second) == expected, (batch_size, saved, resumed, stop)
