"""Real STAC items of each catalogue through the adapters: provider, tile, hrefs and offsets.

The items are third-party samples (tests/data/real/stac/README.md names their sources), not
written by this project: they carry what the real archives serve, the long PDI ``s2:tile_id`` of
Earth Search included.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cubestream.errors import ItemSchemaError, ProviderError
from cubestream.sources.sentinel2 import BANDS, SCL, detect_provider, item_tile, to_s2_item
from cubestream.sources.signing import needs_signing
from cubestream.sources.stac import read_items_file, search_items

REAL = Path(__file__).parents[1] / "data" / "real" / "stac"
ES_2023 = REAL / "eodm__es-v1_sentinel-2-l2a_3items_39QTA_2023-06_pb0509.json"
ES_2025 = REAL / "earth-search-v1_2025_S2B_20EPT_20250731_0_L2A.json"
C1_2025 = REAL / "earth-search-c1_S2B_T38XNF_20250422T091553_L2A.json"
PC_2024 = REAL / "rustac__pc_sentinel-2-l2a_two_items_T13TDE_2024-08.json"
CDSE_2025 = next(REAL.glob("cdse_*_TRIMMED.json"))


def _one(path: Path, index: int = 0) -> dict[str, Any]:
    return read_items_file(path)[index]


def test_earth_search_2025_item_reads_its_tile_from_grid_code_not_the_pdi_tile_id() -> None:
    raw = _one(ES_2025)
    assert raw["properties"]["s2:tile_id"].startswith("S2B_OPER_MSI_L2A_TL_")
    item = to_s2_item(raw)
    assert (item.provider, item.tile, item.epsg, item.baseline) == (
        "earth-search",
        "20EPT",
        32720,
        "05.11",
    )
    assert item.day == dt.date(2025, 7, 31)
    assert set(item.hrefs) == {*BANDS, SCL}
    assert item.hrefs["B8A"].endswith("/B8A.tif") and item.hrefs[SCL].endswith("/SCL.tif")
    # the flag is the truth on Earth Search v1; raster:bands' -0.1 is known to be wrong there
    assert raw["assets"]["blue"]["raster:bands"][0]["offset"] == -0.1
    assert item.offset.dn == 0 and "boa_offset_applied true" in item.offset.reason


def test_earth_search_2023_items_and_search_keeps_only_the_asked_tile() -> None:
    tiles = [item_tile(i) for i in read_items_file(ES_2023)]
    assert tiles == ["39QTA", "39QUA", "39QTA"]
    found = search_items(
        str(ES_2023), "39QTA", (50, 20, 52, 22), dt.date(2023, 6, 1), dt.date(2023, 6, 30)
    )
    assert [i.id for i in found] == ["S2B_39QTA_20230623_0_L2A", "S2A_39QTA_20230628_0_L2A"]
    assert all(i.scale == 1e-4 for i in found)


def test_planetary_computer_items_take_offset_from_baseline_and_need_signing() -> None:
    items = [to_s2_item(raw) for raw in read_items_file(PC_2024)]
    for item in items:
        assert (item.provider, item.tile, item.epsg) == ("planetary-computer", "13TDE", 32613)
        assert item.offset.dn == 1000 and "05.11 >= 04.00" in item.offset.reason
        assert item.hrefs["B02"].endswith("_B02_10m.tif")
        assert item.hrefs[SCL].endswith("_SCL_20m.tif")
        assert needs_signing(item.hrefs["B02"])


def test_cdse_item_is_recognised_and_its_trimmed_assets_named_missing() -> None:
    raw = _one(CDSE_2025)
    assert detect_provider(raw) == "cdse"
    assert item_tile(raw) == "33UWP"
    with pytest.raises(ItemSchemaError, match=r"S2C_MSIL2A_20250330.*B05_20m.*incomplete"):
        to_s2_item(raw)


def test_cdse_item_with_its_band_assets_takes_baseline_from_processing_version() -> None:
    raw = copy.deepcopy(_one(CDSE_2025))
    b02 = raw["assets"]["B02_10m"]
    for band, res in (("B03", 10), ("B05", 20), ("B06", 20), ("B07", 20), ("B8A", 20),
                      ("B11", 20), ("B12", 20)):  # fmt: skip
        raw["assets"][f"{band}_{res}m"] = {**b02, "href": b02["href"].replace("B02_10m", band)}
    item = to_s2_item(raw)
    assert item.baseline == "05.11" and item.offset.dn == 1000
    assert item.hrefs["B02"].startswith("s3://eodata/Sentinel-2/MSI/L2A/2025/03/30/")
    assert item.hrefs["B02"].endswith(".jp2")


def test_item_whose_fields_name_two_tiles_is_refused() -> None:
    raw = copy.deepcopy(_one(ES_2025))
    raw["properties"]["grid:code"] = "MGRS-20EPS"
    with pytest.raises(ItemSchemaError, match=r"S2B_20EPT_20250731_0_L2A.*different tiles"):
        to_s2_item(raw)


def test_item_with_wrong_epsg_or_footprint_is_refused() -> None:
    raw = copy.deepcopy(_one(ES_2025))
    raw["properties"]["proj:epsg"] = 32620
    with pytest.raises(ItemSchemaError, match="proj:epsg 32620 does not match tile 20EPT"):
        to_s2_item(raw)
    raw = copy.deepcopy(_one(ES_2025))
    raw["bbox"] = [10.0, 40.0, 11.0, 41.0]
    with pytest.raises(ItemSchemaError, match="lies outside tile 20EPT"):
        to_s2_item(raw)


def test_unknown_schema_names_the_item_and_the_provider_option() -> None:
    raw = copy.deepcopy(_one(ES_2025))
    raw["assets"] = {"B4": raw["assets"]["red"]}
    with pytest.raises(ProviderError, match=r"S2B_20EPT_20250731_0_L2A.*--provider"):
        to_s2_item(raw)
    assert to_s2_item(_one(ES_2025), "earth-search").tile == "20EPT"


def _check(path: Path) -> tuple[int, list[dict[str, Any]], str]:
    run = subprocess.run(
        [sys.executable, "-m", "cubestream.cli", "stac", "check", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    return run.returncode, lines, run.stderr


def test_stac_check_prints_one_line_per_real_item() -> None:
    code, lines, err = _check(ES_2025)
    assert code == 0, err
    (line,) = lines
    assert line["id"] == "S2B_20EPT_20250731_0_L2A" and line["tile"] == "20EPT"
    assert (line["date"], line["provider"], line["scale"], line["offset"]) == (
        "2025-07-31",
        "earth-search",
        0.0001,
        0,
    )
    assert list(line["bands"]) == [*BANDS, SCL] and "boa_offset_applied" in line["offset_reason"]
    code, lines, _ = _check(PC_2024)
    assert code == 0 and [x["offset"] for x in lines] == [1000, 1000]


def test_stac_check_reports_each_bad_item_and_fails() -> None:
    code, lines, err = _check(CDSE_2025)
    assert code == 1
    assert lines[0]["id"].startswith("S2C_MSIL2A_20250330") and "B05_20m" in lines[0]["error"]
    assert "1 items checked, 1 failed" in err


def test_bands_with_different_offsets_or_a_foreign_scale_are_refused() -> None:
    raw = copy.deepcopy(_one(ES_2023))
    raw["assets"]["nir08"]["raster:bands"][0]["offset"] = 0
    with pytest.raises(ItemSchemaError, match=r"S2A_39QTA_20230628_0_L2A.*differ"):
        to_s2_item(raw, "earth-search-c1")
    raw = copy.deepcopy(_one(ES_2023))
    for key in ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir08", "swir16",
                "swir22"):  # fmt: skip
        raw["assets"][key]["raster:bands"][0]["scale"] = 0.001
    with pytest.raises(ItemSchemaError, match=r"scale is 0\.001"):
        to_s2_item(raw)


C1_ITEM = REAL / "earth-search-c1_S2B_T38XNF_20250422T091553_L2A.json"


def _one_cube(tile_id: str) -> Any:
    """The tile's box at row 5, col 5, with the columns the planner reads."""
    import pandas as pd
    from pyproj import Transformer

    from cubestream import grid

    tile = grid.tile(tile_id)
    x_min, y_max = tile.x0 + 5 * 3840, tile.y0 - 5 * 3840
    to_ll = Transformer.from_crs(tile.epsg, 4326, always_xy=True).transform
    lon, lat = to_ll([x_min, x_min + 3840], [y_max - 3840, y_max])
    return pd.DataFrame(
        [
            {
                "cube_id": f"{tile_id}0505", "tile": tile_id, "epsg": tile.epsg, "row": 5,
                "col": 5, "x_min": x_min, "y_min": y_max - 3840, "x_max": x_min + 3840,
                "y_max": y_max, "lon": sum(lon) / 2, "lat": sum(lat) / 2, "min_lon": min(lon),
                "min_lat": min(lat), "max_lon": max(lon), "max_lat": max(lat),
            }
        ]
    )  # fmt: skip


@pytest.mark.parametrize("path", [ES_2025, C1_ITEM, PC_2024, ES_2023])
def test_real_items_plan_and_dry_run(path: Path) -> None:
    """Search, plan and the dry run's byte estimate on each provider's real items."""
    from cubestream import grid
    from cubestream.l1.dryrun import dry_run_entry
    from cubestream.l1.plan import plan_tile

    first = to_s2_item(_one(path))
    items = search_items(str(path), first.tile, (-180, -90, 180, 90), first.day, first.day)
    plan = plan_tile(grid.tile(first.tile), _one_cube(first.tile), items)
    assert plan.offsets == tuple(i.offset.dn for i in items)
    entry = dry_run_entry(plan, 1024)
    assert entry["read_blocks"] == 1 and entry["providers"] == [first.provider]
    # one 1024 px read block (30.72 km a side) of each 10 m / 20 m band, per item
    side = 1024 * 30.0
    pixels = 3 * (side / 10) ** 2 * 2 + 6 * (side / 20) ** 2 * 2 + (side / 20) ** 2
    assert entry["expected_bytes_uncompressed"] == pytest.approx(len(items) * pixels, rel=1e-6)
    sizes = [
        (i.raw["assets"][key].get("file:size"))
        for i in items
        for key in (
            ("blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir08", "swir16",
             "swir22", "scl") if i.provider.startswith("earth-search") else ()
        )
    ]  # fmt: skip
    if sizes and all(sizes):
        share = side**2 / 109800.0**2
        assert entry["expected_bytes"] == pytest.approx(sum(sizes) * share, rel=1e-6)
        assert entry["expected_bytes"] < entry["expected_bytes_uncompressed"]
