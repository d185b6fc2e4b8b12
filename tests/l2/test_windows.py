"""Windows: only full years, starts on season boundaries, five seasons, seeded per cube."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cubestream.l2.windows import (
    SEASONS,
    candidate_starts,
    draw_starts,
    from_days,
    full_years,
    season_of,
    step_days,
    to_days,
    window_days,
)


def test_full_years() -> None:
    assert full_years(dt.date(2020, 1, 1), dt.date(2021, 12, 31)) == (2020, 2021)
    assert full_years(dt.date(2019, 11, 1), dt.date(2022, 2, 28)) == (2020, 2021)
    assert full_years(dt.date(2021, 12, 1), dt.date(2022, 2, 28)) == ()


def test_candidates_of_two_full_years() -> None:
    starts = candidate_starts(dt.date(2020, 1, 1), dt.date(2021, 12, 31))
    assert starts == [dt.date(2020, 3, 1), dt.date(2020, 6, 1), dt.date(2020, 9, 1)]
    # a partial year around them admits nothing more
    assert candidate_starts(dt.date(2019, 6, 1), dt.date(2022, 5, 31)) == starts
    assert candidate_starts(dt.date(2021, 12, 1), dt.date(2022, 2, 28)) == []
    assert candidate_starts(dt.date(2020, 1, 1), dt.date(2020, 12, 31)) == []


@pytest.mark.parametrize("first_year", [2000, 2015, 2019])
def test_every_window_covers_five_seasons_inside_full_years(first_year: int) -> None:
    first, last = dt.date(first_year, 1, 1), dt.date(first_year + 6, 12, 31)
    starts = candidate_starts(first, last)
    assert len(starts) == 4 * 6 - 1  # every season start but the last one
    for start in starts:
        assert (start.month, start.day) in {(12, 1), (3, 1), (6, 1), (9, 1)}
        lo, hi = window_days(start)
        assert first <= lo and hi <= last and (hi - lo).days + 1 == 450
        seasons = [season_of(from_days(int(d))) for d in step_days(to_days(start))]
        runs = [seasons[0]]
        lengths = [0]
        for season in seasons:
            if season != runs[-1]:
                runs.append(season)
                lengths.append(0)
            lengths[-1] += 1
        k = SEASONS.index(season_of(start))
        assert runs == [SEASONS[(k + i) % 4] for i in range(5)], start
        assert all(8 <= n <= 10 for n in lengths), (start, lengths)
        # the first four seasons are covered in full: every one of their days is in the window
        fifth = next(
            dt.date(y, m, 1)
            for y in (start.year + 1, start.year + 2)
            for m in (12, 3, 6, 9)
            if season_of(dt.date(y, m, 1)) == runs[4] and dt.date(y, m, 1) > start
        )
        assert lo <= start and fifth - dt.timedelta(days=1) <= hi
        assert (hi - fifth).days + 1 >= 75


def test_draws_are_seeded_per_cube_and_distinct() -> None:
    starts = candidate_starts(dt.date(2016, 1, 1), dt.date(2021, 12, 31))
    a = draw_starts("37MBU1012", starts, 3, seed=0)
    assert a == draw_starts("37MBU1012", starts, 3, seed=0)
    assert a == sorted(a) and len(set(a)) == 3
    assert (
        draw_starts("37MBU1012", starts, 3, seed=1) != a
        or draw_starts("37MBU1013", starts, 3, seed=0) != a
    )
    assert draw_starts("x", starts[:2], 5, seed=0) == starts[:2]
    assert draw_starts("x", [], 1, seed=0) == []


def test_draws_do_not_favour_a_season() -> None:
    starts = candidate_starts(dt.date(2010, 1, 1), dt.date(2021, 12, 31))
    picks = [draw_starts(f"c{i}", starts, 1, seed=0)[0] for i in range(4000)]
    counts = np.array([sum(season_of(p) == s for p in picks) for s in SEASONS])
    assert counts.min() > 0.8 * counts.max()
