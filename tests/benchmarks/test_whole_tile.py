"""The whole-tile peer holds a whole tile when it fits, else as many days as fit."""

from __future__ import annotations

from benchmarks.whole_tile import day_bytes, days_in_memory


def test_a_day_of_a_tile() -> None:
    assert day_bytes() == 3660 * 3660 * (9 * 2 + 1)  # nine uint16 bands and the uint8 SCL


def test_days_held_at_once() -> None:
    assert days_in_memory(18, 100 * day_bytes()) == 18  # all of them: the original pipeline
    assert days_in_memory(18, 10 * day_bytes()) == 5  # half of the memory available
    assert days_in_memory(18, 0) == 1
