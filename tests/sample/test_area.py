"""The area to sample: Africa's polygon, bbox and GeoJSON parsing, tiles of an area."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely

from cubestream.errors import AreaError, CubestreamError
from cubestream.grid import Tile, load_grid, tile
from cubestream.sample.area import (
    AFRICA,
    Area,
    dedupe_tiles,
    parse_area,
    tile_footprints,
    tiles_in_area,
)

INSIDE = {
    "Nairobi": (36.817, -1.286),
    "Lagos": (3.379, 6.524),
    "Cairo": (31.236, 30.044),
    "Alexandria": (29.919, 31.200),
    "Tunis": (10.182, 36.806),
    "Algiers": (3.059, 36.754),
    "Tangier": (-5.834, 35.759),
    "Cape Town": (18.424, -33.925),
    "Antananarivo": (47.508, -18.879),
    "Port Louis": (57.502, -20.161),
    "Victoria (Seychelles)": (55.452, -4.620),
    "Praia": (-23.509, 14.933),
    "Las Palmas": (-15.415, 28.124),
    "Dakar": (-17.447, 14.693),
    "Port Sudan": (37.217, 19.617),
    "Hurghada": (33.812, 27.258),
    "Djibouti": (43.145, 11.589),
    "Massawa": (39.450, 15.609),
    "Mogadishu": (45.318, 2.047),
    "Cape Guardafui": (51.20, 11.75),
    "Sao Tome": (6.730, 0.336),
    "Annobon": (5.620, -1.430),
    "Malabo (Bioko)": (8.781, 3.750),
    "Moroni (Comoros)": (43.256, -11.704),
    "Saint-Denis (Reunion)": (55.448, -20.882),
    "Dahlak Kebir": (40.100, 15.700),
    "Suez": (32.530, 29.970),
}
OUTSIDE = {
    "Madrid": (-3.704, 40.417),
    "Malaga": (-4.421, 36.721),
    "Palermo": (13.361, 38.116),
    "Valletta": (14.514, 35.899),
    "Lampedusa": (12.605, 35.508),
    "Athens": (23.728, 37.984),
    "Heraklion": (25.144, 35.339),
    "Nicosia": (33.382, 35.185),
    "Tel Aviv": (34.782, 32.085),
    "Sharm el-Sheikh": (34.330, 27.916),
    "Jeddah": (39.173, 21.543),
    "Sanaa": (44.207, 15.369),
    "Aden": (45.037, 12.800),
    "Hadibu (Socotra)": (54.020, 12.651),
    "Muscat": (58.405, 23.588),
    "Lisbon": (-9.139, 38.722),
    "Funchal": (-16.908, 32.651),
    "Jamestown (St Helena)": (-5.718, -15.925),
    "Pantelleria": (11.940, 36.830),
    "Gavdos": (24.080, 34.850),
    "Perim": (43.420, 12.650),
    "Abd al Kuri": (52.200, 12.170),
    "Selvagem Grande": (-15.870, 30.140),
    "Ponta Delgada (Azores)": (-25.675, 37.741),
}


@pytest.mark.parametrize(("name", "point"), INSIDE.items())
def test_africa_contains(name: str, point: tuple[float, float]) -> None:
    assert AFRICA.contains(np.array([point[0]]), np.array([point[1]]))[0], name


@pytest.mark.parametrize(("name", "point"), OUTSIDE.items())
def test_africa_excludes(name: str, point: tuple[float, float]) -> None:
    assert not AFRICA.contains(np.array([point[0]]), np.array([point[1]]))[0], name


def test_africa_polygon_is_coarse_and_valid() -> None:
    assert AFRICA.geometry.is_valid
    assert 40 <= len(AFRICA.geometry.exterior.coords) - 1 <= 70
    assert parse_area("africa") is AFRICA
    assert parse_area(" Africa ") is AFRICA
    assert parse_area() is AFRICA


def test_contains_is_vectorised() -> None:
    lon = np.array([[36.817, -3.704], [3.379, 39.173]])
    lat = np.array([[-1.286, 40.417], [6.524, 21.543]])
    inside = AFRICA.contains(lon, lat)
    assert inside.dtype == bool
    assert inside.tolist() == [[True, False], [True, False]]


def test_bbox_area() -> None:
    area = parse_area("35.5, -0.6, 36.5, 0.6")
    assert area.bbox() == (35.5, -0.6, 36.5, 0.6)
    assert area.name == "bbox(35.5, -0.6, 36.5, 0.6)"
    assert area.contains(np.array([36.0, 37.0]), np.array([0.0, 0.0])).tolist() == [True, False]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("36.5,-0.6,35.5,0.6", "min_lon < max_lon"),
        ("35.5,0.6,36.5,0.6", "min_lon < max_lon and min_lat < max_lat"),
        ("-181,0,10,10", "out of range"),
        ("0,-91,10,10", "out of range"),
        ("0,0,10,95", "out of range"),
        ("0,0,10", "not four numbers"),
        ("a,b,c,d", "not four numbers"),
        ("0,0,nan,1", "not four numbers"),
        ("europe", "neither 'africa'"),
        ("/no/such/area.geojson", "neither 'africa'"),
        ("0,85,10,88", "outside the Sentinel-2 grid"),
    ],
)
def test_bad_area_values(value: str, message: str) -> None:
    with pytest.raises(AreaError, match=message) as info:
        parse_area(value)
    assert value in str(info.value)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, CubestreamError)


def _write(path: Path, document: object) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def _square(lon: float, lat: float, size: float = 0.2) -> list[list[list[float]]]:
    return [
        [
            [lon, lat],
            [lon + size, lat],
            [lon + size, lat + size],
            [lon, lat + size],
            [lon, lat],
        ]
    ]


def test_geojson_feature_collection_is_union_of_polygons(tmp_path: Path) -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Point", "coordinates": [0, 0]},
            },
            {"type": "Feature", "properties": {}, "geometry": None},
            {
                "type": "Feature",
                "properties": {},
                "geometry": {"type": "Polygon", "coordinates": _square(36.0, -1.0)},
            },
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "MultiPolygon",
                    "coordinates": [_square(36.1, -1.0), _square(10.0, 10.0)],
                },
            },
        ],
    }
    area = parse_area(_write(tmp_path / "sites.geojson", document))
    assert area.name == "sites"
    assert isinstance(area.geometry, shapely.MultiPolygon)
    assert area.bbox() == pytest.approx((10.0, -1.0, 36.3, 10.2))
    assert area.geometry.area == pytest.approx(0.04 + 0.04 + 0.04 - 0.02)


def test_geojson_feature_and_bare_geometry(tmp_path: Path) -> None:
    polygon = {"type": "Polygon", "coordinates": _square(36.0, -1.0)}
    feature = {"type": "Feature", "properties": {"name": "x"}, "geometry": polygon}
    for name, document in (("feature", feature), ("geometry", polygon)):
        area = parse_area(_write(tmp_path / f"{name}.json", document))
        assert area.bbox() == pytest.approx((36.0, -1.0, 36.2, -0.8))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read the GeoJSON"),
        ('["a list"]', "not valid GeoJSON"),
        ('{"type": "Polygon"}', "not valid GeoJSON"),
        ('{"type": "FeatureCollection"}', "not valid GeoJSON"),
        ('{"type": "Polygon", "coordinates": [[[0, 0], [1]]]}', "not valid GeoJSON"),
        ('{"type": "Point", "coordinates": [36, -1]}', "holds no Polygon"),
        ('{"type": "FeatureCollection", "features": []}', "holds no Polygon"),
        (
            '{"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}',
            "not a valid polygon",
        ),
        (
            '{"type": "Polygon", "coordinates": '
            "[[[500000, 0], [600000, 0], [600000, 9e5], [500000, 0]]]}",
            r"outside \[-180, 180\] x \[-90, 90\]",
        ),
    ],
)
def test_bad_geojson(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "area.geojson"
    path.write_text(content)
    with pytest.raises(AreaError, match=message) as info:
        parse_area(str(path))
    assert str(path) in str(info.value)


def test_geojson_outside_grid(tmp_path: Path) -> None:
    polygon = {"type": "Polygon", "coordinates": _square(0.0, 86.0, 1.0)}
    with pytest.raises(AreaError, match="outside the Sentinel-2 grid"):
        parse_area(_write(tmp_path / "pole.geojson", polygon))


def test_area_rejects_bad_geometry() -> None:
    with pytest.raises(AreaError, match="expected a shapely Polygon"):
        Area(name="p", geometry=shapely.Point(0, 0))
    with pytest.raises(AreaError, match="empty"):
        Area(name="e", geometry=shapely.Polygon())


def test_tile_footprint_matches_grid_bounds() -> None:
    tiles = [tile(t) for t in ("37MBU", "31UDQ", "34HBH", "37NBA")]
    for t, footprint in zip(tiles, tile_footprints(tiles), strict=True):
        assert footprint.is_valid
        assert footprint.bounds == pytest.approx(
            (t.min_lon, t.min_lat, t.max_lon, t.max_lat), abs=2e-4
        )


def test_tiles_in_area_nairobi() -> None:
    area = parse_area("36.7,-1.4,36.9,-1.2")
    ids = [t.tile_id for t in tiles_in_area(area)]
    assert ids == sorted(ids)
    assert "37MBU" in ids
    for t, footprint in zip(tiles_in_area(area), tile_footprints(tiles_in_area(area)), strict=True):
        assert footprint.intersects(area.geometry), t.tile_id


def test_tiles_in_area_uses_footprints_not_bounds() -> None:
    # a thin triangle along the equator at 36.1E: the WGS84 bounds of 37MBV/37NBA (36.30E..)
    # miss it, as do the footprints; the zone-36 tiles hold it.
    area = Area(name="strip", geometry=shapely.Polygon([(36.0, -0.05), (36.2, 0.0), (36.0, 0.05)]))
    ids = {t.tile_id for t in tiles_in_area(area)}
    assert ids == {"36MZE", "36NZF"}


def test_tiles_in_africa() -> None:
    ids = {t.tile_id for t in tiles_in_area(AFRICA)}
    assert 3000 < len(ids) < 6000
    # Cape Verde, Mauritius, Seychelles (Mahe), Madagascar, Canaries; not Madeira, St Helena
    assert {"27PTS", "40KEC", "40MCV", "38KQE", "28RDS", "37MBU"} <= ids
    assert not {"28SCB", "29LRC", "30LTH", "39PZQ"} & ids


def test_dedupe_keeps_first_id_per_square() -> None:
    north = tile("37NBA")  # square [200 km, 300 km] x [0, 100 km]
    south_twin = Tile(
        tile_id="37MZZ",
        epsg=32737,
        x0=200000.0,
        y0=10_100_000.0,
        min_lon=north.min_lon,
        min_lat=north.min_lat,
        max_lon=north.max_lon,
        max_lat=north.max_lat,
    )
    band_twin = Tile(**{**north.__dict__, "tile_id": "37NBZ", "y0": 100040.0})
    other = tile("37NBB")
    kept = dedupe_tiles([other, band_twin, north, south_twin, north])
    assert [t.tile_id for t in kept] == ["37MZZ", "37NBB"]


def test_official_grid_has_one_tile_per_square() -> None:
    tiles = [Tile(**record) for record in load_grid().to_dict("records")]
    assert len(dedupe_tiles(tiles)) == len(tiles)
