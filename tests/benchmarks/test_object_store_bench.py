"""The object-store benchmark refuses settings that leave no batch after the first to time."""

from __future__ import annotations

import pytest

from benchmarks import object_store


def test_one_batch_in_all_is_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ValueError, match="give --samples above 4 or --epochs 2"):
        object_store.Settings(samples=4, epochs=1)
    with pytest.raises(SystemExit) as exit_:
        object_store.main(["--samples", "4", "--size", "16", "--epochs", "1", "--repeat", "1"])
    assert exit_.value.code == 2
    assert "--samples 4 and --epochs 1 give one batch" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--repeat must be at least 1"):
        object_store.Settings(repeat=0)


def test_a_second_batch_makes_the_settings_valid() -> None:
    assert object_store.Settings(samples=5, epochs=1).samples == 5
    assert object_store.Settings(samples=4, epochs=2).epochs == 2
