"""L2Dataset in one process: the batch contract, values, patches, filters and store errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import zarr

from cubestream.errors import LoaderConfigError, LoaderStoreError, LoaderStoreNotFoundError
from cubestream.l2.encoding import decode_array, scale_of
from cubestream.stream import BATCH_VARIABLES, L2Dataset, patch_windows

T, C, V = 45, 9, 6


def test_batches_follow_the_contract_and_hold_the_stored_values(store_s4: str) -> None:
    data = L2Dataset(store_s4, batch_size=4, seed=7)
    group = zarr.open_group(store_s4, mode="r")
    batches = list(data)
    assert len(batches) == len(data) == 8  # 30 samples padded to 32
    batch = batches[0]
    assert list(batch) == [*BATCH_VARIABLES, "sample", "cube_id"]
    shapes = {
        "s2": (4, T, C, 32, 32),
        "kndvi": (4, T, 32, 32),
        "mask": (4, T, 32, 32),
        "dist_mask": (4, T, 32, 32),
        "weather": (4, T, V),
        "dem": (4, 32, 32),
        "landcover": (4, 32, 32),
        "geomorphons": (4, 32, 32),
        "sample": (4,),
    }
    for name, shape in shapes.items():
        assert tuple(batch[name].shape) == shape, name
        expected = torch.int64 if name in ("landcover", "geomorphons", "sample") else torch.float32
        assert batch[name].dtype == expected, name
    samples = batch["sample"].numpy()
    assert batch["cube_id"] == [str(group["cube_id"][int(s)]) for s in samples]
    for name in BATCH_VARIABLES:  # s2 and kndvi: the codes times scale_factor, bit for bit
        stored = decode_array(group[name].oindex[samples], scale_of(group[name].attrs))
        np.testing.assert_array_equal(batch[name].numpy(), stored.astype(batch[name].numpy().dtype))
    seen = np.concatenate([b["sample"].numpy() for b in batches])
    assert set(seen.tolist()) == set(range(30)) and len(seen) == 32


def test_patches_with_overlap_from_xbatcher(store_s1: str) -> None:
    windows = patch_windows(32, 32, 16, 8)
    assert len(windows) == 9 and windows[4] == (slice(8, 24), slice(8, 24))
    data = L2Dataset(
        store_s1, variables=["kndvi", "weather"], batch_size=9, patch=16, overlap=8, shuffle=False
    )
    batch = next(iter(data))
    assert list(batch) == ["kndvi", "weather", "sample", "cube_id"]
    assert tuple(batch["kndvi"].shape) == (9, T, 16, 16)
    assert batch["sample"].tolist() == [0] * 9  # storage order: sample 0, patches row by row
    array = zarr.open_group(store_s1, mode="r")["kndvi"]
    kndvi = decode_array(array[0], scale_of(array.attrs))
    for patch, (ys, xs) in enumerate(windows):
        np.testing.assert_array_equal(batch["kndvi"][patch].numpy(), kndvi[:, ys, xs])
    assert len(data) == 24 * 9 // 9


def test_split_and_valid_fraction_filters(store_s1: str) -> None:
    group = zarr.open_group(store_s1, mode="r")
    split = np.array([str(s) for s in group["split"][...].tolist()])
    valid = group["valid_fraction"][...]
    threshold = float(np.median(valid))
    data = L2Dataset(
        store_s1, split="train", variables=["dem"], batch_size=1, min_valid_fraction=threshold
    )
    got = sorted(int(b["sample"]) for b in data)
    assert got == np.flatnonzero((split == "train") & (valid >= threshold)).tolist()


def test_a_missing_variable_is_named(no_dem: str) -> None:
    with pytest.raises(LoaderStoreError, match="no variable 'dem'"):
        L2Dataset(no_dem, batch_size=2)
    assert len(L2Dataset(no_dem, variables=["s2", "kndvi"], batch_size=2)) > 0


def test_no_store_and_bad_settings(tmp_path, store_s1: str) -> None:
    with pytest.raises(LoaderStoreNotFoundError, match="no L2 store"):
        L2Dataset(str(tmp_path / "missing.zarr"))
    with pytest.raises(LoaderConfigError, match="does not fit"):
        L2Dataset(store_s1, patch=64)
    with pytest.raises(LoaderConfigError, match="unknown or no variables"):
        L2Dataset(store_s1, variables=["ndvi"])
    with pytest.raises(LoaderConfigError, match="do not fill one batch"):
        L2Dataset(store_s1, split="val", batch_size=4, uneven="drop", rank=0, world_size=2)


def test_each_chunk_is_read_once_per_epoch(store_s4: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cubestream.stream.store import SampleReader

    reads: list[int] = []
    original = SampleReader.read

    def counting(self: SampleReader, samples: np.ndarray) -> dict:
        reads.extend(np.unique(np.asarray(samples) // 4).tolist())  # the chunks touched
        return original(self, samples)

    monkeypatch.setattr(SampleReader, "read", counting)
    data = L2Dataset(store_s4, variables=["kndvi"], batch_size=3, chunk_buffer=2, seed=1)
    for epoch in range(2):
        reads.clear()
        data.set_epoch(epoch)
        assert sum(len(b["sample"]) for b in data) == 30
        assert sorted(reads) == list(range(8))  # 8 chunks of 4 samples (the last of 2)
