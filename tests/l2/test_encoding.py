"""The scaled uint16 encoding of s2 and kNDVI: the quantisation error bound, bit-exact decoders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import zarr

from cubestream.errors import L2StoreError
from cubestream.l2 import check_store
from cubestream.l2.encoding import (
    MAX_ERROR,
    SCALE,
    decode_array,
    decode_tensor,
    encode_array,
    scale_of,
)
from cubestream.l2.kndvi import kndvi
from cubestream.l2.synthetic import write_synthetic_l2


def _values(n: int = 200_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    edges = np.array([0.0, 1.0, SCALE / 2, 1 - SCALE / 2, 0.5 * SCALE * 3], np.float32)
    return np.concatenate([edges, rng.random(n, dtype=np.float32)])


def test_reflectance_error_is_within_the_bound() -> None:
    values = _values()
    codes = encode_array(values)
    assert codes.dtype == np.uint16 and codes[0] == 0 and codes[1] == 65535
    error = np.abs(decode_array(codes, SCALE).astype(np.float64) - values)
    assert error.max() <= MAX_ERROR < 7.7e-6
    assert error.max() > 0.45 / 65535  # the bound is tight, not loose by orders of magnitude


def test_kndvi_error_is_within_the_bound() -> None:
    rng = np.random.default_rng(1)
    red = rng.uniform(0.0, 0.5, 100_000).astype(np.float32)
    nir = rng.uniform(0.0, 0.9, 100_000).astype(np.float32)
    for normalise in (False, True):
        target = kndvi(red, nir, normalise=normalise)
        error = np.abs(decode_array(encode_array(target), SCALE).astype(np.float64) - target)
        assert error.max() <= MAX_ERROR


def test_torch_decoding_has_the_numpy_bits() -> None:
    codes = encode_array(_values())
    numpy = decode_array(codes, SCALE)
    assert torch.equal(decode_tensor(torch.from_numpy(codes), SCALE), torch.from_numpy(numpy))
    floats = np.array([0.25, 0.5], np.float32)
    assert np.array_equal(decode_array(floats, SCALE), floats)  # floats pass unchanged
    assert np.array_equal(decode_array(codes, None), codes.astype(np.float32))


def test_non_finite_values_and_offsets_are_refused() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        encode_array(np.array([0.1, np.nan], np.float32))
    with pytest.raises(ValueError, match="add_offset"):
        scale_of({"scale_factor": SCALE, "add_offset": 0.1})
    assert scale_of({}) is None


def test_stores_old_and_new_pass_the_check(tmp_path: Path) -> None:
    new = write_synthetic_l2(tmp_path / "new.zarr", 2, size=8)
    old = write_synthetic_l2(tmp_path / "old.zarr", 2, size=8, encoding="float32")
    check_store(str(new))
    check_store(str(old))
    root = zarr.open_group(new, mode="r+")
    assert root["s2"].dtype == np.uint16 and root["s2"].attrs["scale_factor"] == SCALE
    del root["kndvi"].attrs["scale_factor"]
    with pytest.raises(L2StoreError, match=r"'kndvi'.*without a 'scale_factor'.*rebuild"):
        check_store(str(new))


def test_xarray_decodes_the_cf_attributes(tmp_path: Path) -> None:
    import xarray as xr

    path = write_synthetic_l2(tmp_path / "s.zarr", 2, size=8)
    raw = zarr.open_group(path, mode="r")["s2"]
    with xr.open_zarr(path, consolidated=False) as ds:
        values = ds["s2"].values
    assert values.dtype.kind == "f" and np.isfinite(values).all()  # code 0 is not masked
    np.testing.assert_allclose(values, decode_array(raw[...], SCALE), rtol=0, atol=1e-7)
