"""The read chunk covers whole COG blocks of the items' assets: 2048 px at 10 / 20 m, else 1024.

The items are real catalogue samples (tests/data/real/stac/README.md names their sources), each
stating its assets' pixel sizes its own way.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cubestream.errors import L1Error
from cubestream.l1.config import NATIVE_READ_BLOCK, READ_BLOCK
from cubestream.l1.plan import TilePlan
from cubestream.l1.sentinel2 import check_read_block
from cubestream.sources.sentinel2 import S2Item, to_s2_item
from cubestream.sources.stac import read_items_file

REAL = Path(__file__).parents[1] / "data" / "real" / "stac"


def _plan(*items: S2Item) -> TilePlan:
    return TilePlan(
        tile=items[0].tile if items else "37MBU",
        epsg=32737,
        x0=0.0,
        y0=0.0,
        cubes=pd.DataFrame(),
        items=items,
        days=(),
        item_day=(),
        decisions=(),
        days_per_chunk=16,
        missing_dates=(),
    )


@pytest.mark.parametrize(
    "name",
    [
        "earth-search-v1_2025_S2B_20EPT_20250731_0_L2A.json",
        "earth-search-c1_S2B_T38XNF_20250422T091553_L2A.json",
        "rustac__pc_sentinel-2-l2a_two_items_T13TDE_2024-08.json",
    ],
)
def test_real_items_at_10_and_20_m_read_2048_px(name: str) -> None:
    item = to_s2_item(read_items_file(REAL / name)[0])
    assert _plan(item).read_block() == NATIVE_READ_BLOCK
    assert _plan(item).read_block(512) == 512


def _restated(raw: dict[str, Any], size: float | None, key: str) -> S2Item:
    """``raw`` with every asset's pixel size stated only as ``key`` (or not at all)."""
    raw = copy.deepcopy(raw)
    for asset in raw["assets"].values():
        for field in ("gsd", "raster:bands", "proj:transform"):
            asset.pop(field, None)
        if size is None:
            continue
        if key == "gsd":
            asset["gsd"] = size
        elif key == "raster:bands":
            asset["raster:bands"] = [{"spatial_resolution": size}]
        else:
            asset["proj:transform"] = [size, 0, 600000, 0, -size, 3300040]
    return to_s2_item(raw)


@pytest.mark.parametrize("key", ["gsd", "raster:bands", "proj:transform"])
def test_the_resolution_is_read_where_the_catalogue_states_it(key: str) -> None:
    raw = read_items_file(REAL / "earth-search-v1_2025_S2B_20EPT_20250731_0_L2A.json")[0]
    assert _plan(_restated(raw, 30, key)).read_block() == READ_BLOCK
    assert _plan(_restated(raw, 20, key)).read_block() == NATIVE_READ_BLOCK
    assert _plan(_restated(raw, None, key)).read_block() == READ_BLOCK  # unstated: as before
    assert _plan().read_block() == READ_BLOCK


def test_odd_metadata_reads_as_unstated() -> None:
    raw = read_items_file(REAL / "earth-search-v1_2025_S2B_20EPT_20250731_0_L2A.json")[0]
    raw = copy.deepcopy(raw)
    for asset in raw["assets"].values():
        asset.update({"gsd": "ten", "raster:bands": "none", "proj:transform": {}})
    assert _plan(to_s2_item(raw)).read_block() == READ_BLOCK


def test_a_read_block_must_hold_whole_boxes() -> None:
    assert check_read_block(2048) == 2048
    for bad in (0, -128, 1000):
        with pytest.raises(L1Error, match=rf"read block {bad} px is not a positive multiple"):
            check_read_block(bad)
