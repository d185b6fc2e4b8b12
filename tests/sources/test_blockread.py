"""Windows of a COG read through its blocks: the same pixels, each block under them decoded once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from cubestream.sources.blockread import read_blockwise
from cubestream.sources.tiffraw import RawTiles
from cubestream.testing import write_test_cog

HEIGHT, WIDTH, BLOCK = 200, 150, 64
"""A raster whose sides are not whole blocks (``write_test_cog`` tiles by 64 px)."""


class _Counting:
    """An open dataset that records the windows GDAL is asked to decode."""

    def __init__(self, src: Any) -> None:
        self._src = src
        self.reads: list[Window] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._src, name)

    def read(self, band: int, window: Window) -> np.ndarray:
        self.reads.append(window)
        values: np.ndarray = self._src.read(band, window=window)
        return values


@pytest.fixture(params=[False, True], ids=["gdal", "raw"])
def raw(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both decoders: GDAL's reads, or the tiles from their bytes (each decode recorded too)."""
    decode = RawTiles.decode

    def counted(tiles: RawTiles, row: int, col: int) -> np.ndarray:
        height, width = tiles.src.block_shapes[0]
        tiles.src.reads.append(Window(col * width, row * height, width, height))
        return decode(tiles, row, col)

    monkeypatch.setattr(RawTiles, "decode", counted)
    return bool(request.param)


@pytest.fixture(scope="module")
def cog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    values = np.random.default_rng(3).integers(1, 5000, (HEIGHT, WIDTH), dtype=np.uint16)
    path = tmp_path_factory.mktemp("blockread") / "band.tif"
    write_test_cog(path, values, 10.0, (399960.0, 9600040.0))
    return path, values


def _expected(values: np.ndarray, window: Window) -> np.ndarray:
    """The window cut from the whole raster, no-data (0) outside it."""
    row, col = int(window.row_off), int(window.col_off)
    out = np.zeros((int(window.height), int(window.width)), dtype=values.dtype)
    top, left = max(row, 0), max(col, 0)
    bottom, right = min(row + out.shape[0], HEIGHT), min(col + out.shape[1], WIDTH)
    if bottom > top and right > left:
        out[top - row : bottom - row, left - col : right - col] = values[top:bottom, left:right]
    return out


def _blocks(window: Window) -> set[tuple[int, int]]:
    """The blocks a window overlaps inside the raster."""
    rows = range(max(int(window.row_off), 0), min(int(window.row_off + window.height), HEIGHT))
    cols = range(max(int(window.col_off), 0), min(int(window.col_off + window.width), WIDTH))
    return {(r // BLOCK, c // BLOCK) for r in rows for c in cols}


WINDOWS = [
    Window(3, 5, 40, 30),  # inside one block
    Window(50, 20, 60, 70),  # across four blocks
    Window(60, 10, 20, 40),  # overlaps the one before
    Window(130, 120, 40, 100),  # past the right and bottom edges
    Window(-10, 150, 30, 20),  # before the left edge
    Window(400, 0, 10, 10),  # wholly outside
    Window(0, 190, 150, 10),  # the last rows, whole width
]


def test_windows_equal_the_raster_and_no_data_outside(
    cog: tuple[Path, np.ndarray], raw: bool
) -> None:
    path, values = cog
    with rasterio.open(path) as opened:
        src = _Counting(opened)
        for window, got in zip(WINDOWS, read_blockwise(src, WINDOWS, raw=raw), strict=True):
            np.testing.assert_array_equal(got, _expected(values, window))


def test_each_block_under_the_windows_is_decoded_once_and_no_other(
    cog: tuple[Path, np.ndarray], raw: bool
) -> None:
    path, _ = cog
    with rasterio.open(path) as opened:
        src = _Counting(opened)
        ordered = sorted(WINDOWS, key=lambda w: (w.row_off, w.col_off))
        list(read_blockwise(src, ordered, raw=raw))
    decoded = [block for window in src.reads for block in _blocks(window)]
    assert len(decoded) == len(set(decoded)), "a block was decoded twice"
    assert set(decoded) == set().union(*(_blocks(w) for w in WINDOWS))
    for window in src.reads:  # whole blocks of one block row
        assert int(window.row_off) % BLOCK == 0 and int(window.col_off) % BLOCK == 0
        assert int(window.height) <= BLOCK


def test_blocks_are_decoded_as_the_windows_are_taken(
    cog: tuple[Path, np.ndarray], raw: bool
) -> None:
    """Lazily: taking the first window decodes only the blocks (runs) of its block rows."""
    path, _ = cog
    first, last = Window(0, 0, 10, 10), Window(0, 180, 10, 10)
    with rasterio.open(path) as opened:
        src = _Counting(opened)
        windows = read_blockwise(src, [first, last], raw=raw)
        next(windows)
        assert {int(w.row_off) // BLOCK for w in src.reads} == {0}
        next(windows)
        assert {int(w.row_off) // BLOCK for w in src.reads} == {0, 2}


REAL = Path(__file__).parents[1] / "data" / "real" / "geotiff"
"""Third-party GeoTIFFs (tests/data/real/README.md names their sources)."""


@pytest.mark.parametrize(
    "name",
    [
        "rio-tiler__cog_int16.tif",  # tiled 512 px, DEFLATE, partial edge blocks, no-data -32768
        "rio-tiler__LC08_L1TP_016037_20170813_B4.TIF",  # Landsat 8, striped, no no-data value
        "rio-tiler__web.tif",  # tiled 256 px, DEFLATE with the horizontal predictor, no-data 0
    ],
)
def test_real_geotiffs_read_blockwise_equal_plain_reads(name: str, raw: bool) -> None:
    """On other producers' files: the pixels of plain reads, no-data past the edges, each block
    under the windows decoded once."""
    with rasterio.open(REAL / name) as opened:
        whole = opened.read(1)
        height, width = whole.shape
        block_height, block_width = opened.block_shapes[0]
        fill = 0 if opened.nodata is None else opened.nodata
        rng = np.random.default_rng(5)
        windows = [
            Window(int(c), int(r), int(w), int(h))
            for r, c, h, w in zip(
                rng.integers(-20, height, 12),
                rng.integers(-20, width, 12),
                rng.integers(1, 300, 12),
                rng.integers(1, 300, 12),
                strict=True,
            )
        ]
        windows.sort(key=lambda w: (w.row_off, w.col_off))
        src = _Counting(opened)
        got = list(read_blockwise(src, windows, raw=raw))
    for window, values in zip(windows, got, strict=True):
        row, col = int(window.row_off), int(window.col_off)
        expected = np.full((int(window.height), int(window.width)), fill, dtype=whole.dtype)
        top, left = max(row, 0), max(col, 0)
        bottom = min(row + expected.shape[0], height)
        right = min(col + expected.shape[1], width)
        if bottom > top and right > left:
            expected[top - row : bottom - row, left - col : right - col] = whole[
                top:bottom, left:right
            ]
        np.testing.assert_array_equal(values, expected)
    decoded = []
    for read in src.reads:
        rows = range(int(read.row_off), int(read.row_off + read.height))
        cols = range(int(read.col_off), int(read.col_off + read.width))
        decoded += sorted({(r // block_height, c // block_width) for r in rows for c in cols})
    assert len(decoded) == len(set(decoded)), "a block was decoded twice"


def test_a_window_inside_one_block_is_a_read_only_view(
    cog: tuple[Path, np.ndarray], raw: bool
) -> None:
    """Not copied: the caller reads it (and copies it to change it); the others are copies."""
    path, values = cog
    inside, across = Window(3, 5, 40, 30), Window(50, 20, 60, 70)
    with rasterio.open(path) as opened:
        one, two = read_blockwise(_Counting(opened), [inside, across], raw=raw)
    assert not one.flags.writeable and one.base is not None
    assert two.flags.writeable
    np.testing.assert_array_equal(one, _expected(values, inside))
    with pytest.raises(ValueError, match="read-only"):
        one[0, 0] = 1
