"""Reading the leading time steps of a variable (``steps``): only their chunks, the same values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from cubestream.errors import LoaderConfigError
from cubestream.l2.schema import TIME_CHUNKS
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.stream import L2Dataset, make_loader

CONTEXT = {"s2": 9}


def _whole(store: str | Path, **options: object) -> dict[str, object]:
    return next(iter(L2Dataset(str(store), batch_size=6, shuffle=False, **options)))


def _stores(tmp_path: Path) -> tuple[Path, Path]:
    """The same 6 samples as an old-layout store (``s2`` whole) and the schema's layout."""
    old = write_synthetic_l2(tmp_path / "old.zarr", 6, size=16, seed=3, time_chunks={})
    new = write_synthetic_l2(tmp_path / "new.zarr", 6, size=16, seed=3)
    assert zarr.open_group(old, mode="r")["s2"].chunks == (1, 45, 9, 16, 16)
    assert zarr.open_group(new, mode="r")["s2"].chunks == (1, TIME_CHUNKS["s2"], 9, 16, 16)
    return old, new


def _equal(whole: dict[str, object], context: dict[str, object]) -> None:
    for name, value in whole.items():
        if name == "cube_id":
            assert value == context[name]
            continue
        got = context[name]
        assert isinstance(value, torch.Tensor) and isinstance(got, torch.Tensor)
        expected = value[:, : got.shape[1]] if name == "s2" else value
        assert torch.equal(got, expected), name


@pytest.mark.parametrize("decode", ["loader", "device"])
def test_context_steps_of_either_layout_hold_the_same_bits(tmp_path: Path, decode: str) -> None:
    old, new = _stores(tmp_path)
    whole = _whole(old, decode=decode)
    assert tuple(whole["s2"].shape) == (6, 45, 9, 16, 16)  # type: ignore[attr-defined]
    for store in (old, new):
        context = _whole(store, decode=decode, steps=CONTEXT)
        assert tuple(context["s2"].shape) == (6, 9, 9, 16, 16)  # type: ignore[attr-defined]
        _equal(whole, context)
    _equal(_whole(new, decode=decode), _whole(new, decode=decode, steps=CONTEXT))
    _equal(whole, _whole(new, decode=decode))


def test_only_the_chunks_of_the_steps_are_decoded(tmp_path: Path) -> None:
    old, new = _stores(tmp_path)
    whole = _whole(old)
    chunks = sorted((new / "s2" / "c").glob("*/[1-9]/0/0/0"))
    assert len(chunks) == 6 * 4  # the forecast chunks: steps 9..44 in four chunks per sample
    for chunk in chunks:  # were any decoded, Blosc would fail on them
        chunk.write_bytes(b"not a blosc frame" * 4)
    _equal(whole, _whole(new, steps=CONTEXT))
    with pytest.raises(RuntimeError, match="blosc"):
        _whole(new)


def test_blocks_of_samples_and_patches_read_the_steps_too(store_s4: str) -> None:
    whole = L2Dataset(store_s4, batch_size=4, seed=5, variables=["s2", "kndvi"])
    context = L2Dataset(store_s4, batch_size=4, seed=5, variables=["s2", "kndvi"], steps=CONTEXT)
    assert context.info.sample_nbytes["s2"] * 5 == whole.info.sample_nbytes["s2"]
    for a, b in zip(whole, context, strict=True):
        _equal(a, b)
    options = {"batch_size": 9, "patch": 16, "overlap": 8, "shuffle": False}
    patches = L2Dataset(store_s4, variables=["s2"], steps=CONTEXT, **options)  # type: ignore[arg-type]
    batch = next(iter(patches))
    assert tuple(batch["s2"].shape) == (9, 9, 9, 16, 16)
    full = next(iter(L2Dataset(store_s4, variables=["s2"], **options)))  # type: ignore[arg-type]
    assert torch.equal(batch["s2"], full["s2"][:, :9])


def test_a_loader_with_steps_resumes_mid_epoch(store_s1: str) -> None:
    options = {"batch_size": 2, "seed": 3, "variables": ["s2"], "steps": CONTEXT}
    full = [b["sample"].tolist() for b in make_loader(store_s1, **options)]
    loader = make_loader(store_s1, **options)
    stream = iter(loader)
    head = [next(stream)["sample"].tolist() for _ in range(3)]
    state = loader.state_dict()
    del stream
    resumed = make_loader(store_s1, **options)
    resumed.load_state_dict(state)
    rest = list(resumed)
    assert head + [b["sample"].tolist() for b in rest] == full
    assert all(tuple(b["s2"].shape[1:3]) == (9, 9) for b in rest)
    context = make_loader(store_s1, num_workers=1, **options).memory_bound_mb()
    whole = make_loader(store_s1, num_workers=1, batch_size=2, variables=["s2"])
    assert context < whole.memory_bound_mb()


@pytest.mark.parametrize(
    ("steps", "variables", "match"),
    [
        ({"dem": 3}, ["s2", "dem"], "'dem' is not a requested variable with 'time'"),
        ({"kndvi": 9}, ["s2"], "'kndvi' is not a requested variable"),
        ({"s2": 0}, ["s2"], "positive int"),
        ({"s2": 9.0}, ["s2"], "positive int"),
        ({"s2": 46}, ["s2"], "has 45 time steps; ask for at most 45"),
    ],
)
def test_bad_steps_are_named(
    store_s1: str, steps: dict[str, int], variables: list[str], match: str
) -> None:
    with pytest.raises(LoaderConfigError, match=match):
        L2Dataset(store_s1, variables=variables, steps=steps)


def test_the_written_forecast_of_s2_is_still_there(tmp_path: Path) -> None:
    """The new layout changes the chunks, not the values: all 45 steps are stored."""
    old, new = _stores(tmp_path)
    a, b = zarr.open_group(old, mode="r")["s2"], zarr.open_group(new, mode="r")["s2"]
    np.testing.assert_array_equal(np.asarray(a[...]), np.asarray(b[...]))
