"""SMAP granules as users have them: V7 and V8 names, day folders or flat, clear errors.

The replica writes the same values under every naming and layout, so each must give the same
daily cube values bit for bit. The granule names come from real files (layout notes in
``shared/real-formats/smap_l4_layout.md``): ``Vv7031``/``Vv7032`` in SPL4SMGP.007, ``Vv8010`` in
SPL4SMGP.008.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from cubestream import grid
from cubestream.errors import (
    AssetNotFoundError,
    AssetReadError,
    ReplacedGranuleWarning,
    SourceKindError,
)
from cubestream.l1.smap import list_granules, smap_cubes
from cubestream.replica.smap import EASE_CELL_M, VARIABLES, write_smap
from cubestream.replica.spec import ReplicaSpec, preset
from cubestream.replica.world import World
from cubestream.sources.smap import find_granules, parse_granule_name

DAYS = (dt.date(2021, 12, 1), dt.date(2021, 12, 2))
V7, V8 = "smap/SPL4SMGP.007", "smap/SPL4SMGP.008"


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two days of the tiny world as V7 and V8 day folders, and V8 flat (16 granules each)."""
    world = World(ReplicaSpec.from_dict({**preset("tiny").to_dict(), "end": DAYS[1].isoformat()}))
    base = tmp_path_factory.mktemp("smap-layouts")
    write_smap(world, base / "v7")
    write_smap(world, base / "v8", version=8)
    write_smap(world, base / "flat", version=8, layout="flat")
    return {"v7": base / "v7" / V7, "v8": base / "v8" / V8, "flat": base / "flat" / V8}


def cubes() -> pd.DataFrame:
    tile = grid.tile("37MBU")
    rows = [(12, 12), (14, 15)]
    return pd.DataFrame(
        {
            "cube_id": [f"37MBU{r:02d}{c:02d}" for r, c in rows],
            "epsg": tile.epsg,
            "x_min": [tile.x0 + c * 3840 for _, c in rows],
            "x_max": [tile.x0 + c * 3840 + 3840 for _, c in rows],
            "y_min": [tile.y0 - r * 3840 - 3840 for r, _ in rows],
            "y_max": [tile.y0 - r * 3840 for r, _ in rows],
        }
    )


def daily(prefix: Path, **kwargs: object) -> np.ndarray:
    granules = list_granules(str(prefix), *DAYS, **kwargs)  # type: ignore[arg-type]
    return smap_cubes(granules, cubes(), start=DAYS[0], end=DAYS[1]).values


def test_real_names_parse() -> None:
    v7 = parse_granule_name(
        "s3://b/SPL4SMGP.007/2024.11.11/SMAP_L4_SM_gph_20241111T013000_Vv7031_001.h5"
    )
    assert (v7.time, v7.version, v7.counter, v7.product_version) == (
        dt.datetime(2024, 11, 11, 1, 30),
        "Vv7031",
        1,
        7,
    )
    v8 = parse_granule_name("SMAP_L4_SM_gph_20231231T223000_Vv8010_002.h5")
    assert (v8.time, v8.version, v8.counter, v8.product_version) == (
        dt.datetime(2023, 12, 31, 22, 30),
        "Vv8010",
        2,
        8,
    )
    for bad in (
        "SMAP_L4_SM_gph_20150331T013000_Vv7032_001_HEGOUT.nc",  # reprojected by NSIDC, no granule
        "SMAP_L4_SM_aup_20191201T000000_Vv7032_001.h5",  # another product
        "SMAP_L4_SM_gph_20211301T013000_Vv8010_001.h5",  # month 13
        "SMAP_L4_SM_gph_20211201T0130_Vv8010_001.h5",
    ):
        with pytest.raises(AssetReadError, match="SMAP"):
            parse_granule_name(bad)


def test_v7_v8_day_folders_and_flat_give_the_same_daily_values(roots: dict[str, Path]) -> None:
    names = {k: [Path(u).name for u in list_granules(str(p), *DAYS)] for k, p in roots.items()}
    assert len(names["v7"]) == len(names["v8"]) == 16 and names["v8"] == names["flat"]
    assert names["v7"][0] == "SMAP_L4_SM_gph_20211201T013000_Vv7032_001.h5"
    assert names["v8"][0] == "SMAP_L4_SM_gph_20211201T013000_Vv8010_001.h5"
    listing = find_granules(str(roots["flat"]), *DAYS)
    assert (listing.layout, listing.versions) == ("flat", ("Vv8010",))
    assert find_granules(str(roots["v7"]), *DAYS).layout == "days"
    want = daily(roots["v7"])
    assert np.isfinite(want).any()
    np.testing.assert_array_equal(daily(roots["v8"]), want)
    np.testing.assert_array_equal(daily(roots["flat"]), want)
    one_day = list_granules(str(roots["flat"]), DAYS[1], DAYS[1])
    assert len(one_day) == 8 and all("20211202T" in u for u in one_day)


def test_mixed_versions_are_an_error_unless_one_is_named(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(roots["v7"], mixed)
    v8 = sorted(roots["v8"].rglob("*.h5"))
    for path in v8[:8]:
        shutil.copy(path, mixed / path.parent.name)
    with pytest.raises(SourceKindError, match=r"several product versions .*Vv7032.*Vv8010"):
        list_granules(str(mixed), *DAYS)
    want = daily(roots["v7"])
    np.testing.assert_array_equal(daily(mixed, version="7"), want)
    np.testing.assert_array_equal(daily(mixed, version="Vv7032"), want)
    with pytest.raises(AssetNotFoundError, match=r"2021-12-02 \(0 of 8\)"):
        list_granules(str(mixed), *DAYS, version="008")
    with pytest.raises(SourceKindError, match="neither a product version"):
        list_granules(str(mixed), *DAYS, version="V8")
    # one period under two science ids of one product version (7031 forward, 7032 reprocessed)
    first = sorted(roots["v7"].rglob("*.h5"))[0]
    shutil.copy(first, mixed / first.parent.name / first.name.replace("Vv7032", "Vv7031"))
    with pytest.raises(SourceKindError, match=r"T01:30 is under .* twice.*Vv7031 or Vv7032"):
        list_granules(str(mixed), *DAYS, version="7")
    assert len(list_granules(str(mixed), *DAYS, version="Vv7032")) == 16


def test_the_highest_counter_replaces_a_granule_and_is_reported(
    roots: dict[str, Path], tmp_path: Path
) -> None:
    flat = tmp_path / "flat"
    shutil.copytree(roots["flat"], flat)
    granules = sorted(flat.glob("*.h5"))
    # a reprocessed 01:30 granule: here the 04:30 values under the 01:30 name, counter 002
    replacement = flat / granules[0].name.replace("_001.h5", "_002.h5")
    shutil.copy(granules[1], replacement)
    with pytest.warns(ReplacedGranuleWarning, match=r"_002\.h5 replaces .*T013000_Vv8010_001"):
        chosen = list_granules(str(flat), *DAYS)
    assert len(chosen) == 16 and chosen[0] == str(replacement)
    assert str(granules[0]) not in chosen
    got = smap_cubes(chosen, cubes(), start=DAYS[0], end=DAYS[1])
    assert not np.array_equal(got.values, daily(roots["flat"]))


def test_bad_names_and_layouts_are_reported(roots: dict[str, Path], tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    shutil.copytree(roots["flat"], flat)
    for sidecar in ("SMAP_L4_SM_gph_20211201T013000_Vv8010_001.h5.iso.xml", "README.txt"):
        (flat / sidecar).write_text("not a granule")  # NSIDC side files are left alone
    assert len(list_granules(str(flat), *DAYS)) == 16
    bad = flat / "SMAP_L4_SM_gph_20211201T0130_Vv8010_001.h5"
    bad.write_bytes(b"")
    with pytest.raises(AssetReadError, match=r"do not parse.*T0130_Vv8010_001\.h5"):
        list_granules(str(flat), *DAYS)
    bad.unlink()
    (flat / "2021.12.01").mkdir()
    with pytest.raises(SourceKindError, match="both day folders"):
        list_granules(str(flat), *DAYS)
    with pytest.raises(AssetNotFoundError, match=r"no SMAP L4 granules under .*nowhere"):
        list_granules(str(tmp_path / "nowhere"), *DAYS)


def test_the_replica_granule_has_the_real_layout(roots: dict[str, Path]) -> None:
    """Checked against the layout notes (root coordinates, Geophysical_Data, fill -9999)."""
    path = sorted(roots["v8"].rglob("*.h5"))[0]
    with h5py.File(path) as f:
        for name in ("cell_lat", "cell_lon"):
            ds = f[name]
            assert ds.dtype == np.float32 and ds.ndim == 2
            assert ds.attrs["units"] == "degrees" and ds.attrs["_FillValue"] == -9999
        assert f["cell_lon"].attrs["valid_max"] == pytest.approx(179.9989929)
        x, y = f["x"][...], f["y"][...]
        assert x.dtype == y.dtype == np.float64 and f["cell_lat"].shape == (y.size, x.size)
        assert (np.diff(y) < 0).all()  # north first
        np.testing.assert_allclose(np.diff(x), EASE_CELL_M, rtol=1e-12)
        # cell centres on NASA Harmony's geotransform of the global grid
        origin_x, origin_y = -17367530.4451615, 7314540.8306386
        col = (x[0] - origin_x) / EASE_CELL_M - 0.5
        row = (origin_y - y[0]) / EASE_CELL_M - 0.5
        assert abs(col - round(col)) < 1e-9 and abs(row - round(row)) < 1e-9
        assert f["EASE2_global_projection"].attrs["grid_mapping_name"] == (
            "lambert_cylindrical_equal_area"
        )
        for name in VARIABLES:
            ds = f["Geophysical_Data"][name]
            assert ds.dtype == np.float32 and ds.shape == f["cell_lat"].shape
            assert ds.attrs["_FillValue"] == ds.attrs["missing_value"] == -9999
            assert ds.attrs["grid_mapping"] == "EASE2_global_projection"
            assert ds.attrs["coordinates"] == "cell_lat cell_lon"
        ident = f["Metadata/DatasetIdentification"].attrs
        assert ident["VersionID"] == b"8" and ident["fileName"].decode() == path.name
