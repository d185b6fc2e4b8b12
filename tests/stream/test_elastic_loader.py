"""Elastic resume end to end: loaders with real DataLoader workers stop, save, resume elsewhere.

Ranks are simulated in one process (``rank``/``world_size`` given); workers start with
``forkserver`` as in ``test_l2loader``.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from cubestream.errors import LoaderConfigError
from cubestream.stream import L2Loader, make_loader

OPTIONS: dict[str, Any] = {
    "batch_size": 2,
    "seed": 9,
    "chunk_buffer": 1,
    "variables": ["weather"],
    "multiprocessing_context": "forkserver",
}


def _loaders(store: str, world: int, workers: int) -> list[L2Loader]:
    return [
        make_loader(store, rank=r, world_size=world, num_workers=workers, **OPTIONS)
        for r in range(world)
    ]


def _samples(batches: list[dict[str, Any]]) -> list[int]:
    return [s for batch in batches for s in batch["sample"].tolist()]


@pytest.mark.parametrize(("saved", "resumed"), [((2, 2), (3, 1)), ((3, 1), (1, 2))])
def test_a_state_of_n_ranks_resumes_on_m_ranks_every_sample_once(
    store_s4: str, saved: tuple[int, int], resumed: tuple[int, int]
) -> None:
    first = _loaders(store_s4, *saved)
    delivered: list[int] = []
    for loader in first:
        stream = iter(loader)
        delivered += _samples([next(stream) for _ in range(2)])
        del stream
        loader.shutdown()
    states = [loader.state_dict() for loader in first]
    assert all(state == states[0] for state in states)  # rank 0's checkpoint is everyone's
    assert states[0]["batches"] == 2 and len(states[0]["todo"]) <= saved[0]

    second = _loaders(store_s4, *resumed)
    for loader in second:
        loader.load_state_dict(states[0])
        length = len(loader)  # the epoch's batches, counted on from the saved ones
        rest = _samples(list(loader))
        assert len(rest) == (length - 2) * 2
        delivered += rest
        loader.shutdown()
    got = Counter(delivered)
    assert set(got) == set(range(30))
    left = 30 - saved[0] * 2 * 2
    padding = resumed[0] * -(-left // (resumed[0] * 2)) * 2 - left
    assert sum(got.values()) == 30 + padding  # every sample once, but the final round's pads


def test_a_state_of_another_order_is_refused(store_s4: str, store_s1: str) -> None:
    loader = make_loader(store_s4, rank=0, world_size=2, **{**OPTIONS, "num_workers": 0})
    next(iter(loader))
    state = loader.state_dict()
    others = {
        "seed": make_loader(store_s4, **{**OPTIONS, "seed": 1}),
        "batch_size": make_loader(store_s4, **{**OPTIONS, "batch_size": 3}),
        "selection": make_loader(store_s4, **OPTIONS, min_valid_fraction=0.7),
        "store": make_loader(store_s1, **OPTIONS),
        "split": make_loader(store_s4, **OPTIONS, split="train"),
    }
    for key, other in others.items():
        with pytest.raises(LoaderConfigError, match="plans differ") as refused:
            other.load_state_dict(state)
        assert key in {"store", "split"} or key in str(refused.value)
    make_loader(store_s4, rank=1, world_size=3, **OPTIONS).load_state_dict(state)  # elastic
