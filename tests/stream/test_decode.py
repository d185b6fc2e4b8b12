"""Codes decoded in the loader or after the transfer: the same float32 bits; old stores read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from cubestream.errors import LoaderConfigError
from cubestream.l2.encoding import decode_array, scale_of
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.stream import BATCH_VARIABLES, L2Dataset
from cubestream.stream.batches import BATCH_TORCH_DTYPES, decode_batch


def _same(a: dict, b: dict) -> None:
    assert a["sample"].tolist() == b["sample"].tolist()
    for name in BATCH_VARIABLES:
        assert a[name].dtype == b[name].dtype == BATCH_TORCH_DTYPES[name], name
        assert torch.equal(a[name], b[name]), name  # bit for bit


@pytest.mark.parametrize("patch", [None, 16])
def test_device_decode_gives_the_loaders_bits(store_s4: str, patch: int | None) -> None:
    options = {"batch_size": 4, "seed": 3, "patch": patch}
    here = L2Dataset(store_s4, decode="loader", **options)
    raw = L2Dataset(store_s4, decode="device", **options)
    assert raw.batch_dtypes["s2"] == torch.uint16 and raw.batch_dtypes["mask"] == torch.uint8
    assert raw.info.scales == {"s2": pytest.approx(1 / 65535), "kndvi": pytest.approx(1 / 65535)}
    for decoded, codes in zip(here, raw, strict=True):
        assert codes["s2"].dtype == torch.uint16 and codes["dist_mask"].dtype == torch.int16
        _same(decoded, decode_batch(codes, raw.info.scales))


def test_decoded_values_are_the_codes_times_the_scale(store_s1: str) -> None:
    array = zarr.open_group(store_s1, mode="r")["s2"]
    batch = next(iter(L2Dataset(store_s1, variables=["s2"], batch_size=2, shuffle=False)))
    codes = np.asarray(array[0:2])
    assert codes.dtype == np.uint16
    expected = codes.astype(np.float32) * np.float32(scale_of(array.attrs))
    assert np.array_equal(batch["s2"].numpy(), expected)
    assert np.array_equal(batch["s2"].numpy(), decode_array(codes, scale_of(array.attrs)))


def test_an_old_float32_store_reads_as_before(tmp_path: Path) -> None:
    path = write_synthetic_l2(tmp_path / "old.zarr", 4, size=16, encoding="float32")
    group = zarr.open_group(path, mode="r")
    assert group["s2"].dtype == np.float32 and "scale_factor" not in group["s2"].attrs
    for decode in ("loader", "device"):
        data = L2Dataset(str(path), batch_size=4, shuffle=False, decode=decode)  # type: ignore[arg-type]
        assert data.info.scales == {}
        batch = decode_batch(next(iter(data)), data.info.scales)
        assert np.array_equal(batch["s2"].numpy(), group["s2"][...])
        assert np.array_equal(batch["kndvi"].numpy(), group["kndvi"][...])


def test_an_unknown_decode_is_refused(store_s1: str) -> None:
    with pytest.raises(LoaderConfigError, match="decode must be one of"):
        L2Dataset(store_s1, decode="gpu")  # type: ignore[arg-type]


def test_the_datamodule_decodes_after_the_transfer(store_s1: str) -> None:
    from cubestream.stream import L2DataModule

    module = L2DataModule(store_s1, batch_size=2, num_workers=0, decode="device")
    batch = next(iter(module.train_dataloader()))
    assert batch["s2"].dtype == torch.uint16 and batch["landcover"].dtype == torch.uint8
    decoded = module.on_after_batch_transfer(batch, 0)
    assert decoded["s2"].dtype == torch.float32 and decoded["landcover"].dtype == torch.int64
    reference = L2DataModule(store_s1, batch_size=2, num_workers=0, decode="loader")
    _same(decoded, next(iter(reference.train_dataloader())))
    assert reference.on_after_batch_transfer(decoded, 0) is decoded
    module.teardown("fit")
    reference.teardown("fit")
