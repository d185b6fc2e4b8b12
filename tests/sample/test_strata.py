"""Strata of boxes against direct reads of the rasters, error cases, the pool and served S3."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from numpy.typing import NDArray
from pyproj import Transformer

from cubestream.errors import CubestreamError, StrataError, StrataNotFoundError
from cubestream.grid import tile
from cubestream.replica.serve import Endpoints
from cubestream.replica.spec import preset
from cubestream.replica.strata import write_strata
from cubestream.replica.world import World
from cubestream.sample.legends import CLIMATE, LANDCOVER, NO_DATA, TOPOGRAPHY
from cubestream.sample.strata import STRATA_COLUMNS, StrataSources, box_strata, tile_strata
from cubestream.testing import read_access_log

BOX = 3840
RES = 120
SIDE = BOX // RES


def make_boxes(tile_id: str, cells: list[tuple[int, int]]) -> pd.DataFrame:
    """Box rows built by hand from the tile's upper-left corner."""
    grid_tile = tile(tile_id)
    rows = []
    for row, col in cells:
        x_min, y_max = grid_tile.x0 + col * BOX, grid_tile.y0 - row * BOX
        rows.append(
            {
                "cube_id": f"{tile_id}{row:02d}{col:02d}",
                "tile": tile_id,
                "epsg": grid_tile.epsg,
                "row": row,
                "col": col,
                "x_min": x_min,
                "y_min": y_max - BOX,
                "x_max": x_min + BOX,
                "y_max": y_max,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def objects(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The strata COGs of the tiny world (and nothing else of a replica)."""
    directory = tmp_path_factory.mktemp("objects")
    write_strata(World(preset("tiny")), directory)
    return directory


@pytest.fixture(scope="module")
def sources(objects: Path) -> StrataSources:
    return StrataSources(
        **{name: str(objects / "strata" / f"{name}.tif") for name in TIFS},
    )


TIFS = ("climate", "landcover", "geomorphons")
ALL_CELLS = [(row, col) for row in range(28) for col in range(28)]


# --- an independent read ---------------------------------------------------------------------


@functools.cache
def read_whole(path: Path) -> tuple[NDArray[np.uint8], Affine]:
    with rasterio.open(path) as dataset:
        return dataset.read(1), dataset.transform


def direct_pixels(path: Path, box: pd.Series) -> NDArray[np.uint8]:
    """The raster's pixels under the 32 x 32 pixel centres of a box, located with pyproj."""
    offsets = (np.arange(SIDE) + 0.5) * RES
    x, y = np.meshgrid(box["x_min"] + offsets, box["y_max"] - offsets)
    to_lonlat = Transformer.from_crs(f"EPSG:{box['epsg']}", "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(x.ravel(), y.ravel())
    values, transform = read_whole(path)
    cols, rows = ~transform @ (np.asarray(lon), np.asarray(lat))
    return np.asarray(values[np.floor(rows).astype(int), np.floor(cols).astype(int)])


def majority(values: list[Any], rank: Callable[[Any], Any] | None = None) -> tuple[Any, int]:
    """Most frequent value (the smallest, or smallest rank, on ties) and its lead in pixels."""
    counts = Counter(values)
    ordered = sorted(counts, key=lambda v: (-counts[v], rank(v) if rank else v))
    runner_up = counts[ordered[1]] if len(ordered) > 1 else 0
    return ordered[0], counts[ordered[0]] - runner_up


def by_hand(pixels: dict[str, NDArray[np.uint8]]) -> tuple[dict[str, Any], dict[str, int]]:
    """Strata of one box from its pixels without the module's helpers, and each majority's lead."""
    land = pixels["landcover"]
    land_valid = [int(v) for v in land if v != 0]
    non_water = [v for v in land_valid if v != 80]
    shares = [n / len(land_valid) for n in Counter(land_valid).values()]
    group_of = {code: name for name, codes in TOPOGRAPHY.items() for code in codes}
    groups = [group_of[int(v)] for v in pixels["geomorphons"] if v != 0]
    climate, climate_lead = majority([int(v) for v in pixels["climate"] if v != 0])
    landcover, landcover_lead = majority(non_water or land_valid)
    topography, topography_lead = majority(groups, list(TOPOGRAPHY).index)
    strata = {
        "climate": CLIMATE[climate],
        "landcover": LANDCOVER[landcover],
        "topography": topography,
        "landcover_entropy": -sum(p * math.log(p) for p in shares),
        "water_fraction": float(np.mean((land == 0) | (land == 80))),
    }
    return strata, {
        "climate": climate_lead,
        "landcover": landcover_lead,
        "topography": topography_lead,
    }


def test_strata_equal_a_direct_read(objects: Path, sources: StrataSources) -> None:
    boxes = make_boxes("37MBU", ALL_CELLS)
    strata = tile_strata(boxes, sources)
    assert list(strata.columns) == list(STRATA_COLUMNS)
    assert strata.index.equals(boxes.index)
    differing = 0
    for i in range(0, len(boxes), 5):
        box, got = boxes.iloc[i], strata.iloc[i]
        pixels = {name: direct_pixels(objects / "strata" / f"{name}.tif", box) for name in TIFS}
        expected, leads = by_hand(pixels)
        for name in ("climate", "landcover", "topography"):
            # the warp may move a pixel or two to a neighbour (tolerance 1e-3 source pixels)
            differing += got[name] != expected[name]
            assert got[name] == expected[name] or leads[name] <= 2, (box["cube_id"], name)
        assert got["landcover_entropy"] == pytest.approx(expected["landcover_entropy"], abs=0.01)
        assert got["water_fraction"] == pytest.approx(expected["water_fraction"], abs=2 / 1024)
    assert differing <= 2
    bins = np.digitize(strata["landcover_entropy"], [0.5, 1.0])
    assert (strata["heterogeneity"] == np.array(["low", "medium", "high"])[bins]).all()
    assert (strata["eligible"] == (strata["water_fraction"] <= 0.5)).all()
    assert strata["landcover"].nunique() > 4 and strata["climate"].nunique() > 1


# --- hand-made rasters in the tile's UTM CRS ---------------------------------------------------


def write_raster(path: Path, values: NDArray[Any], **profile: Any) -> str:
    """Write ``values`` (bands, rows, cols) at 120 m from the upper-left corner of 37MBU."""
    grid_tile = tile("37MBU")
    values = values if values.ndim == 3 else values[None]
    options = {
        "driver": "GTiff",
        "count": values.shape[0],
        "height": values.shape[1],
        "width": values.shape[2],
        "dtype": values.dtype.name,
        "crs": f"EPSG:{grid_tile.epsg}",
        "transform": Affine(RES, 0, grid_tile.x0, 0, -RES, grid_tile.y0),
        "nodata": 0,
        **profile,
    }
    with rasterio.open(path, "w", **options) as dataset:
        dataset.write(values)
    return str(path)


def box_blocks(*blocks: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Blocks of 32 x 32 px side by side (boxes of row 0, columns 0, 1, ...)."""
    return np.concatenate(blocks, axis=1).astype(np.uint8)


def halves(left: int, right: int) -> NDArray[np.uint8]:
    block = np.full((SIDE, SIDE), left, dtype=np.uint8)
    block[:, SIDE // 2 :] = right
    return block


@pytest.fixture
def handmade(tmp_path: Path) -> StrataSources:
    """Three boxes: a 20/30 tie, all water, 50% water + 10% no-data; a 4th box lies outside."""
    mixed = np.full((SIDE, SIDE), 10, dtype=np.uint8)
    mixed.ravel()[:512] = 80
    mixed.ravel()[512 : 512 + 103] = 0
    landcover = box_blocks(halves(20, 30), np.full((SIDE, SIDE), 80), mixed)
    geomorphons = box_blocks(halves(9, 1), halves(6, 2), halves(7, 4))
    climate = box_blocks(halves(3, 2), halves(12, 4), halves(4, 0))
    return StrataSources(
        climate=write_raster(tmp_path / "c.tif", climate),
        landcover=write_raster(tmp_path / "l.tif", landcover),
        geomorphons=write_raster(tmp_path / "g.tif", geomorphons),
    )


def test_ties_water_and_no_data(handmade: StrataSources) -> None:
    strata = tile_strata(make_boxes("37MBU", [(0, 0), (0, 1), (0, 2), (0, 3)]), handmade)
    tie, water, mixed, outside = (strata.iloc[i] for i in range(4))
    # ties go to the smallest code (20 < 30, Am 2 < Aw 3) or the first group (flat < concave)
    assert (tie["landcover"], tie["climate"], tie["topography"]) == ("shrubland", "Am", "flat")
    assert tie["landcover_entropy"] == pytest.approx(math.log(2))
    assert (tie["heterogeneity"], tie["water_fraction"], tie["eligible"]) == ("medium", 0, True)
    assert (water["landcover"], water["landcover_code"]) == ("permanent water bodies", 80)
    assert (water["heterogeneity"], water["water_fraction"], water["eligible"]) == ("low", 1, False)
    assert (water["climate"], water["topography"]) == ("BWh", "convex")
    assert mixed["landcover"] == "tree cover" and mixed["topography"] == "convex"
    assert mixed["climate"] == "BWh"  # no-data pixels do not vote
    assert mixed["water_fraction"] == pytest.approx((512 + 103) / 1024)
    assert not mixed["eligible"]
    assert (
        outside[["climate", "landcover", "heterogeneity", "topography"]].tolist() == [NO_DATA] * 4
    )
    assert math.isnan(outside["landcover_entropy"]) and outside["water_fraction"] == 1
    assert (outside["climate_code"], outside["eligible"]) == (0, False)


def test_water_threshold_and_bins_are_options(handmade: StrataSources) -> None:
    options = {name: getattr(handmade, name) for name in TIFS}
    relaxed = StrataSources(**options, max_water_fraction=0.7, entropy_bins=(0.69, 2.0))
    strata = tile_strata(make_boxes("37MBU", [(0, 0), (0, 2)]), relaxed)
    assert strata["eligible"].tolist() == [True, True]
    assert strata["heterogeneity"].tolist() == ["medium", "low"]  # ln 2 = 0.693 and 0.687


# --- errors ---------------------------------------------------------------------------------


def test_missing_raster_and_unreachable_url(sources: StrataSources, tmp_path: Path) -> None:
    options = {name: getattr(sources, name) for name in TIFS}
    missing = StrataSources(**{**options, "climate": str(tmp_path / "nope.tif")})
    with pytest.raises(StrataNotFoundError, match=r"climate raster .*nope\.tif does not exist"):
        missing.check()
    with pytest.raises(FileNotFoundError):
        tile_strata(make_boxes("37MBU", [(0, 0)]), missing)
    url = StrataSources(**{**options, "landcover": "http://127.0.0.1:9/landcover.tif"})
    with pytest.raises(StrataNotFoundError, match=r"landcover raster http://127\.0\.0\.1:9/"):
        url.check()
    text = tmp_path / "text.tif"
    text.write_text("not a raster")
    with pytest.raises(StrataError, match="cannot be read as a raster"):
        StrataSources(**{**options, "geomorphons": str(text)}).check()


@pytest.mark.parametrize(
    ("profile", "bands", "message"),
    [
        ({"crs": None}, 1, "has no CRS"),
        ({"crs": "+proj=tmerc +lon_0=37.1 +ellps=WGS84"}, 1, "projected without an EPSG"),
        ({}, 2, "has 2 bands"),
        ({"dtype": "int16"}, 1, "int16 values; class codes must be uint8"),
    ],
)
def test_unusable_rasters(
    sources: StrataSources, tmp_path: Path, profile: dict[str, Any], bands: int, message: str
) -> None:
    values = np.full((bands, SIDE, SIDE), 30, dtype=profile.get("dtype", "uint8"))
    path = write_raster(tmp_path / "bad.tif", values, **profile)
    options = {name: getattr(sources, name) for name in TIFS}
    bad = StrataSources(**{**options, "landcover": path})
    with pytest.raises(StrataError, match=message) as error:
        tile_strata(make_boxes("37MBU", [(0, 0)]), bad)
    assert "landcover raster" in str(error.value)
    assert isinstance(error.value, CubestreamError) and isinstance(error.value, ValueError)


def test_swapped_rasters_and_bad_options(sources: StrataSources) -> None:
    with pytest.raises(StrataError, match="is it the climate raster"):
        StrataSources(climate=sources.landcover, landcover="x", geomorphons="y").check()
    options = {name: getattr(sources, name) for name in TIFS}
    with pytest.raises(StrataError, match="max_water_fraction"):
        StrataSources(**options, max_water_fraction=1.5)
    with pytest.raises(StrataError, match="entropy_bins"):
        StrataSources(**options, entropy_bins=(1.0, 0.5))
    coarse = StrataSources(**options, resolution=100)
    with pytest.raises(StrataError, match="does not divide the 3840 m boxes of tile 37MBU"):
        tile_strata(make_boxes("37MBU", [(0, 0)]), coarse)
    with pytest.raises(StrataError, match=r"lack the columns \['epsg'\]"):
        tile_strata(make_boxes("37MBU", [(0, 0)]).drop(columns="epsg"), sources)


# --- several tiles, the pool ----------------------------------------------------------------


def test_box_strata_keeps_order_and_index(sources: StrataSources) -> None:
    # 37MCU's first columns overlap 37MBU, inside the tiny world's rasters
    boxes = pd.concat(
        [
            make_boxes("37MBU", [(r, c) for r in range(0, 28, 3) for c in range(0, 28, 3)]),
            make_boxes("37MCU", [(r, c) for r in range(0, 28, 3) for c in range(2)]),
        ]
    )
    boxes = boxes.sample(frac=1, random_state=1).set_axis(np.arange(len(boxes))[::-1] * 10)
    serial = box_strata(boxes, sources)
    pooled = box_strata(boxes, sources, workers=2)
    pd.testing.assert_frame_equal(serial, pooled)
    assert serial.index.equals(boxes.index) and serial["cube_id"].equals(boxes["cube_id"])
    for _, group in boxes.groupby("tile"):
        expected = tile_strata(group, sources)
        pd.testing.assert_frame_equal(serial.loc[group.index, list(STRATA_COLUMNS)], expected)
    assert serial.loc[serial["tile"] == "37MCU", "eligible"].any()
    again = box_strata(serial, sources)
    pd.testing.assert_frame_equal(again, serial)
    assert box_strata(boxes.iloc[:0], sources).columns.tolist() == [*boxes, *STRATA_COLUMNS]


# --- served through S3 ----------------------------------------------------------------------


def test_served_landcover_equals_local(replica_root: Path, replica_endpoints: Endpoints) -> None:
    local = StrataSources.from_replica(replica_root)
    key = "strata/landcover.tif"
    served = StrataSources(
        climate=local.climate,
        landcover=f"s3://{replica_endpoints.bucket}/{key}",
        geomorphons=local.geomorphons,
        gdal_env=replica_endpoints.gdal_env(),
    )
    boxes = make_boxes("37MBU", [(r, c) for r in range(5, 9) for c in range(3, 9)])
    expected = tile_strata(boxes, local)
    logged = len(read_access_log(replica_endpoints.access_log))
    pd.testing.assert_frame_equal(tile_strata(boxes, served), expected)
    requests = read_access_log(replica_endpoints.access_log)[logged:]
    gets = [line for line in requests if line["key"] == key and line["method"] == "GET"]
    size = Path(local.landcover).stat().st_size
    # lazy: byte ranges only, and less than the object holds
    assert gets and all(line["range"] for line in gets)
    assert sum(line["bytes"] for line in gets) < size / 2
