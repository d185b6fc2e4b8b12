"""10 m and 20 m pixels averaged onto the 30 m grid without a warp: GDAL's pixels, but exact.

Synthetic COGs on a Sentinel-2 tile's grid (the 10, 20 and 30 m grids share their corner), with
a slanted no-data edge so that half-way means occur. The aggregation must equal an independent
area-weighted mean rounded half up, everywhere; GDAL's warper (and stackstac, which warps the
same way) may round those halves down, and may differ from it nowhere else.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.enums import Resampling
from rasterio.transform import Affine

from cubestream.sources.aggregate import Aggregation, aggregate, plan_aggregation
from cubestream.sources.cogread import ReadBuffer, TargetGrid, WindowRead, read_windows
from cubestream.testing import write_test_cog

X0, Y0 = 399960.0, 9600040.0
"""Upper-left corner of tile 37MBU (every resolution's grid starts there)."""
SIDE = 96
"""Target grid side in 30 m pixels."""
GRID = TargetGrid(epsg=32737, transform=(30, 0, X0, 0, -30, Y0), width=SIDE, height=SIDE)


def _values(resolution: int, seed: int) -> np.ndarray:
    """Digital numbers on the ``resolution`` grid: few distinct values, a slanted no-data edge."""
    side = SIDE * 30 // resolution
    rng = np.random.default_rng(seed)
    values = rng.integers(1, 40, size=(side, side), dtype=np.uint16) * 50 + 1000
    rows, cols = np.mgrid[0:side, 0:side]
    values[rows * 1.7 + cols < side * 0.45] = 0
    values[rng.random((side, side)) < 0.05] = 0
    return values


def _exact_mean(values: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Area-weighted mean of the valid pixels per 30 m pixel, rounded half up; and the halves."""
    cells = np.kron(values.astype(np.int64), np.ones((resolution // 10,) * 2, dtype=np.int64))
    blocks = cells.reshape(SIDE, 3, SIDE, 3)
    total = blocks.sum(axis=(1, 3))
    count = (blocks > 0).sum(axis=(1, 3))
    mean = np.where(count > 0, np.floor(total / np.maximum(count, 1) + 0.5), 0)
    halves = (
        (count > 0) & (2 * total % np.maximum(count, 1) == 0) & (total % np.maximum(count, 1) != 0)
    )
    return mean.astype(np.uint16), halves


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[str, np.ndarray]]:
    """One 10 m and one 20 m COG on the tile's grids, with their pixels."""
    root = tmp_path_factory.mktemp("native")
    out = {}
    for resolution, seed in ((10, 1), (20, 2)):
        values = _values(resolution, seed)
        out[resolution] = (
            write_test_cog(root / f"{resolution}.tif", values, resolution, (X0, Y0)),
            values,
        )
    return out


@pytest.mark.parametrize("resolution", [10, 20])
@pytest.mark.parametrize("window", [(0, 0, SIDE, SIDE), (1, 3, 40, 51), (37, 29, 59, 67)])
def test_average_is_the_exact_area_weighted_mean(
    native: dict[int, tuple[str, np.ndarray]], resolution: int, window: tuple[int, ...]
) -> None:
    href, values = native[resolution]
    mean, halves = _exact_mean(values, resolution)
    row, col, height, width = window
    cut = (slice(row, row + height), slice(col, col + width))

    def read(warp: bool) -> np.ndarray:
        request = WindowRead(
            hrefs=((href,),),
            grid=GRID,
            window=(row, col, height, width),
            resampling="average",
            dtype="uint16",
            warp=warp,
        )
        out: np.ndarray = read_windows(request, threads=2)[0, 0]
        return out

    got, warped = read(False), read(True)
    np.testing.assert_array_equal(got, mean[cut])
    differ = got != warped
    assert (np.abs(got.astype(int) - warped)[differ] == 1).all()
    assert not (differ & ~halves[cut]).any(), "the warp differs only where the mean is a half"
    assert halves.any() and (got > 0).mean() > 0.3


@pytest.mark.parametrize("resolution", [10, 20])
def test_nearest_takes_the_pixel_under_the_centre_as_the_warp(
    native: dict[int, tuple[str, np.ndarray]], resolution: int
) -> None:
    href, values = native[resolution]
    for window in ((0, 0, SIDE, SIDE), (5, 7, 33, 41)):
        reads = [
            WindowRead(
                hrefs=((href,),),
                grid=GRID,
                window=window,
                resampling="nearest",
                dtype="uint16",
                warp=warp,
            )
            for warp in (False, True)
        ]
        got, warped = (read_windows(r, threads=1) for r in reads)
        np.testing.assert_array_equal(got, warped)
    centre = np.kron(values, np.ones((resolution // 10,) * 2, dtype=np.uint16))[1::3, 1::3]
    np.testing.assert_array_equal(got[0, 0], centre[5:38, 7:48])


def test_stackstac_rounds_like_the_warp(native: dict[int, tuple[str, np.ndarray]]) -> None:
    """The former path (stackstac) gives the warp's pixels; the aggregation's halves round up."""
    import stackstac

    items = [
        {
            "type": "Feature",
            "stac_version": "1.0.0",
            "id": "item",
            "geometry": None,
            "bbox": [37.5, -4.5, 39.5, -3.0],
            "properties": {"datetime": "2022-01-01T00:00:00Z"},
            "assets": {f"b{r}": {"href": native[r][0], "type": "image/tiff"} for r in (10, 20)},
            "links": [],
        }
    ]
    stacked = stackstac.stack(
        items,
        assets=["b10", "b20"],
        epsg=32737,
        resolution=30,
        bounds=(X0, Y0 - SIDE * 30, X0 + SIDE * 30, Y0),
        snap_bounds=False,
        resampling=Resampling.average,
        dtype=np.dtype("uint16"),
        fill_value=np.uint16(0),
        rescale=False,
    ).data.compute(scheduler="sync")[0]
    request = WindowRead(
        hrefs=((native[10][0], native[20][0]),),
        grid=GRID,
        window=(0, 0, SIDE, SIDE),
        resampling="average",
        dtype="uint16",
        warp=True,
    )
    np.testing.assert_array_equal(read_windows(request, threads=1)[0], stacked)


def _affine(size: float, x0: float = X0, y0: float = Y0) -> Affine:
    return Affine(size, 0, x0, 0, -size, y0)


def test_only_nested_grids_are_aggregated() -> None:
    assert plan_aggregation(_affine(10), _affine(30)) == Aggregation(repeat=1, block=3)
    assert plan_aggregation(_affine(20), _affine(30)) == Aggregation(repeat=2, block=3)
    assert plan_aggregation(_affine(20), _affine(60)) == Aggregation(repeat=1, block=3)
    assert plan_aggregation(_affine(60), _affine(30)) is None  # an upsampling: the warp
    assert plan_aggregation(_affine(30), _affine(30)) is None  # on the grid: a plain read
    assert plan_aggregation(_affine(10, X0 - 10), _affine(30)) is None  # corners 10 m apart
    assert plan_aggregation(_affine(10, X0 + 60), _affine(30, X0 + 30)) is None
    assert plan_aggregation(_affine(10), Affine(30, 0.5, X0, 0, -30, Y0)) is None  # rotated
    assert plan_aggregation(_affine(10.004), _affine(30)) is None  # not whole centimetres


def test_aggregate_refuses_other_resamplings() -> None:
    with pytest.raises(ValueError, match="bilinear"):
        aggregate(np.ones((6, 6), np.uint16), Aggregation(1, 3), (0, 0), (2, 2), "bilinear", 0)


def test_a_window_of_valid_pixels_and_another_no_data_value() -> None:
    values = np.arange(1, 37, dtype=np.uint16).reshape(6, 6)
    got = aggregate(values, Aggregation(1, 3), (0, 0), (2, 2), "average", 0)
    np.testing.assert_array_equal(got, [[8, 11], [26, 29]])
    values[0:3, 0:3] = 9999
    values[0, 0] = 1
    got = aggregate(values, Aggregation(1, 3), (0, 0), (2, 2), "average", 9999)
    np.testing.assert_array_equal(got, [[1, 11], [26, 29]])
    values[0, 0] = 9999
    got = aggregate(values, Aggregation(1, 3), (0, 0), (2, 2), "average", 9999)
    assert got[0, 0] == 9999


@pytest.mark.parametrize(
    "name",
    [
        "earth-search-v1_2025_S2B_20EPT_20250731_0_L2A.json",
        "earth-search-c1_S2B_T38XNF_20250422T091553_L2A.json",
        "rustac__pc_sentinel-2-l2a_two_items_T13TDE_2024-08.json",
    ],
)
def test_real_items_assets_nest_in_the_tiles_30_m_grid(name: str) -> None:
    """The catalogues' own transforms: every 10 m / 20 m asset nests, so none is warped."""
    from cubestream.sources.stac import read_items_file

    real = Path(__file__).parents[1] / "data" / "real" / "stac" / name
    raw = read_items_file(real)[0]
    transforms = {
        Affine(*asset["proj:transform"][:6])
        for asset in raw["assets"].values()
        if len(asset.get("proj:transform") or ()) >= 6
    }
    sizes = {t.a for t in transforms}
    assert {10, 20} <= sizes
    corner = next(iter(transforms))
    grid = Affine(30, 0, corner.c, 0, -30, corner.f)
    plans = {t.a: plan_aggregation(t, grid) for t in transforms if t.a in (10, 20)}
    assert plans == {10: Aggregation(repeat=1, block=3), 20: Aggregation(repeat=2, block=3)}


@pytest.mark.parametrize("resolution", [10, 20])
@pytest.mark.parametrize("resampling", ["average", "nearest"])
def test_parts_equal_the_whole_window_there_and_nothing_is_read_elsewhere(
    native: dict[int, tuple[str, np.ndarray]], resolution: int, resampling: str
) -> None:
    """A level-1 task reads only its boxes, in its order: each equals the whole window there."""
    href, _ = native[resolution]
    window, parts = (2, 1, 90, 90), ((50, 3, 30, 30), (0, 0, 30, 30), (16, 40, 30, 30))

    buffer = ReadBuffer()

    def read(regions: tuple[tuple[int, int, int, int], ...], reuse: bool) -> np.ndarray:
        request = WindowRead(
            hrefs=((href,),),
            grid=GRID,
            window=window,
            resampling=resampling,
            dtype="uint16",
            parts=regions,
        )
        into = None
        if reuse:  # a buffer with what an earlier read left in it
            into = buffer.take(request.shape, request.dtype)
            into[...] = 0xBEEF
        out: np.ndarray = read_windows(request, threads=1, out=into)[0, 0]
        return out.copy()

    whole, got = read((), False), read(parts, False)
    assert got.shape == (len(parts), 30, 30)
    for (row, col, height, width), values in zip(parts, got, strict=True):
        np.testing.assert_array_equal(values, whole[row : row + height, col : col + width])
    # read into a reused buffer, every value is written: the same pixels
    np.testing.assert_array_equal(read((), True), whole)
    np.testing.assert_array_equal(read(parts, True), got)


def test_parts_are_of_one_size() -> None:
    with pytest.raises(ValueError, match="of one size"):
        WindowRead(
            hrefs=(),
            grid=GRID,
            window=(0, 0, 10, 10),
            resampling="average",
            dtype="uint16",
            parts=((0, 0, 2, 2), (4, 4, 3, 3)),
        )


def test_a_read_buffer_grows_to_the_largest_read_and_is_reused() -> None:
    buffer = ReadBuffer()
    first = buffer.take((2, 3, 4), "uint16")
    assert first.shape == (2, 3, 4) and first.dtype == np.uint16 and first.flags.c_contiguous
    smaller = buffer.take((5,), "uint8")
    assert np.shares_memory(first, smaller), "a smaller read reuses the memory"
    larger = buffer.take((100,), "uint16")
    assert buffer.memory.nbytes == 200 and larger.shape == (100,)
    assert np.shares_memory(buffer.take((2, 3, 4), "uint16"), larger)


def test_a_read_into_an_array_of_another_shape_is_refused(
    native: dict[int, tuple[str, np.ndarray]],
) -> None:
    request = WindowRead(
        hrefs=((native[10][0],),),
        grid=GRID,
        window=(0, 0, 8, 8),
        resampling="average",
        dtype="uint16",
    )
    for wrong in (np.empty((1, 1, 8, 9), np.uint16), np.empty((1, 1, 8, 8), np.uint8)):
        with pytest.raises(ValueError, match=r"C-contiguous \(1, 1, 8, 8\) uint16"):
            read_windows(request, threads=1, out=wrong)
