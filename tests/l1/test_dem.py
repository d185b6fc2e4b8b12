"""SRTM on each cube's 30 m grid: an independent warp, the world's terrain, seams, clear errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer
from rasterio.warp import Resampling, reproject

from cubestream import grid
from cubestream.errors import AssetNotFoundError, AssetReadError, IncompleteSourceWarning
from cubestream.l1.dem import dem_cubes, srtm_tiles_for
from cubestream.replica.serve import Endpoints
from cubestream.replica.spec import ReplicaSpec, preset
from cubestream.replica.srtm import write_srtm
from cubestream.replica.world import World
from cubestream.testing import read_access_log

SRTM_PIXEL = 1 / 1200  # degrees, SRTM3


def cube_table(cells: list[tuple[int, int]]) -> pd.DataFrame:
    """Boxes ``(row, col)`` of tile 37MBU."""
    tile = grid.tile("37MBU")
    to_ll = Transformer.from_crs(tile.epsg, 4326, always_xy=True)
    records = []
    for row, col in cells:
        x_min, y_max = tile.x0 + col * 3840, tile.y0 - row * 3840
        lon, lat = to_ll.transform(x_min + 1920, y_max - 1920)
        records.append(
            {
                "cube_id": f"37MBU{row:02d}{col:02d}",
                "tile": "37MBU",
                "epsg": tile.epsg,
                "x_min": x_min,
                "y_min": y_max - 3840,
                "x_max": x_min + 3840,
                "y_max": y_max,
                "lon": lon,
                "lat": lat,
            }
        )
    return pd.DataFrame(records)


WINDOW = [(r, c) for r in range(12, 16) for c in range(12, 16)]  # the tiny replica's window
SEAM = (2, 20)  # 37MBU0220 meets the four tiles S01E036, S01E037, S02E036, S02E037


@pytest.fixture(scope="module")
def world() -> World:
    return World(ReplicaSpec.from_dict({**preset("tiny").to_dict(), "end": "2021-12-02"}))


@pytest.fixture(scope="module")
def objects(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    objects = tmp_path_factory.mktemp("srtm-objects")
    write_srtm(world, objects)
    return objects


def pixel_centres(cube: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    xs = cube.x_min + 15 + 30 * np.arange(128)
    ys = cube.y_max - 15 - 30 * np.arange(128)
    gx, gy = np.meshgrid(xs, ys)
    lon, lat = Transformer.from_crs(int(cube.epsg), 4326, always_xy=True).transform(gx, gy)
    return np.asarray(lon), np.asarray(lat)


def bilinear_tolerance(world: World, lon: np.ndarray, lat: np.ndarray) -> float:
    """What bilinear resampling of the 3 arc-second DEM may miss of the terrain itself.

    The tiles hold the terrain at the pixel centres rounded to whole metres (0.5 m), and
    bilinear interpolation on a grid of spacing h misses a C2 function f by at most
    (h_lon^2 max|f_lon,lon| + h_lat^2 max|f_lat,lat|) / 8; the second derivatives are taken by
    finite differences on a grid 8 times finer than the DEM over the cube (plus one pixel).
    """
    d = SRTM_PIXEL / 8
    fine_lon = np.arange(lon.min() - SRTM_PIXEL, lon.max() + SRTM_PIXEL, d)
    fine_lat = np.arange(lat.min() - SRTM_PIXEL, lat.max() + SRTM_PIXEL, d)
    z = world.statics.elevation(*np.meshgrid(fine_lon, fine_lat)).astype(np.float64)
    f_lon = np.abs(np.diff(z, 2, axis=1)).max() / d**2
    f_lat = np.abs(np.diff(z, 2, axis=0)).max() / d**2
    return 0.5 + SRTM_PIXEL**2 * (f_lon + f_lat) / 8 + 1e-3


def test_srtm_tiles_for_names_the_degree_cells() -> None:
    assert srtm_tiles_for((36.2, -1.8, 36.9, -1.1)) == ["srtm/S02E036.tif"]
    assert srtm_tiles_for((36.9, -1.1, 37.1, -0.9)) == [
        "srtm/S02E036.tif",
        "srtm/S02E037.tif",
        "srtm/S01E036.tif",
        "srtm/S01E037.tif",
    ]
    assert srtm_tiles_for((36.0, -2.0, 37.0, -1.0)) == ["srtm/S02E036.tif"]  # edges on degrees
    assert srtm_tiles_for((-0.5, 0.2, 0.5, 0.4)) == ["srtm/N00W001.tif", "srtm/N00E000.tif"]
    assert srtm_tiles_for((-73.2, 45.5, -73.1, 45.6)) == ["srtm/N45W074.tif"]


def test_equals_an_independent_warp_of_the_source_tile(objects: Path) -> None:
    cubes = cube_table(WINDOW)
    got = dem_cubes(str(objects), cubes)
    assert got.shape == (16, 128, 128) and got.dtype == np.float32
    assert np.isfinite(got).all()
    with rasterio.open(objects / "srtm" / "S02E036.tif") as src:
        for i, cube in cubes.iterrows():
            want = np.full((128, 128), np.nan, dtype=np.float32)
            reproject(
                rasterio.band(src, 1),
                want,
                src_nodata=-32768,
                dst_transform=Affine(30, 0, cube.x_min, 0, -30, cube.y_max),
                dst_crs=f"EPSG:{cube.epsg}",
                dst_nodata=np.nan,
                resampling=Resampling.bilinear,
            )
            np.testing.assert_allclose(got[i], want, atol=1e-3, err_msg=cube.cube_id)


def test_matches_the_terrain_within_what_bilinear_resampling_allows(
    world: World, objects: Path
) -> None:
    cubes = cube_table([*WINDOW[::5], SEAM])
    got = dem_cubes(str(objects), cubes)
    for i, cube in cubes.iterrows():
        lon, lat = pixel_centres(cube)
        error = np.abs(got[i] - world.statics.elevation(lon, lat))
        tolerance = bilinear_tolerance(world, lon, lat)
        assert error.max() <= tolerance, (cube.cube_id, error.max(), tolerance)
        assert error.mean() < 0.5 * tolerance


def test_a_cube_on_four_tiles_has_no_seam(world: World, objects: Path) -> None:
    cube = cube_table([SEAM]).iloc[0]
    lon, lat = pixel_centres(cube)
    assert (lon.min() < 37 < lon.max()) and (lat.min() < -1 < lat.max())
    got = dem_cubes(str(objects), cube_table([SEAM]))[0]
    error = np.abs(got - world.statics.elevation(lon, lat))
    near_seam = (np.abs(lon - 37) < 2 * SRTM_PIXEL) | (np.abs(lat + 1) < 2 * SRTM_PIXEL)
    assert near_seam.sum() > 500
    assert error[near_seam].max() <= bilinear_tolerance(world, lon, lat)


def test_missing_tiles_raise_or_leave_nan_with_a_warning(objects: Path, tmp_path: Path) -> None:
    (tmp_path / "srtm").mkdir()
    shutil.copy(objects / "srtm" / "S02E036.tif", tmp_path / "srtm")
    cubes = cube_table([SEAM, (14, 14)])
    with pytest.raises(AssetNotFoundError, match=r"S01E036\.tif.*S01E037\.tif.*S02E037\.tif"):
        dem_cubes(str(tmp_path), cubes)
    with pytest.warns(IncompleteSourceWarning, match=r"37MBU0220 \(\d+ px\).*S01E037") as caught:
        got = dem_cubes(str(tmp_path), cubes, missing="nan")
    assert "37MBU1414" not in str(caught[0].message)
    lon, lat = pixel_centres(cubes.iloc[0])
    inside = (lon < 37 - 2 * SRTM_PIXEL) & (lat < -1 - 2 * SRTM_PIXEL)
    outside = (lon > 37 + SRTM_PIXEL) | (lat > -1 + SRTM_PIXEL)
    assert np.isfinite(got[0][inside]).all() and np.isnan(got[0][outside]).all()
    np.testing.assert_array_equal(got[1], dem_cubes(str(objects), cubes.iloc[[1]])[0])


def test_unreadable_tile_is_named(objects: Path, tmp_path: Path) -> None:
    (tmp_path / "srtm").mkdir()
    (tmp_path / "srtm" / "S02E036.tif").write_bytes(b"not a tiff" * 100)
    with pytest.raises(AssetReadError, match=r"S02E036\.tif"):
        dem_cubes(str(tmp_path), cube_table([(14, 14)]))


def test_served_over_s3_and_http_equals_local(
    replica_root: Path, replica_endpoints: Endpoints
) -> None:
    cubes = cube_table(WINDOW)
    want = dem_cubes(str(replica_root / "objects"), cubes)
    env = replica_endpoints.gdal_env()
    bucket = replica_endpoints.bucket
    first = len(read_access_log(replica_endpoints.access_log))
    np.testing.assert_array_equal(dem_cubes(f"s3://{bucket}", cubes, env), want)
    ranges = [r["range"] for r in read_access_log(replica_endpoints.access_log)[first:]]
    assert len(ranges) == len(set(ranges)) <= 8  # the tile opened once, no block fetched twice
    http = f"{replica_endpoints.s3_endpoint}/{bucket}"
    np.testing.assert_array_equal(dem_cubes(http, cubes), want)
    with pytest.raises(AssetNotFoundError, match=r"/vsis3/.*/nothing/srtm/S02E036\.tif"):
        dem_cubes(f"s3://{bucket}/nothing", cubes, env)
    with pytest.raises(AssetReadError, match="no-such-bucket") as caught:
        dem_cubes("s3://no-such-bucket", cubes, env, missing="nan")  # not a missing tile
    assert not isinstance(caught.value, AssetNotFoundError)
