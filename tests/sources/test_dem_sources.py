"""Every kind of DEM source gives the cube DEM of today's SRTM layout; clear errors otherwise.

The replica writes the same terrain in each naming. SRTM ``.tif``, ``.hgt`` and ``.hgt.zip`` hold
the same int16 values on the same lattice, so they give the same cubes bit for bit. The
Copernicus tiles have the same pixel centres (the real COGs only drop the shared east column and
south row) but hold the terrain unrounded as float32, where SRTM rounds it to whole metres: at
3 arc-seconds (GLO-90) the two differ by at most that rounding, 0.5 m, and bilinear weights (a
convex combination) keep that bound. At 1 arc-second (GLO-30) the grid is finer, so the
comparison is with the terrain itself, within what bilinear resampling of that grid allows; a
half-pixel (15 m) misregistration, which the pixel-is-point convention invites, would break it.
"""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from pyproj import Transformer

from cubestream import grid
from cubestream.errors import AssetNotFoundError, IncompleteSourceWarning, SourceKindError
from cubestream.l1.dem import dem_cubes
from cubestream.replica.spec import ReplicaSpec, preset
from cubestream.replica.srtm import (
    copernicus_lon_factor,
    write_copernicus,
    write_hgt,
    write_srtm,
)
from cubestream.replica.world import World
from cubestream.sources.dem import RasterSource, StacSource, TileFolder, open_dem_source

REAL_ITEM = (
    Path(__file__).parents[1]
    / "data"
    / "real"
    / "stactools-cop-dem__cop-dem-glo-30_N53W115_TRIMMED.json"
)
S02E036 = (36.0, -2.0, 37.0, -1.0)
WINDOW = [(r, c) for r in range(12, 16, 3) for c in range(12, 16, 3)]  # inside S02E036
SEAM = (2, 20)  # meets S01E036, S01E037, S02E036, S02E037


def cube_table(cells: list[tuple[int, int]]) -> pd.DataFrame:
    """Boxes ``(row, col)`` of tile 37MBU."""
    tile = grid.tile("37MBU")
    records = []
    for row, col in cells:
        x_min, y_max = tile.x0 + col * 3840, tile.y0 - row * 3840
        records.append(
            {
                "cube_id": f"37MBU{row:02d}{col:02d}",
                "epsg": tile.epsg,
                "x_min": x_min,
                "y_min": y_max - 3840,
                "x_max": x_min + 3840,
                "y_max": y_max,
            }
        )
    return pd.DataFrame(records)


@pytest.fixture(scope="module")
def world() -> World:
    return World(ReplicaSpec.from_dict({**preset("tiny").to_dict(), "end": "2021-12-02"}))


@pytest.fixture(scope="module")
def objects(world: World, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The world's DEM as SRTM COGs, zipped and bare HGT, GLO-90 and GLO-30 COGs."""
    root = tmp_path_factory.mktemp("dem-objects")
    write_srtm(world, root / "today")
    write_hgt(world, root, zipped=True, folder="hgtzip", bbox=S02E036)
    write_hgt(world, root, folder="hgt", bbox=S02E036)
    write_copernicus(world, root, arcsec=3, folder="glo90")
    write_copernicus(world, root, arcsec=1, folder="glo30", tile_folders=False, bbox=S02E036)
    return root


@pytest.fixture(scope="module")
def today(objects: Path) -> np.ndarray:
    return dem_cubes(str(objects / "today"), cube_table([*WINDOW, SEAM]))


def test_the_kind_is_read_from_the_location(objects: Path) -> None:
    cases = {
        "today": ("srtm", "srtm/{srtm}.tif"),
        "hgtzip": ("srtm", "{srtm}.hgt.zip"),
        "hgt": ("srtm", "{srtm}.hgt"),
        "glo90": (
            "copernicus",
            "Copernicus_DSM_COG_30_{cop}_DEM/Copernicus_DSM_COG_30_{cop}_DEM.tif",
        ),
        "glo30": ("copernicus", "Copernicus_DSM_COG_10_{cop}_DEM.tif"),
    }
    for folder, (kind, pattern) in cases.items():
        source = open_dem_source(str(objects / folder))
        assert isinstance(source, TileFolder) and not source.probing
        assert (source.kind, source.patterns) == (kind, (pattern,)), folder
    assert isinstance(open_dem_source(str(REAL_ITEM)), StacSource)
    stac = open_dem_source("stac+https://earth-search.aws.element84.com/v1")
    assert isinstance(stac, StacSource) and stac.collection == "cop-dem-glo-30"
    named = open_dem_source("stac+https://host/api#my-dem")
    assert isinstance(named, StacSource) and named.collection == "my-dem"
    assert isinstance(open_dem_source("https://host/dem/africa.vrt"), RasterSource)
    remote = open_dem_source("s3://copernicus-dem-30m", "copernicus")
    assert isinstance(remote, TileFolder) and remote.probing
    assert all(p.startswith("Copernicus") for p in remote.patterns)


def test_every_srtm_naming_gives_todays_dem(objects: Path, today: np.ndarray) -> None:
    inside = cube_table(WINDOW)
    for folder in ("hgtzip", "hgt"):
        got = dem_cubes(str(objects / folder), inside)
        np.testing.assert_array_equal(got, today[: len(WINDOW)], err_msg=folder)
    assert np.isfinite(today).all()


def test_glo90_equals_srtm_within_the_rounding_of_srtm(objects: Path, today: np.ndarray) -> None:
    got = dem_cubes(str(objects / "glo90"), cube_table([*WINDOW, SEAM]))
    assert np.isfinite(got).all()  # the seam cube meets four tiles without shared edges
    assert np.abs(got - today).max() <= 0.5 + 1e-3
    assert np.abs(got - today).mean() > 0.1  # really another raster: unrounded


def test_glo30_on_the_terrain_whatever_the_point_convention_setting(
    world: World, objects: Path
) -> None:
    cubes = cube_table(WINDOW)
    got = dem_cubes(str(objects / "glo30"), cubes)
    pixel = 1 / 3600
    for i, cube in cubes.iterrows():
        xs = cube.x_min + 15 + 30 * np.arange(128)
        ys = cube.y_max - 15 - 30 * np.arange(128)
        to_ll = Transformer.from_crs(int(cube.epsg), 4326, always_xy=True)
        lon, lat = (np.asarray(v) for v in to_ll.transform(*np.meshgrid(xs, ys)))
        d = pixel / 8
        fine = np.meshgrid(
            np.arange(lon.min() - pixel, lon.max() + pixel, d),
            np.arange(lat.min() - pixel, lat.max() + pixel, d),
        )
        z = world.statics.elevation(*fine).astype(np.float64)
        curvature = np.abs(np.diff(z, 2, 1)).max() + np.abs(np.diff(z, 2, 0)).max()
        tolerance = pixel**2 * curvature / d**2 / 8 + 0.01
        error = np.abs(got[i] - world.statics.elevation(lon, lat))
        assert error.max() <= tolerance, (cube.cube_id, error.max(), tolerance)
    # GDAL can be told to ignore PixelIsPoint (a half-pixel shift); the reader does not let it
    shifted_env = {"GTIFF_POINT_GEO_IGNORE": "YES"}
    np.testing.assert_array_equal(dem_cubes(str(objects / "glo30"), cubes, shifted_env), got)


def _vrt(tiles: list[Path], size: int, path: Path) -> None:
    """A VRT mosaic of 2 x 2 SRTM tiles sharing their edges (what gdalbuildvrt writes)."""
    step = size - 1
    res = 1 / step
    sources = []
    for tile in tiles:
        name = tile.stem
        lat = (1 if name[0] == "N" else -1) * int(name[1:3])
        lon = (1 if name[3] == "E" else -1) * int(name[4:7])
        col, row = (lon - 36) * step, (-1 - lat) * step
        sources.append(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{tile}</SourceFilename>'
            f"<SourceBand>1</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>'
            f'<DstRect xOff="{col}" yOff="{row}" xSize="{size}" ySize="{size}"/></SimpleSource>'
        )
    width = 2 * step + 1
    path.write_text(
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{width}"><SRS>EPSG:4326</SRS>'
        f"<GeoTransform>{36 - res / 2}, {res}, 0, {0 + res / 2}, 0, {-res}</GeoTransform>"
        f'<VRTRasterBand dataType="Int16" band="1"><NoDataValue>-32768</NoDataValue>'
        f"{''.join(sources)}</VRTRasterBand></VRTDataset>"
    )


def test_a_vrt_over_the_srtm_tiles_equals_the_folder_read(
    objects: Path, today: np.ndarray, tmp_path: Path
) -> None:
    tiles = sorted((objects / "today" / "srtm").glob("*.tif"))
    assert len(tiles) == 4
    vrt = tmp_path / "mosaic.vrt"
    _vrt(tiles, 1201, vrt)
    source = open_dem_source(str(vrt))
    assert isinstance(source, RasterSource)
    np.testing.assert_array_equal(dem_cubes(source, cube_table([*WINDOW, SEAM])), today)


def test_a_raster_in_another_crs_is_warped_from_its_own_grid(objects: Path, tmp_path: Path) -> None:
    """A UTM raster on the cubes' own 30 m grid gives its pixels back (bilinear at the centres)."""
    block = [(12, 12), (12, 13), (13, 12), (13, 13)]
    cubes = cube_table(block)
    values = dem_cubes(str(objects / "today"), cubes)
    mosaic = np.block([[values[0], values[1]], [values[2], values[3]]])
    x0, y0 = float(cubes.x_min.min()), float(cubes.y_max.max())
    path = tmp_path / "utm.tif"
    profile = {
        "driver": "GTiff",
        "width": 256,
        "height": 256,
        "count": 1,
        "dtype": "float32",
        "crs": f"EPSG:{cubes.epsg.iloc[0]}",
        "transform": Affine(30.0, 0.0, x0, 0.0, -30.0, y0),
        "nodata": float("nan"),
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mosaic, 1)
    source = open_dem_source(str(path))
    assert isinstance(source, RasterSource)
    np.testing.assert_allclose(dem_cubes(source, cubes), values, atol=1e-3)
    outside = cube_table([(20, 20)])
    with pytest.warns(IncompleteSourceWarning, match="37MBU2020"):
        assert np.isnan(dem_cubes(source, outside)).all()


def _replica_items(template: dict, keys: list[Path]) -> list[dict]:
    """``cop-dem-glo-30`` items in the real schema for the replica's tiles."""
    items = []
    for key in keys:
        item = json.loads(json.dumps(template))
        stem = key.stem
        lat = (1 if stem.split("_")[4][0] == "N" else -1) * int(stem.split("_")[4][1:])
        lon = (1 if stem.split("_")[6][0] == "E" else -1) * int(stem.split("_")[6][1:])
        res = 3 / 3600
        west, north = lon - res / 2, lat + 1 + res / 2
        item["id"] = stem
        item["bbox"] = [west, north - 1, west + 1, north]
        item["geometry"]["coordinates"] = [
            [[west + 1, north - 1], [west + 1, north], [west, north], [west, north - 1]]
        ]
        item["properties"]["proj:transform"] = [res, 0.0, west, 0.0, -res, north]
        item["properties"]["proj:shape"] = [1200, 1200]
        item["assets"]["data"]["href"] = str(key)
        items.append(item)
    return items


def test_a_stac_items_file_of_cop_dem_glo_30(objects: Path, tmp_path: Path) -> None:
    real = json.loads(REAL_ITEM.read_text())
    # the real item: its tile found by the cubes' bounds, its relative href resolved
    source = open_dem_source(str(REAL_ITEM))
    boxes = np.array([[-114.6, 53.4, -114.5, 53.5], [36.2, -1.8, 36.3, -1.7]])
    found = source.rasters(boxes)
    assert found[1] == [] and len(found[0]) == 1
    assert found[0][0].endswith("tests/data-files/external/" + real["id"] + ".tif")
    # its pixel grid: centres on the degree lines, 1.5 x wider in longitude at 53 degrees N
    xres, _, west, _, yres, north = real["properties"]["proj:transform"]
    assert (west + xres / 2, north + yres / 2) == pytest.approx((-115.0, 54.0))
    assert xres / -yres == pytest.approx(copernicus_lon_factor(53))
    assert real["properties"]["proj:shape"] == [round(1 / -yres), round(1 / xres)]
    # the replica's tiles served through items of the same schema
    keys = sorted((objects / "glo90").rglob("*.tif"))
    items = {"type": "FeatureCollection", "features": _replica_items(real, keys)}
    path = tmp_path / "cop-dem.json"
    path.write_text(json.dumps(items))
    cubes = cube_table([*WINDOW, SEAM])
    want = dem_cubes(str(objects / "glo90"), cubes)
    np.testing.assert_array_equal(dem_cubes(str(path), cubes), want)
    ndjson = tmp_path / "cop-dem.ndjson"
    ndjson.write_text("\n".join(json.dumps(i) for i in items["features"]))
    np.testing.assert_array_equal(dem_cubes(str(ndjson), cubes, kind="stac"), want)
    with pytest.raises(SourceKindError, match="no item of collection 'other'"):
        dem_cubes(f"{path}#other", cubes)


def test_missing_copernicus_tiles_over_the_ocean_stay_nan(objects: Path, tmp_path: Path) -> None:
    kept = "Copernicus_DSM_COG_30_S02_00_E036_00_DEM"
    shutil.copytree(objects / "glo90" / kept, tmp_path / kept)
    cubes = cube_table([SEAM])
    with pytest.raises(AssetNotFoundError, match=r"Copernicus_DSM_COG_30_S01_00_E037_00_DEM\.tif"):
        dem_cubes(str(tmp_path), cubes)
    with pytest.warns(IncompleteSourceWarning, match=r"37MBU0220 \(\d+ px\).*S01_00_E037"):
        got = dem_cubes(str(tmp_path), cubes, missing="nan")
    assert np.isnan(got).any() and np.isfinite(got).any()


def test_empty_unknown_or_mixed_sources_are_clear_errors(objects: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AssetNotFoundError, match=r"no DEM tiles in the folder .*empty.*\{srtm\}"):
        open_dem_source(str(empty))
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "elevation_S02_E036.tif").write_bytes(b"")
    with pytest.raises(AssetNotFoundError, match=r"unknown: looked for srtm/\{srtm\}\.tif"):
        open_dem_source(str(unknown))
    with pytest.raises(AssetNotFoundError, match=r"Copernicus_DSM_COG_10_\{cop\}_DEM\.tif"):
        open_dem_source(str(objects / "today"), "copernicus")
    mixed = tmp_path / "mixed"
    shutil.copytree(objects / "hgt", mixed)
    shutil.copy(objects / "hgtzip" / "S02E036.hgt.zip", mixed)
    with pytest.raises(SourceKindError, match=r"several namings \(1 x \{srtm\}\.hgt, 1 x"):
        open_dem_source(str(mixed))
    with pytest.raises(SourceKindError, match="kind 'lidar' unknown"):
        open_dem_source(str(mixed), "lidar")  # type: ignore[arg-type]
    notes = tmp_path / "dem.txt"
    notes.write_text("not a raster")
    with pytest.raises(SourceKindError, match=r"dem\.txt is a file of no kind known"):
        open_dem_source(str(notes))
    with pytest.raises(AssetNotFoundError, match="neither a file nor a folder"):
        open_dem_source(str(tmp_path / "nowhere"))


class _StacApi(BaseHTTPRequestHandler):
    """A minimal STAC API: a landing page and an item search over ``items`` (bbox, collections)."""

    items: ClassVar[list[dict]] = []
    searches: ClassVar[list[dict]] = []

    def _send(self, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _search(self, query: dict) -> None:
        type(self).searches.append(query)
        box = [float(v) for v in query["bbox"]]
        features = [
            item
            for item in self.items
            if item["collection"] in query["collections"]
            and item["bbox"][0] < box[2]
            and box[0] < item["bbox"][2]
            and item["bbox"][1] < box[3]
            and box[1] < item["bbox"][3]
        ]
        self._send({"type": "FeatureCollection", "features": features, "links": []})

    def do_GET(self) -> None:
        base = f"http://{self.headers['Host']}"
        if self.path.startswith("/search"):
            query = parse_qs(urlparse(self.path).query)
            self._search(
                {
                    "bbox": query["bbox"][0].split(","),
                    "collections": query["collections"][0].split(","),
                }
            )
            return
        self._send(
            {
                "type": "Catalog",
                "id": "dem-api",
                "description": "test",
                "stac_version": "1.0.0",
                "conformsTo": [
                    "https://api.stacspec.org/v1.0.0/core",
                    "https://api.stacspec.org/v1.0.0/item-search",
                ],
                "links": [
                    {"rel": "self", "href": base + "/", "type": "application/json"},
                    {"rel": "root", "href": base + "/", "type": "application/json"},
                    {
                        "rel": "search",
                        "href": base + "/search",
                        "type": "application/geo+json",
                        "method": "GET",
                    },
                    {
                        "rel": "search",
                        "href": base + "/search",
                        "type": "application/geo+json",
                        "method": "POST",
                    },
                ],
            }
        )

    def do_POST(self) -> None:
        self._search(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

    def log_message(self, *args: object) -> None:
        pass


def test_a_stac_api_of_cop_dem_glo_30(objects: Path) -> None:
    real = json.loads(REAL_ITEM.read_text())
    _StacApi.items = _replica_items(real, sorted((objects / "glo90").rglob("*.tif")))
    _StacApi.searches = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StacApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"stac+http://127.0.0.1:{server.server_address[1]}"
        cubes = cube_table([*WINDOW, SEAM])
        want = dem_cubes(str(objects / "glo90"), cubes)
        np.testing.assert_array_equal(dem_cubes(url, cubes), want)
        assert len(_StacApi.searches) == 1  # one search for all the cubes of the call
        with pytest.warns(IncompleteSourceWarning, match="no DEM elevation"):
            got = dem_cubes(url + "#cop-dem-glo-90", cubes, missing="nan")
        assert np.isnan(got).all()  # no item of that collection: nothing found, said so
    finally:
        server.shutdown()
        server.server_close()
