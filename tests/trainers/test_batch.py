from __future__ import annotations

from pathlib import Path

import pytest
import torch
import zarr
from trainer_models import SIZE, setting_of

from cubestream.l2.schema import BANDS, STEPS
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.stream import L2Dataset
from trainers.batch import (
    CONTEXT_STEPS,
    STATIC_CHANNELS,
    InputEncoder,
    ModelInputs,
    ProblemSpec,
    check_batch,
)
from trainers.errors import BatchContractError, LoaderNotAvailableError, TrainerConfigError
from trainers.setting import VARIABLES, KndviSetting

DTYPES = {
    "s2": torch.float32,
    "kndvi": torch.float32,
    "mask": torch.float32,
    "weather": torch.float32,
    "dem": torch.float32,
    "landcover": torch.int64,
    "geomorphons": torch.int64,
    "sample": torch.int64,
}


def test_test_loader_yields_the_batch_contract(l2_store: Path) -> None:
    setting = setting_of(l2_store, batch_size=3)
    setting.setup("fit")
    batch = next(iter(setting.train_dataloader()))
    check_batch(batch)
    assert {k: v.dtype for k, v in batch.items() if k != "cube_id"} == DTYPES
    assert batch["s2"].shape == (3, CONTEXT_STEPS, len(BANDS), SIZE, SIZE)
    assert batch["weather"].shape == (3, STEPS, 6)
    assert "dist_mask" not in batch  # no model reads it
    assert isinstance(batch["cube_id"], list) and all(isinstance(c, str) for c in batch["cube_id"])


def test_problem_from_store(l2_store: Path) -> None:
    problem = ProblemSpec.from_store(str(l2_store), vegetation_classes=(10, 40))
    weather = zarr.open_group(l2_store, mode="r")["weather"]
    assert problem.weather_mean == pytest.approx(weather.attrs["mean"])
    assert problem.bands == BANDS and len(problem.weather_variables) == 6
    assert problem.vegetation_classes == (10, 40)
    with pytest.raises(TrainerConfigError, match="not WorldCover"):
        ProblemSpec.from_store(str(l2_store), vegetation_classes=(11,))
    with pytest.raises(TrainerConfigError, match="no L2 store"):
        ProblemSpec.from_store(str(l2_store.parent / "missing.zarr"))


def test_input_encoder_normalises_and_one_hot_encodes(l2_store: Path) -> None:
    setting = setting_of(l2_store)
    setting.setup("fit")
    batch = next(iter(setting.train_dataloader()))
    encoder = InputEncoder(6)
    encoder.set_problem(setting.problem)
    inputs = encoder(batch)
    assert inputs.context.shape == (2, CONTEXT_STEPS, len(BANDS) + 1, SIZE, SIZE)
    torch.testing.assert_close(inputs.context[:, :, -1], batch["kndvi"][:, :CONTEXT_STEPS])
    assert inputs.weather.shape == (2, STEPS, 6)
    mean = torch.tensor(setting.problem.weather_mean)
    std = torch.tensor(setting.problem.weather_std)
    torch.testing.assert_close(inputs.weather, (batch["weather"] - mean) / std)
    assert inputs.statics.shape == (2, STATIC_CHANNELS, SIZE, SIZE)
    dem = (batch["dem"] - setting.problem.dem_mean) / setting.problem.dem_std
    torch.testing.assert_close(inputs.statics[:, 0], dem)
    one_hot = inputs.statics[:, 1:]
    assert torch.all(one_hot.sum(1) == 1)  # every synthetic pixel has a WorldCover class
    assert torch.all(one_hot[:, 0] == (batch["landcover"] == 10).float())
    with pytest.raises(TrainerConfigError, match="weather variables"):
        InputEncoder(4).set_problem(setting.problem)


def test_contract_violations_are_named(l2_store: Path) -> None:
    setting = setting_of(l2_store)
    setting.setup("fit")
    batch = next(iter(setting.train_dataloader()))
    with pytest.raises(BatchContractError, match="geomorphons"):
        check_batch({k: v for k, v in batch.items() if k != "geomorphons"})
    with pytest.raises(BatchContractError, match="landcover must be an integer"):
        check_batch({**batch, "landcover": batch["landcover"].float()})
    with pytest.raises(BatchContractError, match="dem must be"):
        check_batch({**batch, "dem": batch["dem"][:, :4]})
    with pytest.raises(BatchContractError, match="the context steps at least"):
        check_batch({**batch, "s2": batch["s2"][:, : CONTEXT_STEPS - 1]})
    check_batch({**batch, "dist_mask": batch["mask"].clone()})  # optional, checked when present
    with pytest.raises(BatchContractError, match="dist_mask must be"):
        check_batch({**batch, "dist_mask": batch["mask"][:, :4]})


def _inputs(store: Path, steps: dict[str, int] | None) -> tuple[list[ModelInputs], set[int]]:
    """ModelInputs of the ``val`` batches, in storage order, and the steps of ``s2`` read.

    ``steps`` None: the Setting's own streaming loader; else an L2Dataset with those steps.
    """
    setting = KndviSetting(str(store), batch_size=2, loader_options={"decode": "loader"})
    data = setting.loader.dataset("val")  # type: ignore[attr-defined]
    if steps is not None:
        options = {"split": "val", "variables": VARIABLES, "shuffle": False, "steps": steps}
        data = L2Dataset(str(store), batch_size=2, **options)  # type: ignore[arg-type]
    encoder = InputEncoder(6)
    encoder.set_problem(setting.problem)
    batches = list(data)
    for batch in batches:
        check_batch(batch)
    return [encoder(b) for b in batches], {int(b["s2"].shape[1]) for b in batches}


def test_models_get_the_same_inputs_from_context_reads(tmp_path: Path) -> None:
    """Old layout read whole, new layout read for the context: the same ModelInputs, bit for bit."""
    old = write_synthetic_l2(tmp_path / "old.zarr", 10, size=SIZE, seed=4, time_chunks={})
    new = write_synthetic_l2(tmp_path / "new.zarr", 10, size=SIZE, seed=4)
    assert zarr.open_group(new, mode="r")["s2"].chunks[1] == CONTEXT_STEPS
    reference, steps = _inputs(old, {})  # the loader as it was: s2 of all 45 steps
    assert steps == {STEPS}
    for store, read in ((old, None), (new, None), (new, {})):
        inputs, steps = _inputs(store, read)
        assert steps == ({STEPS} if read == {} else {CONTEXT_STEPS})  # the Setting: context
        assert len(inputs) == len(reference)
        for a, b in zip(reference, inputs, strict=True):
            for field in ("context", "weather", "statics"):
                assert torch.equal(getattr(a, field), getattr(b, field)), (store, read, field)


def test_setting_without_loader_needs_the_stream_package(
    l2_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cubestream.stream", None)  # import fails
    with pytest.raises(LoaderNotAvailableError, match=r"cubestream\.stream"):
        KndviSetting(str(l2_store))


def test_splits_of_the_test_loader(l2_store: Path) -> None:
    setting = setting_of(l2_store, batch_size=1)
    setting.setup("fit")
    samples = {
        name: sorted(int(b["sample"]) for b in getattr(setting, f"{name}_dataloader")())
        for name in ("train", "val", "test")
    }
    assert samples == {"train": [0, 1, 2, 5, 6, 7], "val": [3, 8], "test": [4, 9]}
