"""Tiles decoded from their bytes with libdeflate: GDAL's pixels, GDAL's reads where it must."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from cubestream.errors import AssetReadError
from cubestream.sources.tiffraw import raw_tiles
from cubestream.testing import write_test_cog

REAL = Path(__file__).parents[1] / "data" / "real" / "geotiff"
"""Third-party GeoTIFFs (tests/data/real/README.md names their sources)."""


def _every_tile_equals_gdal(path: Path) -> int:
    """Decode every tile of ``path`` both ways; return how many were compared."""
    with rasterio.open(path) as src:
        tiles = raw_tiles(src)
        assert tiles is not None, f"{path.name} should be decoded from its bytes"
        height, width = src.block_shapes[0]
        rows, cols = -(-src.height // height), -(-src.width // width)
        for row in range(rows):
            for col in range(cols):
                window = Window(col * width, row * height, width, height)
                expected = src.read(1, window=window, boundless=False)
                got = tiles.decode(row, col)
                assert got.shape == (height, width)
                h, w = expected.shape
                np.testing.assert_array_equal(got[:h, :w], expected, err_msg=f"tile {row}, {col}")
        return int(rows * cols)


@pytest.mark.parametrize(
    "name",
    [
        "rio-tiler__web.tif",  # uint16, DEFLATE with the horizontal predictor
        "rio-tiler__cog_int16.tif",  # int16, DEFLATE without predictor, partial edge tiles
    ],
)
def test_real_cog_tiles_equal_gdal(name: str) -> None:
    assert _every_tile_equals_gdal(REAL / name) > 1


def test_replica_cog_tiles_equal_gdal(tmp_path: Path) -> None:
    """The archive's layout (uint16, no-data 0, DEFLATE, predictor 2), edges not whole tiles."""
    values = np.random.default_rng(7).integers(0, 12000, (150, 200), dtype=np.uint16)
    path = tmp_path / "B04.tif"
    write_test_cog(path, values, 10.0, (399960.0, 9600040.0))
    assert _every_tile_equals_gdal(path) == 12


def test_a_sparse_tile_is_the_no_data_value(tmp_path: Path) -> None:
    """GDAL leaves an all-no-data tile out of a sparse file; it reads as the no-data value."""
    values = np.full((128, 128), 7, dtype=np.uint16)
    values[:64, :64] = 3  # the first tile: no-data, left out
    path = tmp_path / "sparse.tif"
    profile = {
        "driver": "GTiff",
        "width": 128,
        "height": 128,
        "count": 1,
        "dtype": "uint16",
        "nodata": 3,
        "tiled": True,
        "blockxsize": 64,
        "blockysize": 64,
        "compress": "deflate",
        "predictor": 2,
        "sparse_ok": True,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    with rasterio.open(path) as src:
        assert not src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)
        tiles = raw_tiles(src)
        assert tiles is not None
        np.testing.assert_array_equal(tiles.decode(0, 0), np.full((64, 64), 3))
        np.testing.assert_array_equal(tiles.decode(1, 1), np.full((64, 64), 7))


def _write(path: Path, count: int = 1, **options: object) -> Path:
    profile = {
        "driver": "GTiff",
        "width": 64,
        "height": 64,
        "count": count,
        "dtype": "uint16",
        "tiled": True,
        "blockxsize": 32,
        "blockysize": 32,
        **options,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.ones((count, 64, 64), dtype=np.uint16))
    return path


@pytest.mark.parametrize(
    "options",
    [
        {"compress": "lzw"},
        {"compress": "zstd"},
        {"compress": "deflate", "count": 3, "interleave": "pixel"},
        {"compress": "deflate", "tiled": False},
        {"compress": "deflate", "dtype": "float32", "predictor": 3},
        {"compress": "deflate", "dtype": "int32"},
    ],
    ids=["lzw", "zstd", "pixel-interleaved", "striped", "float-predictor", "int32"],
)
def test_other_layouts_are_left_to_gdal(tmp_path: Path, options: dict[str, object]) -> None:
    options = dict(options)
    count = int(options.pop("count", 1))  # type: ignore[call-overload]
    path = _write(tmp_path / "other.tif", count, **options)
    with rasterio.open(path) as src:
        assert raw_tiles(src) is None


def test_a_file_opened_through_gdal_vsi_is_left_to_gdal(tmp_path: Path) -> None:
    path = _write(tmp_path / "band.tif", compress="deflate")
    with rasterio.open(f"/vsisubfile/0_{path.stat().st_size},{path}") as src:
        assert raw_tiles(src) is None


def _first_tile(path: Path) -> tuple[int, int]:
    with rasterio.open(path) as src:
        offset = src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1)
        size = src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1)
    return int(offset), int(size)


def test_a_damaged_tile_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "B04.tif"
    values = np.random.default_rng(1).integers(1, 9000, (64, 64), dtype=np.uint16)
    write_test_cog(path, values, 10.0, (399960.0, 9600040.0))
    offset, size = _first_tile(path)
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * size)
    with rasterio.open(path) as src:
        tiles = raw_tiles(src)
        assert tiles is not None
        with pytest.raises(AssetReadError, match=r"tile \(0, 0\) of the COG .*B04\.tif.*damaged"):
            tiles.decode(0, 0)


def test_a_truncated_file_names_the_file(tmp_path: Path) -> None:
    source = tmp_path / "B04.tif"
    values = np.random.default_rng(2).integers(1, 9000, (64, 64), dtype=np.uint16)
    write_test_cog(source, values, 10.0, (399960.0, 9600040.0))
    offset, size = _first_tile(source)
    path = tmp_path / "cut.tif"
    shutil.copy(source, path)
    with rasterio.open(path) as src:
        tiles = raw_tiles(src)
        assert tiles is not None
        with path.open("r+b") as handle:
            handle.truncate(offset + size // 2)
        with pytest.raises(AssetReadError, match=r"cut\.tif ends before its tile.*truncated"):
            tiles.decode(0, 0)


@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "uint16"])
@pytest.mark.parametrize("predictor", [1, 2])
def test_each_integer_type_and_predictor_equals_gdal(
    tmp_path: Path, dtype: str, predictor: int
) -> None:
    """The wrapping difference of the predictor, in each type decoded here."""
    info = np.iinfo(dtype)
    values = np.random.default_rng(11).integers(info.min, info.max, (100, 90), endpoint=True)
    path = tmp_path / f"{dtype}-{predictor}.tif"
    profile = {
        "driver": "GTiff",
        "width": 90,
        "height": 100,
        "count": 1,
        "dtype": dtype,
        "tiled": True,
        "blockxsize": 32,
        "blockysize": 32,
        "compress": "deflate",
        "predictor": predictor,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values.astype(dtype), 1)
    assert _every_tile_equals_gdal(path) == 12  # 4 x 3 tiles, the last row and column partial
