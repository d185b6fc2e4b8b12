"""The epoch plan: coverage, equal ranks, runs that share no chunk, order from (seed, epoch)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from cubestream.errors import LoaderConfigError
from cubestream.stream import RankPlan, ShardSpec, batches_per_rank, plan_epoch


def plans(
    selected: np.ndarray, world: int, *, unit: int = 4, patches: int = 1, epoch: int = 0, **spec
) -> list[RankPlan]:
    shard = ShardSpec(**{"batch_size": 4, "seed": 3, **spec})
    return [
        plan_epoch(
            selected, unit=unit, patches=patches, spec=shard, epoch=epoch, rank=r, world_size=world
        )
        for r in range(world)
    ]


def delivered(ranks: list[RankPlan]) -> list[tuple[int, int]]:
    return [tuple(item) for plan in ranks for item in plan.items.tolist()]


@pytest.mark.parametrize("unit", [1, 4, 3])
@pytest.mark.parametrize("patches", [1, 3])
def test_every_item_once_over_ranks_when_divisible(unit: int, patches: int) -> None:
    selected = np.arange(48)
    ranks = plans(selected, 3, unit=unit, patches=patches)
    expected = {(s, p) for s in range(48) for p in range(patches)}
    assert Counter(delivered(ranks)) == Counter(expected)
    assert {plan.n_batches for plan in ranks} == {48 * patches // 12}


@pytest.mark.parametrize("uneven", ["pad", "drop"])
def test_ranks_get_equal_batch_counts_that_do_not_change_with_the_epoch(uneven: str) -> None:
    selected = np.array([0, 1, 2, 5, 6, 9, 10, 11, 12, 13, 17, 21, 22, 25, 30, 31, 33])  # 17
    counts = set()
    for epoch in range(4):
        ranks = plans(selected, 2, epoch=epoch, uneven=uneven, batch_size=3)
        counts |= {plan.n_batches for plan in ranks}
        items = Counter(s for s, _ in delivered(ranks))
        if uneven == "pad":
            assert set(items) == set(selected.tolist())  # every sample, a few twice
            assert sum(items.values()) == 2 * 3 * 3
        else:
            assert max(items.values()) == 1 and len(items) == 2 * 2 * 3
    assert counts == {batches_per_rank(17, 2, 3, uneven)}  # type: ignore[arg-type]


def test_same_seed_and_epoch_same_order_next_epoch_another() -> None:
    selected = np.arange(40)
    first = delivered(plans(selected, 2, epoch=5))
    assert first == delivered(plans(selected, 2, epoch=5))
    assert first != delivered(plans(selected, 2, epoch=6))
    assert first != delivered(plans(selected, 2, epoch=5, seed=4))
    assert sorted(first) == sorted(delivered(plans(selected, 2, epoch=6)))


def test_without_shuffle_storage_order() -> None:
    selected = np.arange(0, 48, 3)  # 16 items: two ranks of two batches of 4
    assert [s for s, _ in delivered(plans(selected, 2, shuffle=False))] == selected.tolist()


def test_a_chunk_is_read_by_one_run_and_each_worker_reads_it_once() -> None:
    selected = np.setdiff1d(np.arange(64), [3, 17, 18, 40])  # filtered: uneven chunks
    for plan in plans(selected, 2, unit=4, batch_size=6, chunk_buffer=2):
        size = plan.batch_size
        read = Counter()
        for first, end in plan.runs:
            for units in plan.units_of(slice(first * size, end * size)).values():
                read.update(units.tolist())
        assert max(read.values()) == 1
        assert sum(end - first for first, end in plan.runs) == plan.n_batches
        for workers in (1, 2, 3):
            runs = [r for w in range(workers) for r in plan.runs_of(w, workers)]
            assert sorted(runs) == list(plan.runs)


def test_shuffle_is_chunk_aware() -> None:
    """Consecutive items come from a bounded window of chunks, not from anywhere."""
    selected = np.arange(256)
    (plan,) = plans(selected, 1, unit=4, batch_size=8, chunk_buffer=2)
    for index in range(plan.n_batches):
        chunks = set((plan.batch(index)[:, 0] // 4).tolist())
        assert len(chunks) <= 4  # one buffer: 2 chunks (or 2 buffers across a boundary)
    assert len(plan.runs) == plan.n_batches  # 2 chunks x 4 samples = one batch per buffer


def test_not_one_batch_per_rank() -> None:
    with pytest.raises(LoaderConfigError, match="do not fill one batch"):
        plans(np.arange(5), 2, uneven="drop")
    with pytest.raises(LoaderConfigError, match=r"rank 2 is not in 0\.\.1"):
        plan_epoch(
            np.arange(8),
            unit=1,
            patches=1,
            spec=ShardSpec(batch_size=2),
            epoch=0,
            rank=2,
            world_size=2,
        )
