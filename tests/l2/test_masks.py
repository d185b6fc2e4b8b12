"""mask and dist_mask on hand-built cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from cubestream.l2.masks import (
    INVALID_SCL,
    days_to_next,
    next_valid,
    previous_valid,
    step_mask,
    valid_observations,
)


def _column(values: list[bool]) -> np.ndarray:
    return np.array(values, bool)[:, None, None]


def test_invalid_classes_are_the_issue_list() -> None:
    scl = np.arange(12, dtype=np.uint8)[:, None, None]
    valid = valid_observations(scl)[:, 0, 0]
    assert [c for c in range(12) if not valid[c]] == [0, 1, 3, 8, 9, 10, 11]
    assert tuple(INVALID_SCL) == (0, 1, 3, 8, 9, 10, 11)
    only_clouds = valid_observations(scl, invalid=(8, 9))[:, 0, 0]
    assert [c for c in range(12) if not only_clouds[c]] == [8, 9]


def test_a_band_without_data_makes_the_observation_invalid() -> None:
    scl = np.full((2, 1, 1), 4, np.uint8)
    dn = np.full((2, 3, 1, 1), 500, np.uint16)
    dn[1, 2] = 0
    assert valid_observations(scl, dn)[:, 0, 0].tolist() == [True, False]


def test_mask_known_answers() -> None:
    # acquisitions every 5 days from day 100; steps every 10 days from day 110
    days = np.arange(100, 160, 5)  # 100 105 ... 155
    valid = _column(
        [True, False, False, False, True, True, False, False, False, False, True, False]
    )
    # valid on 100, 120, 125, 150
    steps = np.array([110, 120, 130, 140, 150, 160])
    # (100,110]: none -> 1; (110,120]: 120 -> 0; (120,130]: 125 -> 0; (130,140]: none -> 1;
    # (140,150]: 150 -> 0; (150,160]: none -> 1
    assert step_mask(days, valid, steps)[:, 0, 0].tolist() == [1, 0, 0, 1, 0, 1]


def test_mask_interval_is_open_left_closed_right() -> None:
    days = np.array([100, 110])
    valid = _column([True, True])
    assert step_mask(days, valid, np.array([100, 110, 120]))[:, 0, 0].tolist() == [0, 0, 1]
    assert step_mask(days, valid, np.array([109]))[:, 0, 0].tolist() == [0]  # (99, 109] has 100


def test_dist_mask_known_answers() -> None:
    days = np.arange(100, 160, 5)
    valid = _column(
        [True, False, False, False, True, True, False, False, False, False, True, False]
    )
    steps = np.array([95, 100, 110, 120, 130, 140, 150, 160])
    # next valid at or after: 95->100 (5), 100->100 (0), 110->120 (10), 120->120 (0),
    # 130->150 (20), 140->150 (10), 150->150 (0), 160-> none: cap
    got = days_to_next(days, valid, steps, cap=90)[:, 0, 0].tolist()
    assert got == [5, 0, 10, 0, 20, 10, 0, 90]
    assert days_to_next(days, valid, steps, cap=15)[:, 0, 0].tolist() == [
        5,
        0,
        10,
        0,
        15,
        10,
        0,
        15,
    ]


def test_per_pixel_and_no_acquisitions() -> None:
    days = np.array([10, 20, 30])
    valid = np.zeros((3, 1, 2), bool)
    valid[1, 0, 0] = True  # pixel 0 observed on day 20, pixel 1 never
    steps = np.array([10, 20, 30])
    assert step_mask(days, valid, steps)[:, 0].tolist() == [[1, 1], [0, 1], [1, 1]]
    assert days_to_next(days, valid, steps, 50)[:, 0].tolist() == [[10, 50], [0, 50], [50, 50]]
    empty = np.zeros((0, 1, 1), bool)
    assert step_mask(np.array([], int), empty, steps)[:, 0, 0].tolist() == [1, 1, 1]
    assert days_to_next(np.array([], int), empty, steps, 7)[:, 0, 0].tolist() == [7, 7, 7]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_equals_a_plain_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    days = np.sort(rng.choice(np.arange(0, 400), 60, replace=False))
    valid = rng.random((60, 3, 4)) < 0.3
    steps = np.arange(20, 380, 10)
    mask, dist = step_mask(days, valid, steps), days_to_next(days, valid, steps, 60)
    for t, s in enumerate(steps):
        for y in range(3):
            for x in range(4):
                seen = [d for d, v in zip(days, valid[:, y, x], strict=True) if v]
                assert mask[t, y, x] == (0 if any(s - 10 < d <= s for d in seen) else 1)
                ahead = [d - s for d in seen if d >= s]
                assert dist[t, y, x] == min(min(ahead, default=60), 60)


def test_previous_and_next_valid_indices() -> None:
    valid = _column([False, True, False, False, True, False])
    assert previous_valid(valid)[:, 0, 0].tolist() == [-1, 1, 1, 1, 4, 4]
    assert next_valid(valid)[:, 0, 0].tolist() == [1, 1, 4, 4, 4, 6]
