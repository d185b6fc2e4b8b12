"""L2Loader with DataLoader workers: sharding, order, epochs, resume, counters, clean exits.

Workers start with ``forkserver`` here (the server imports once, so a worker starts in well
under a second); ``test_no_worker_left_behind`` uses the default ``spawn``.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import psutil
import pytest
from lightning_fabric.utilities.data import _set_sampler_epoch

from cubestream.errors import LoaderConfigError
from cubestream.stream import L2Dataset, L2Loader, make_loader

FAST = {"multiprocessing_context": "forkserver"}


def order(loader: Any) -> list[list[int]]:
    return [batch["sample"].tolist() for batch in loader]


def test_every_sample_once_over_two_ranks_of_two_workers(store_s4: str) -> None:
    loaders = [
        make_loader(
            store_s4,
            batch_size=3,
            num_workers=2,
            rank=rank,
            world_size=2,
            seed=11,
            chunk_buffer=1,
            variables=["kndvi"],
            **FAST,
        )
        for rank in (0, 1)
    ]
    got = [order(loader) for loader in loaders]
    assert [len(g) for g in got] == [len(loader) for loader in loaders] == [5, 5]
    delivered = Counter(s for ranks in got for batch in ranks for s in batch)
    assert delivered == Counter(range(30))


def test_order_depends_on_seed_and_epoch_only(store_s1: str) -> None:
    options = {"batch_size": 4, "seed": 5, "chunk_buffer": 2, "variables": ["dem"]}
    epochs = {}
    for workers in (0, 1, 2):
        loader = make_loader(
            store_s1, num_workers=workers, persistent_workers=workers > 0, **options, **FAST
        )
        epochs[workers] = [order(loader), order(loader)]  # the second pass plays epoch 1
        assert loader.epoch == 2
        loader.shutdown()
    assert epochs[0] == epochs[1] == epochs[2]
    first, second = epochs[0]
    assert first != second
    assert sorted(s for b in first for s in b) == sorted(s for b in second for s in b)


def test_resume_mid_epoch_yields_exactly_the_rest(store_s4: str) -> None:
    options = {"batch_size": 2, "seed": 3, "chunk_buffer": 1, "variables": ["weather"]}
    full = order(make_loader(store_s4, **options))
    loader = make_loader(store_s4, num_workers=2, **options, **FAST)
    stream = iter(loader)
    head = [next(stream)["sample"].tolist() for _ in range(5)]
    state = loader.state_dict()
    del stream
    assert head == full[:5] and state["batches"] == 5 and state["epoch"] == 0
    resumed = make_loader(store_s4, num_workers=1, **options, **FAST)  # fewer workers: fine
    resumed.load_state_dict(state)
    assert order(resumed) == full[5:]
    assert order(resumed) == _epoch(store_s4, options, 1)  # then the next epoch, whole
    with pytest.raises(LoaderConfigError, match="plans differ"):
        make_loader(store_s4, **{**options, "batch_size": 3}).load_state_dict(state)


def _epoch(store: str, options: dict[str, Any], epoch: int) -> list[list[int]]:
    loader = make_loader(store, **options)
    loader.set_epoch(epoch)
    return order(loader)


def test_a_state_at_the_end_of_an_epoch_resumes_with_the_next(store_s1: str) -> None:
    options = {"batch_size": 6, "seed": 2, "variables": ["dem"]}
    loader = make_loader(store_s1, **options)
    order(loader)
    resumed = make_loader(store_s1, **options)
    resumed.load_state_dict(loader.state_dict())
    assert order(resumed) == _epoch(store_s1, options, 1)


def test_lightning_sets_the_epoch_through_the_sampler(store_s1: str) -> None:
    loader = make_loader(store_s1, batch_size=4, seed=1, variables=["dem"])
    _set_sampler_epoch(loader, 3)
    assert loader.epoch == 3
    plan = loader.l2.plan(3)
    assert order(loader) == [plan.batch(i)[:, 0].tolist() for i in range(plan.n_batches)]


def _workers() -> set[int]:
    """Live descendants of this process that run a DataLoader worker (spawn or forkserver)."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if (
                child.status() != psutil.STATUS_ZOMBIE
                and "from multiprocessing" in " ".join(child.cmdline())
                and "forkserver" not in " ".join(child.cmdline())
            ):
                found.add(child.pid)
        except psutil.Error:
            continue
    return found


def _gone(before: set[int], timeout: float = 20) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := _workers() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def test_no_worker_left_behind_when_iteration_stops_early(store_s1: str) -> None:
    before = _workers()
    loader = make_loader(store_s1, batch_size=2, num_workers=2, variables=["kndvi"])  # spawn
    for _ in loader:
        assert len(_workers() - before) == 2
        break
    assert not _gone(before)
    persistent = make_loader(
        store_s1, batch_size=2, num_workers=1, persistent_workers=True, variables=["kndvi"], **FAST
    )
    next(iter(persistent))
    next(iter(persistent))  # a new pass reuses the worker
    persistent.shutdown()
    assert not _gone(before)


def test_counters_and_memory_cap(store_s4: str) -> None:
    data = L2Dataset(store_s4, batch_size=4, variables=["s2", "kndvi"])
    loader = L2Loader(data, num_workers=1, prefetch_mb=0.001, **FAST)
    assert loader.prefetch_factor == 1
    batches = order(loader)
    stats = loader.stats.as_dict()
    assert stats["batches"] == len(batches) == len(loader) and stats["samples"] == 4 * 8
    assert stats["mb_per_s"] > 0 and stats["samples_per_s"] > 0 and stats["wait_fraction"] > 0
    item = (45 * 9 + 45) * 32 * 32 * 4
    assert loader.batch_nbytes == 4 * item
    assert loader.memory_bound_mb() > loader.batch_nbytes / 1e6
    loader.shutdown()


def test_fork_is_refused(store_s1: str) -> None:
    with pytest.raises(LoaderConfigError, match="forked workers can deadlock"):
        L2Loader(L2Dataset(store_s1), num_workers=1, multiprocessing_context="fork")  # type: ignore[arg-type]


def test_batches_from_reused_worker_slots_keep_their_values(store_s4: str) -> None:
    """Held batches are never overwritten; streamed ones come through reused slots intact."""
    options: dict[str, Any] = {"batch_size": 2, "seed": 3, "variables": ["kndvi", "mask"]}

    def digest(batch: dict[str, Any]) -> tuple[list[int], float, float]:
        return batch["sample"].tolist(), float(batch["kndvi"].sum()), float(batch["mask"].sum())

    in_process = make_loader(store_s4, **options)
    first = [digest(batch) for batch in in_process]
    second = [digest(batch) for batch in in_process]  # epoch 1
    loader = make_loader(store_s4, num_workers=1, persistent_workers=True, **options, **FAST)
    held = [batch for index, batch in enumerate(loader) if index < 2]  # the rest let go
    stream = iter(loader)
    next(stream)  # epoch 1 left early: the batches sent meanwhile never reach us
    del stream
    assert [digest(batch) for batch in loader] == second  # epoch 1 again, through reused slots
    assert [digest(batch) for batch in held] == first[:2]  # held: their slots never reused
    loader.shutdown()
