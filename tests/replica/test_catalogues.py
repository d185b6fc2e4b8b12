"""The replica's items follow each real catalogue's schema, and its mislabels are the known ones.

Schemas are compared with the real items under ``tests/data/real/stac/`` (key sets, asset keys,
``raster:bands`` shape, id patterns), never with the replica's own constants. Which items are
mislabelled is checked against the pixels: the ``BOA_ADD_OFFSET`` tag of the COGs.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from cubestream import grid
from cubestream.cli import build_parser
from cubestream.errors import ReplicaError
from cubestream.replica import layout
from cubestream.replica._stacdocs import read_stac, write_served_stac
from cubestream.replica.catalogues import (
    COLLECTIONS,
    MISLABELLABLE,
    catalogue_item,
)
from cubestream.replica.probe import search_stac
from cubestream.replica.spec import BAND_RESOLUTION, CATALOGUES, ReplicaSpec, Window, load_spec
from cubestream.replica.stac import item as canonical_item
from cubestream.replica.world import Acquisition, World
from cubestream.testing import start_replica_server, stop_replica_server

REAL = Path(__file__).parents[1] / "data" / "real" / "stac"
ID_PATTERNS = {
    "earth-search": r"^S2[ABC]_\d{2}[C-X][A-Z]{2}_\d{8}_\d+_L2A$",
    "earth-search-c1": r"^S2[ABC]_T\d{2}[C-X][A-Z]{2}_\d{8}T\d{6}_L2A$",
    "planetary-computer": r"^S2[ABC]_MSIL2A_\d{8}T\d{6}_R\d{3}_T\d{2}[C-X][A-Z]{2}_\d{8}T\d{6}$",
    "cdse": r"^S2[ABC]_MSIL2A_\d{8}T\d{6}_N\d{4}_R\d{3}_T\d{2}[C-X][A-Z]{2}_\d{8}T\d{6}$",
}
PDI_GRANULE = re.compile(
    r"^S2[ABC]_OPER_MSI_L2A_TL_[0-9A-Z]{4}_\d{8}T\d{6}_A\d{6}_T(\d{2}[C-X][A-Z]{2})_N\d{2}\.\d{2}$"
)
REFLECTANCE_KEY = {"earth-search": "blue", "earth-search-c1": "blue"}
REFLECTANCE_KEY |= {"planetary-computer": "B02", "cdse": "B02_10m"}
SCL_KEY = {"earth-search": "scl", "earth-search-c1": "scl", "planetary-computer": "SCL"}
SCL_KEY |= {"cdse": "SCL_20m"}
FILE_KEYS = {"file:size", "file:checksum"}  # recorded by `replica create`, not by stac.item


def _real(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((REAL / name).read_text(encoding="utf-8"))
    return data


REAL_ITEMS = {
    "earth-search-2023": _real("earth-search-v1_2023_S2A_39QTA_20230628_0_L2A.json"),
    "earth-search-2025": _real("earth-search-v1_2025_S2B_20EPT_20250731_0_L2A.json"),
    "earth-search-c1": _real("earth-search-c1_S2B_T38XNF_20250422T091553_L2A.json"),
    "planetary-computer": _real(
        "planetary-computer_S2B_MSIL2A_20240825T173909_R098_T13TDE_20240825T215747.json"
    ),
    "cdse": _real("cdse_S2C_MSIL2A_20250330T100051_N0511_R122_T33UWP_20250330T145914_TRIMMED.json"),
}


def _real_for(item: dict[str, Any], catalogue: str) -> dict[str, Any]:
    """The real sample of the item's catalogue (Earth Search v1: of the item's generation)."""
    if catalogue == "earth-search":
        generation = "2025" if "s2:tile_id" in item["properties"] else "2023"
        return REAL_ITEMS[f"earth-search-{generation}"]
    return REAL_ITEMS[catalogue]


def _claimed_offset(item: dict[str, Any], catalogue: str) -> int:
    """The DN offset a reader following the catalogue's own label would subtract."""
    props = item["properties"]
    if catalogue == "planetary-computer":
        return 1000 if props["s2:processing_baseline"] >= "04.00" else 0
    asset = item["assets"][REFLECTANCE_KEY[catalogue]]
    if catalogue == "cdse":
        return round(-asset["raster:offset"] / asset["raster:scale"])
    if props.get("earthsearch:boa_offset_applied", False):
        return 0  # Earth Search: the flag is the truth, raster:bands is not updated
    band = asset["raster:bands"][0]
    return round(-band["offset"] / band["scale"])


def _canonical(day: dt.date, baseline: str, sequence: int = 0) -> dict[str, Any]:
    """A canonical replica item (``stac.item``) without rendering any pixel."""
    tile = grid.tile("37MBU")
    acq = Acquisition(
        tile_id="37MBU",
        day=day,
        satellite="S2B",
        sequence=sequence,
        baseline=baseline,
        part="full",
        swath_edge=0.0,
    )
    window = Window(row=1536, col=1536, height=64, width=64)
    scl = np.full((64, 64), 4, dtype=np.uint8)
    scl[:8] = 9
    return canonical_item(
        acq,
        tile,
        hrefs={name: f"/replica/objects/{name}.tif" for name in BAND_RESOLUTION},
        shapes={name: (3660, 3660) for name in BAND_RESOLUTION},
        resolutions=dict.fromkeys(BAND_RESOLUTION, 30),
        scl=scl,
        window=window,
        covered=np.ones((64, 64), dtype=bool),
    )


# days with an odd and an even ordinal: both Earth Search v1 generations
CASES = [
    (dt.date(2022, 1, 10), "03.01"),
    (dt.date(2022, 1, 15), "03.01"),
    (dt.date(2022, 2, 4), "04.00"),
    (dt.date(2022, 2, 9), "04.00"),
]


def _assert_schema(mine: dict[str, Any], real: dict[str, Any], catalogue: str, exact: bool):
    """Key sets of the item, its properties and its assets equal those of the real item."""
    assert set(mine) == set(real)
    assert set(mine["properties"]) == set(real["properties"])
    assert mine["stac_version"] == real["stac_version"]
    assert sorted(mine["stac_extensions"]) == sorted(real["stac_extensions"])
    assert mine["collection"] == real["collection"] == COLLECTIONS[catalogue]
    assert len(mine["assets"]) == 10
    for key, asset in mine["assets"].items():
        kind = SCL_KEY[catalogue] if key == SCL_KEY[catalogue] else REFLECTANCE_KEY[catalogue]
        if catalogue != "cdse":  # the CDSE sample is trimmed: compare with the same kind
            assert key in real["assets"], key
            kind = key
        expected = set(real["assets"][kind])
        assert set(asset) == (expected if exact else expected - FILE_KEYS), key
        for member in ("raster:bands", "eo:bands", "bands"):
            if member in expected:
                assert [set(b) for b in asset[member]] == [
                    set(b) for b in real["assets"][kind][member]
                ], (key, member)
    if catalogue == "cdse":
        assert all(re.fullmatch(r"(B0[2-8]|B8A|B1[12])_[12]0m|SCL_20m", k) for k in mine["assets"])


@pytest.mark.parametrize("catalogue", CATALOGUES)
@pytest.mark.parametrize(("day", "baseline"), CASES)
def test_items_have_the_real_schema(catalogue: str, day: dt.date, baseline: str) -> None:
    canonical = _canonical(day, baseline)
    before = copy.deepcopy(canonical)
    mine = catalogue_item(canonical, catalogue)
    assert canonical == before, "catalogue_item must not modify its input"
    _assert_schema(mine, _real_for(mine, catalogue), catalogue, exact=False)
    assert re.fullmatch(ID_PATTERNS[catalogue], mine["id"])
    assert mine["geometry"] == canonical["geometry"]
    assert mine["bbox"] == canonical["bbox"]
    assert mine["properties"]["datetime"] == canonical["properties"]["datetime"]
    assert mine["properties"]["eo:cloud_cover"] == canonical["properties"]["eo:cloud_cover"]
    hrefs = {a["href"] for a in mine["assets"].values()}
    assert hrefs == {a["href"] for a in canonical["assets"].values()}
    offset = 1000 if baseline >= "04.00" else 0
    assert _claimed_offset(mine, catalogue) == offset


def test_real_ids_match_the_patterns() -> None:
    for name, real in REAL_ITEMS.items():
        catalogue = "earth-search" if name.startswith("earth-search-20") else name
        assert re.fullmatch(ID_PATTERNS[catalogue], real["id"]), name


def test_both_earth_search_generations_occur() -> None:
    items = [catalogue_item(_canonical(day, b), "earth-search") for day, b in CASES[:2]]
    assert {"s2:tile_id" in i["properties"] for i in items} == {True, False}
    assert {"s2:granule_id" in i["properties"] for i in items} == {True, False}


@pytest.mark.parametrize("catalogue", ["earth-search", "earth-search-c1", "planetary-computer"])
def test_granule_id_is_the_long_pdi_id_of_the_tile(catalogue: str) -> None:
    for day, baseline in CASES:
        props = catalogue_item(_canonical(day, baseline), catalogue)["properties"]
        pdi = props.get("s2:tile_id", props.get("s2:granule_id"))
        match = PDI_GRANULE.fullmatch(pdi)
        assert match is not None, pdi
        assert match.group(1) == "37MBU"
        assert pdi.endswith(f"_N{baseline}")
        assert props.get("s2:mgrs_tile", "37MBU") == "37MBU"
    for real in (REAL_ITEMS["earth-search-2025"], REAL_ITEMS["earth-search-c1"]):
        match = PDI_GRANULE.fullmatch(real["properties"]["s2:tile_id"])
        assert match is not None
        assert f"MGRS-{match.group(1)}" == real["properties"]["grid:code"]


def test_split_datatake_items_get_distinct_ids() -> None:
    day = dt.date(2022, 2, 4)
    for catalogue in CATALOGUES:
        ids = {catalogue_item(_canonical(day, "04.00", seq), catalogue)["id"] for seq in (0, 1)}
        assert len(ids) == 2, catalogue


@pytest.mark.parametrize("catalogue", MISLABELLABLE)
def test_mislabel_claims_the_opposite_of_the_pixels(catalogue: str) -> None:
    canonical = _canonical(dt.date(2022, 2, 4), "04.00")
    wrong = catalogue_item(canonical, catalogue, mislabel=True)
    right = catalogue_item(canonical, catalogue)
    assert _claimed_offset(right, catalogue) == 1000
    assert _claimed_offset(wrong, catalogue) == 0
    assert wrong["id"] == right["id"]
    if catalogue == "earth-search":  # the real error: the flag, with raster:bands unchanged
        assert wrong["properties"]["earthsearch:boa_offset_applied"] is True
        assert wrong["assets"] == right["assets"]


def test_impossible_mislabels_are_refused() -> None:
    late = _canonical(dt.date(2022, 2, 4), "04.00")
    for catalogue in ("planetary-computer", "cdse"):
        with pytest.raises(ReplicaError, match="no offset label"):
            catalogue_item(late, catalogue, mislabel=True)
    with pytest.raises(ReplicaError, match=r"baseline 03\.01"):
        catalogue_item(_canonical(dt.date(2022, 1, 10), "03.01"), "earth-search", mislabel=True)
    with pytest.raises(ReplicaError, match="unknown catalogue 'usgs'"):
        catalogue_item(late, "usgs")
    with pytest.raises(ReplicaError, match="not a canonical replica item"):
        catalogue_item(REAL_ITEMS["earth-search-2025"], "cdse")


def test_spec_checks_catalogue_and_mislabels() -> None:
    with pytest.raises(ReplicaError, match="unknown catalogue"):
        ReplicaSpec(catalogue="earth-search-v0")
    with pytest.raises(ReplicaError, match="mislabelled_offsets"):
        ReplicaSpec(mislabelled_offsets=-1)
    spec = ReplicaSpec(catalogue="cdse", mislabelled_offsets=3)
    assert ReplicaSpec.from_dict(spec.to_dict()) == spec


def test_mislabelled_days_are_seeded_and_late() -> None:
    world = World(ReplicaSpec(mislabelled_offsets=2))
    days = world.mislabelled_days("37MBU")
    assert len(days) == 2
    assert all(day >= world.spec.baseline_change for day in days)
    assert days == World(ReplicaSpec(mislabelled_offsets=2)).mislabelled_days("37MBU")
    assert World(ReplicaSpec(mislabelled_offsets=0)).mislabelled_days("37MBU") == frozenset()


def test_cli_options_reach_the_spec(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[ReplicaSpec] = []
    monkeypatch.setattr(
        "cubestream.replica.create.create_replica",
        lambda root, spec, **kwargs: seen.append(spec),
    )
    args = build_parser().parse_args(
        ["replica", "create", str(tmp_path), "--catalogue", "cdse", "--mislabelled-offsets", "0"]
    )
    assert args.func(args) == 0
    assert (seen[0].catalogue, seen[0].mislabelled_offsets) == ("cdse", 0)
    serve = build_parser().parse_args(["replica", "serve", "d", "--catalogue", "earth-search-c1"])
    assert serve.catalogue == "earth-search-c1"


# ---- the written replica ------------------------------------------------------------------


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _pixel_offset(href: str, cache: dict[str, int]) -> int:
    """The DN offset the COG's pixels carry, from its ``BOA_ADD_OFFSET`` tag."""
    if href not in cache:
        with rasterio.open(href) as src:
            cache[href] = -int(src.tags()["BOA_ADD_OFFSET"])
    return cache[href]


def test_written_catalogues_mislabel_exactly_the_manifest_ids(replica_root: Path) -> None:
    manifest = json.loads((replica_root / "replica.json").read_text())["mislabelled_offsets"]
    world = World(load_spec(replica_root))
    cache: dict[str, int] = {}
    for catalogue in CATALOGUES:
        items_file, truth_file, _ = layout.catalogue_files(catalogue)
        items = _lines(replica_root / items_file)
        wrong = [
            i["id"]
            for i in items
            if _claimed_offset(i, catalogue)
            != _pixel_offset(i["assets"][REFLECTANCE_KEY[catalogue]]["href"], cache)
        ]
        assert wrong == manifest[catalogue], catalogue
        truth = _lines(replica_root / truth_file)
        assert [i["id"] for i in truth] == [i["id"] for i in items]
        assert all(
            _claimed_offset(i, catalogue)
            == _pixel_offset(i["assets"][REFLECTANCE_KEY[catalogue]]["href"], cache)
            for i in truth
        )
        for item in items:
            _assert_schema(item, _real_for(item, catalogue), catalogue, exact=True)
    expected_days = world.mislabelled_days(world.spec.tiles[0])
    assert len(expected_days) == world.spec.mislabelled_offsets == 1
    es_items = _lines(replica_root / layout.catalogue_files("earth-search")[0])
    days = {
        i["properties"]["datetime"][:10] for i in es_items if i["id"] in manifest["earth-search"]
    }
    assert days == {d.isoformat() for d in expected_days}
    assert len(manifest["earth-search-c1"]) == len(manifest["earth-search"]) >= 1
    assert manifest["planetary-computer"] == manifest["cdse"] == []


def test_items_file_is_the_spec_catalogue(replica_root: Path) -> None:
    spec = load_spec(replica_root)
    items_file, _, collection_file = layout.catalogue_files(spec.catalogue)
    assert (replica_root / layout.ITEMS_FILE).read_text() == (replica_root / items_file).read_text()
    collection = json.loads((replica_root / layout.COLLECTION_FILE).read_text())
    assert collection == json.loads((replica_root / collection_file).read_text())
    assert collection["id"] == COLLECTIONS[spec.catalogue]


def test_cdse_is_served_with_s3_hrefs(replica_root: Path, tmp_path: Path) -> None:
    docs = read_stac(replica_root, "cdse")
    served = write_served_stac(docs, tmp_path, http_base="http://127.0.0.1:9", bucket="b")
    first = _lines(served)[0]
    asset = first["assets"]["B02_10m"]
    assert asset["href"].startswith("s3://b/sentinel-2-l2a/")
    assert asset["alternate"]["https"]["href"].startswith("http://127.0.0.1:9/b/")


def test_another_catalogue_is_served(replica_root: Path) -> None:
    process, endpoints = start_replica_server(replica_root, catalogue="earth-search-c1")
    try:
        assert endpoints.collection == "sentinel-2-c1-l2a"
        found = search_stac(endpoints, World(load_spec(replica_root)).bbox, "2000/2100")
    finally:
        stop_replica_server(process)
    written = _lines(replica_root / layout.catalogue_files("earth-search-c1")[0])
    assert sorted(i["id"] for i in found) == sorted(i["id"] for i in written)
    assert {i["collection"] for i in found} == {"sentinel-2-c1-l2a"}
    assert all(i["assets"]["blue"]["href"].startswith("http://") for i in found)
