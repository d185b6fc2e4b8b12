"""The box grid of a tile and the candidate boxes: geometry, ids and the overlap rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from cubestream.errors import TileNotFoundError
from cubestream.grid import load_grid, tile
from cubestream.sample import boxes as boxes_module
from cubestream.sample.area import Area, parse_area
from cubestream.sample.boxes import (
    BOX_COLUMNS,
    BOX_SIZE_M,
    BOXES_PER_SIDE,
    CORE_BOXES,
    candidate_boxes,
    tile_boxes,
)

# Upper-left corners and CRSs of the official ESA grid (from its KML), written out literally.
KNOWN_TILES = {
    "37MBU": (32737, 199980.0, 9900040.0),
    "01CDH": (32701, 399960.0, 800020.0),
    "31UDQ": (32631, 399960.0, 5500020.0),
    "37PCN": (32637, 300000.0, 1300020.0),
    "34HBH": (32734, 199980.0, 6300040.0),
    "36NYF": (32636, 699960.0, 100020.0),
    "28PCB": (32628, 300000.0, 1700040.0),
    "40KEC": (32740, 499980.0, 7800040.0),
    "37MBV": (32737, 199980.0, 10000000.0),
}


@pytest.mark.parametrize(("tile_id", "expected"), KNOWN_TILES.items())
def test_tile_corners_and_epsg_match_official_grid(
    tile_id: str, expected: tuple[int, float, float]
) -> None:
    t = tile(tile_id)
    assert (t.epsg, t.x0, t.y0) == expected
    frame = tile_boxes(tile_id)
    first = frame.iloc[0]
    assert (first["epsg"], first["x_min"], first["y_max"]) == expected
    assert first["cube_id"] == f"{tile_id}0000"


def test_tile_boxes_geometry_for_every_box() -> None:
    t = tile("37MBU")
    frame = tile_boxes(t)
    assert list(frame.columns) == list(BOX_COLUMNS)
    assert len(frame) == BOXES_PER_SIDE**2 == 784
    rows, cols = np.divmod(np.arange(784), 28)
    np.testing.assert_array_equal(frame["row"], rows)
    np.testing.assert_array_equal(frame["col"], cols)
    np.testing.assert_array_equal(frame["x_min"], t.x0 + cols * 3840)
    np.testing.assert_array_equal(frame["y_max"], t.y0 - rows * 3840)
    np.testing.assert_array_equal(frame["x_max"], frame["x_min"] + BOX_SIZE_M)
    np.testing.assert_array_equal(frame["y_min"], frame["y_max"] - BOX_SIZE_M)
    assert frame["x_max"].max() == t.x0 + 107_520 < t.x0 + 109_800
    assert frame["cube_id"].is_unique
    assert frame["cube_id"].iloc[17 * 28 + 15] == "37MBU1715"
    assert (frame["tile"] == "37MBU").all()
    assert frame.dtypes["epsg"] == np.int64
    assert frame.dtypes["row"] == np.int64
    assert frame["core"].dtype == np.dtype(bool)


def test_tile_boxes_wgs84_against_pyproj() -> None:
    frame = tile_boxes("34HBH")
    to_wgs84 = Transformer.from_crs(32734, 4326, always_xy=True)
    half = BOX_SIZE_M / 2
    lon, lat = to_wgs84.transform(frame["x_min"] + half, frame["y_max"] - half)
    np.testing.assert_allclose(frame["lon"], lon, atol=1e-9)
    np.testing.assert_allclose(frame["lat"], lat, atol=1e-9)
    steps = np.array([0.0, half, BOX_SIZE_M])
    dx, dy = (a.ravel() for a in np.meshgrid(steps, -steps))
    rim = np.array([(i, j) for i, j in zip(dx, dy, strict=True) if (i, j) != (half, -half)])
    x = frame["x_min"].to_numpy()[:, None] + rim[:, 0]
    y = frame["y_max"].to_numpy()[:, None] + rim[:, 1]
    lons, lats = to_wgs84.transform(x, y)
    np.testing.assert_allclose(frame["min_lon"], lons.min(axis=1), atol=1e-9)
    np.testing.assert_allclose(frame["max_lon"], lons.max(axis=1), atol=1e-9)
    np.testing.assert_allclose(frame["min_lat"], lats.min(axis=1), atol=1e-9)
    np.testing.assert_allclose(frame["max_lat"], lats.max(axis=1), atol=1e-9)


def test_core_boxes_inside_a_zone_are_rows_and_cols_0_to_25() -> None:
    frame = tile_boxes("37MBU")
    expected = (frame["row"] < CORE_BOXES) & (frame["col"] < CORE_BOXES)
    pd.testing.assert_series_equal(frame["core"], expected, check_names=False)


def test_square_rule_on_the_whole_official_grid() -> None:
    """Every tile corner sits 0-40 m west/north of its 100 km square: core rows/cols are 0..25."""
    grid = load_grid()
    south = grid["epsg"].to_numpy() // 100 == 327
    north_y = grid["y0"].to_numpy() - np.where(south, 1e7, 0.0)
    assert set(np.unique(np.mod(-grid["x0"].to_numpy(), 1e5))) == {0.0, 20.0, 40.0}
    assert set(np.unique(np.mod(north_y, 1e5))) == {0.0, 20.0, 40.0}
    expected = np.zeros((BOXES_PER_SIDE, BOXES_PER_SIDE), dtype=bool)
    expected[:CORE_BOXES, :CORE_BOXES] = True
    for epsg, group in grid.groupby("epsg"):
        square = boxes_module._in_square(
            int(epsg), group["x0"].to_numpy(float), group["y0"].to_numpy(float)
        )
        assert (square == expected).all(), epsg


def test_zone_border_tile_keeps_ground_no_other_zone_has() -> None:
    # 36NZF reaches from 35.69E to 36.68E at the equator; zone 37's first tiles start at 36.30E.
    frame = tile_boxes("36NZF")
    core = frame[frame["core"]]
    assert core["max_lon"].max() > 36.2  # across the border, where zone 37 has no tile
    assert core["max_lon"].max() < 36.31  # but short of zone 37's first square
    assert not frame[(frame["row"] >= CORE_BOXES) | (frame["col"] >= CORE_BOXES)]["core"].any()


def test_unknown_tile_id() -> None:
    with pytest.raises(TileNotFoundError, match="99ZZZ"):
        tile_boxes("99ZZZ")
    with pytest.raises(TileNotFoundError, match="99ZZZ"):
        candidate_boxes(parse_area("36.7,-1.4,36.9,-1.2"), tiles=["37MBU", "99ZZZ"])


def _polygons_6933(frame: pd.DataFrame, steps: int = 8) -> np.ndarray:
    """Each box as a densified polygon in the equal-area EPSG:6933, shrunk by 1 m."""
    t = np.arange(steps) / steps
    dx = np.concatenate([t, np.ones(steps), 1 - t, np.zeros(steps)]) * BOX_SIZE_M
    dy = np.concatenate([np.zeros(steps), -t, -np.ones(steps), t - 1]) * BOX_SIZE_M
    out = np.empty(len(frame), dtype=object)
    for epsg, group in frame.groupby("epsg"):
        to_ease = Transformer.from_crs(int(epsg), 6933, always_xy=True)
        x, y = to_ease.transform(
            group["x_min"].to_numpy()[:, None] + dx, group["y_max"].to_numpy()[:, None] + dy
        )
        index = frame.index.get_indexer(group.index)
        out[index] = shapely.polygons(np.stack([x, y], axis=-1))
    return shapely.buffer(out, -1.0, join_style="mitre")


def _overlapping_pairs(frame: pd.DataFrame) -> list[tuple[str, str]]:
    polygons = _polygons_6933(frame)
    tree = shapely.STRtree(polygons)
    left, right = tree.query(polygons, predicate="intersects")
    ids = frame["cube_id"].to_numpy()
    return [(ids[i], ids[j]) for i, j in zip(left, right, strict=True) if i < j]


@pytest.fixture(scope="module")
def equator_boxes() -> tuple[Area, pd.DataFrame]:
    area = parse_area("35.5,-0.6,36.5,0.6")
    return area, candidate_boxes(area)


def test_candidates_across_zone_border_and_equator(
    equator_boxes: tuple[Area, pd.DataFrame],
) -> None:
    area, frame = equator_boxes
    assert list(frame.columns) == list(BOX_COLUMNS)
    assert set(frame["epsg"]) == {32636, 32736, 32637, 32737}
    assert frame["core"].all()
    assert frame["cube_id"].is_unique
    assert area.contains(frame["lon"].to_numpy(), frame["lat"].to_numpy()).all()
    assert frame.index.equals(pd.RangeIndex(len(frame)))
    order = frame.sort_values(["tile", "row", "col"]).index
    assert order.equals(frame.index)


def test_candidates_never_overlap(equator_boxes: tuple[Area, pd.DataFrame]) -> None:
    _, frame = equator_boxes
    assert _overlapping_pairs(frame) == []


@pytest.mark.parametrize("pair", [("36NYF", "36NZF"), ("36NZF", "37NBA"), ("36MZE", "36NZF")])
def test_overlap_check_finds_the_overlap_strips(pair: tuple[str, str]) -> None:
    """The checker itself: all boxes of neighbouring tiles overlap; their core boxes do not."""
    frame = pd.concat([tile_boxes(t) for t in pair], ignore_index=True)
    assert len(_overlapping_pairs(frame)) > 20
    assert _overlapping_pairs(frame[frame["core"]].reset_index(drop=True)) == []


def test_candidates_cover_the_area(equator_boxes: tuple[Area, pd.DataFrame]) -> None:
    _, frame = equator_boxes
    inner = parse_area("35.55,-0.55,36.45,0.55")
    to_ease = Transformer.from_crs(4326, 6933, always_xy=True)
    inner_ease = shapely.transform(
        inner.geometry, lambda xy: np.column_stack(to_ease.transform(*xy.T))
    )
    covered = shapely.union_all(_polygons_6933(frame)).intersection(inner_ease).area
    assert covered / inner_ease.area > 0.95


def test_candidates_of_explicit_tiles_and_empty() -> None:
    area = parse_area("36.7,-1.4,36.9,-1.2")
    frame = candidate_boxes(area, tiles=["37MBU", tile("37MBU")])
    assert set(frame["tile"]) == {"37MBU"}
    assert len(frame) > 0
    empty = candidate_boxes(area, tiles=[])
    assert list(empty.columns) == list(BOX_COLUMNS)
    assert empty.empty
    assert empty.dtypes["x_min"] == np.float64


@pytest.mark.parametrize(
    "bbox",
    [
        "2,55.5,8,57",  # Norway exception (32V from 3E) meets 31U, 31V, 32U
        "7,77.5,35,78.5",  # Svalbard zones 31X, 33X, 35X, 37X
        "-26,14,-22,18",  # Cape Verde across zones 26 and 27
    ],
)
def test_no_overlap_at_zone_exceptions_and_islands(bbox: str) -> None:
    frame = candidate_boxes(parse_area(bbox))
    assert len(frame) > 1000
    assert frame["cube_id"].is_unique
    assert _overlapping_pairs(frame) == []


@pytest.mark.slow
def test_no_overlap_along_african_zone_borders() -> None:
    """Every box of Africa within 0.4 degrees of a zone border, checked pairwise."""
    area = parse_area("africa")
    frame = candidate_boxes(area)
    distance = np.abs(((frame["lon"] + 180) % 6 + 3) % 6 - 3)
    near = frame[distance < 0.4].reset_index(drop=True)
    assert near["epsg"].nunique() > 20
    assert _overlapping_pairs(near) == []
    assert frame["cube_id"].is_unique
