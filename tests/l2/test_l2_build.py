"""The level-2 build on a hand-built L1 store: the schema, the values, splits, skips, resume."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import zarr
from l1_fixture import ERA5, START, day_number, known_dn, write_l1, write_locations

from cubestream.cli import main
from cubestream.errors import L2Error, L2InputError, L2StoreError, L2StoreNotFoundError
from cubestream.inspect import describe
from cubestream.l1.sentinel2 import BANDS
from cubestream.l2 import L2Config, build_l2, check_store, export_netcdf
from cubestream.l2.encoding import MAX_ERROR, decode_array, scale_of
from cubestream.l2.plan import strings
from cubestream.l2.schema import STEPS, TIME_CHUNKS, VARIABLES, chunks_of
from cubestream.l2.store import done_blocks
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.l2.windows import SEASONS, candidate_starts, from_days, season_of

MODEL_INPUTS = ("s2", "kndvi", "mask", "dist_mask", "weather", "dem", "landcover", "geomorphons")


def _config(l1: Path, locations: Path, out: Path, **kw) -> L2Config:
    return L2Config(l1=str(l1), locations=str(locations), out=str(out), **kw)


@pytest.fixture(scope="module")
def built(l1_store: Path, locations: Path, l2_client: Any, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("l2") / "l2.zarr"
    report = build_l2(_config(l1_store, locations, out, windows_per_cube=2), client=l2_client)
    assert report["complete"] and not report["failed_blocks"]
    return out


def _store(path: Path) -> zarr.Group:
    return zarr.open_group(path, mode="r")


def _decoded(root: zarr.Group, name: str, index: Any) -> np.ndarray:
    """float32 values of a variable (``s2`` and ``kndvi`` are scaled uint16 codes)."""
    array = root[name]
    return decode_array(np.asarray(array[index]), scale_of(array.attrs))


def test_store_follows_the_schema_and_the_synthetic_layout(built: Path, tmp_path: Path) -> None:
    sizes = check_store(str(built))
    assert sizes["time"] == STEPS and sizes["band"] == len(BANDS)
    synthetic = _store(write_synthetic_l2(tmp_path / "syn.zarr", samples=2, size=16))
    root = _store(built)
    for name, array in synthetic.arrays():
        mine = root[name]
        assert mine.metadata.dimension_names == array.metadata.dimension_names, name
        assert mine.dtype == array.dtype, name
        if name in VARIABLES:  # the schema's chunks: s2 in the 9 context steps, the rest whole
            for store in (mine, array):
                sizes_of = dict(zip(VARIABLES[name].dims, store.shape, strict=True))
                assert store.chunks == chunks_of(name, sizes_of, 1), name
        else:
            assert mine.chunks[1:] == mine.shape[1:] and array.chunks[1:] == array.shape[1:], name
    assert root["s2"].chunks[1] == TIME_CHUNKS["s2"] == 9
    for name in VARIABLES:
        assert root[name].chunks[0] == 1
    assert len(root["weather"].attrs["mean"]) == sizes["weather_variable"]
    assert root["dem"].attrs["std"] > 0
    assert root["start_time"].attrs["units"] == "days since 1970-01-01"
    assert root.attrs["complete"] is True


def test_no_nan_in_any_model_input(built: Path) -> None:
    root = _store(built)
    for name in MODEL_INPUTS:
        values = np.asarray(root[name][...])
        assert np.isfinite(values).all(), name
    s2 = _decoded(root, "s2", slice(None))
    assert s2.min() >= 0 and s2.max() <= 1
    assert set(np.unique(root["mask"][...])) <= {0, 1}
    assert np.asarray(root["dist_mask"][...]).min() >= 0


def _samples(built: Path) -> pd.DataFrame:
    root = _store(built)
    return pd.DataFrame(
        {
            "cube_id": strings(root["cube_id"][...]),
            "split": strings(root["split"][...]),
            "start": np.asarray(root["start_time"][...]),
            "tile": strings(root["tile"][...]),
            "lon": np.asarray(root["lon"][...]),
            "lat": np.asarray(root["lat"][...]),
        }
    )


def test_values_follow_the_rules(built: Path, l1_store: Path) -> None:
    root, samples = _store(built), _samples(built)
    for i, sample in samples.iterrows():
        group = _store(l1_store)[sample.tile]
        ids = list(strings(group["cube"][...]))
        c = ids.index(sample.cube_id)
        days = np.asarray(group["time"][...])
        scl = np.asarray(group["scl"][c])
        valid = ~np.isin(scl, (0, 1, 3, 8, 9, 10, 11))
        steps = sample.start + 10 * np.arange(STEPS)
        last_day = day_number(dt.date(2021, 12, 31))
        # mask and dist_mask, written out the long way
        inside = (days[None] > steps[:, None] - 10) & (days[None] <= steps[:, None])
        expected_mask = ~np.einsum("st,tyx->syx", inside, valid).astype(bool)
        np.testing.assert_array_equal(root["mask"][i], expected_mask.astype(np.uint8))
        ahead = np.where(
            valid[None] & (days[None, :, None, None] >= steps[:, None, None, None]),
            days[None, :, None, None] - steps[:, None, None, None],
            10**6,
        ).min(axis=1)
        reach = np.minimum(90, last_day - steps)[:, None, None]
        expected_dist = np.where(ahead <= reach, ahead, 90)
        np.testing.assert_array_equal(root["dist_mask"][i], np.minimum(expected_dist, 90))
        # reflectance: DN is linear in time, so the fill is exact wherever observations
        # bracket the step (always, here)
        size = scl.shape[-1]
        s2 = _decoded(root, "s2", i)
        for b in range(len(BANDS)):  # the fill's float32 error plus the encoding's bound
            expected = known_dn(c, b, steps, size) * 1e-4
            np.testing.assert_allclose(s2[:, b], expected, rtol=0, atol=2e-6 + MAX_ERROR)
        # kNDVI was encoded from the float bands: recomputed from the decoded bands it may
        # differ by |d kNDVI / d band| times the bands' error, plus its own encoding error
        red, nir = s2[:, BANDS.index("B04")].astype(float), s2[:, BANDS.index("B8A")]
        ndvi = (nir - red) / (nir + red)
        slope = 2 * np.abs(ndvi) / np.cosh(ndvi**2) ** 2 * 2 * (nir + red) / (nir + red) ** 2
        bound = slope * 2 * MAX_ERROR + MAX_ERROR + 1e-6
        error = np.abs(_decoded(root, "kndvi", i) - np.tanh(ndvi**2))
        assert (error <= bound).all(), float((error - bound).max())
        # ERA5 at the nearest cell: t2m_mean is a 10-day mean, t2m_min the minimum
        lat, lon = np.asarray(group["latitude"][...]), np.asarray(group["longitude"][...])
        r, col = np.abs(lat - sample.lat).argmin(), np.abs(lon - sample.lon).argmin()
        era5 = np.asarray(group["era5"][...])[:, :, r, col]
        era5_days = np.asarray(group["era5_time"][...])
        weather = np.asarray(root["weather"][i])
        for t, s in enumerate(steps):
            rows = (era5_days > s - 10) & (era5_days <= s)
            assert weather[t, 0] == pytest.approx(era5[rows, 0].mean(), rel=1e-6)
            assert weather[t, 1] == pytest.approx(era5[rows, 1].min(), rel=1e-6)
            assert weather[t, ERA5.index("tp_sum")] == pytest.approx(era5[rows, 3].sum(), rel=1e-5)
        # static layers
        dem = np.asarray(group["dem"][c])
        np.testing.assert_array_equal(root["dem"][i][np.isfinite(dem)], dem[np.isfinite(dem)])
        assert root["dem"][i][0, 0] == np.median(dem[np.isfinite(dem)])
        np.testing.assert_array_equal(root["landcover"][i], group["landcover"][c])
        np.testing.assert_array_equal(root["geomorphons"][i], group["geomorphons"][c])
        assert root["valid_fraction"][i] == pytest.approx(1 - expected_mask.mean(), rel=1e-6)


def test_every_window_covers_five_seasons_in_full_years(built: Path) -> None:
    samples = _samples(built)
    allowed = candidate_starts(START, dt.date(2021, 12, 31))
    for start in samples["start"]:
        day = from_days(int(start))
        assert day in allowed
        seasons = [season_of(from_days(int(start) + 10 * t)) for t in range(STEPS)]
        k = SEASONS.index(season_of(day))
        runs = [season for season, _ in itertools.groupby(seasons)]
        assert runs == [SEASONS[(k + i) % 4] for i in range(5)]
    assert (samples.groupby("cube_id")["start"].nunique() == 2).all(), "two distinct windows"


def test_splits_are_disjoint_with_the_table_shares(built: Path, locations: Path) -> None:
    samples = _samples(built)
    table = pd.read_parquet(locations).set_index("cube_id")
    assert (samples.groupby("cube_id")["split"].nunique() == 1).all()
    assert (samples["split"] == table.loc[samples["cube_id"], "split"].to_numpy()).all()
    built_cubes = table.loc[sorted(set(samples["cube_id"]))]
    cube_shares = built_cubes["split"].value_counts(normalize=True)
    sample_shares = samples["split"].value_counts(normalize=True)
    pd.testing.assert_series_equal(cube_shares, sample_shares, check_names=False)


def test_unusable_windows_are_reported(built: Path) -> None:
    report = json.loads(Path(f"{built}.report.json").read_text())
    reasons = {(s["cube_id"], s.get("start")): s["reason"] for s in report["skipped"]}
    cloudy = [r for (c, _), r in reasons.items() if c == "37MCU1111"]
    water = [r for (c, _), r in reasons.items() if c == "37MCU1112"]
    assert len(cloudy) == 2 and all("too few valid observations" in r for r in cloudy)
    assert len(water) == 2 and all("sm_rootzone" in r for r in water)
    assert "37MCU1111" not in set(_samples(built)["cube_id"])
    assert report["samples"] == 8 and report["splits"] == {"train": 6, "val": 2}


def test_a_rerun_of_a_complete_build_writes_nothing(
    built: Path, l1_store: Path, locations: Path, l2_client: Any
) -> None:
    before = _files(built)
    report = build_l2(_config(l1_store, locations, built, windows_per_cube=2), client=l2_client)
    assert report["state_before"] == "complete" and report["blocks_written"] == 0
    assert _files(built) == before


def test_blocks_of_samples_and_normalised_kndvi(
    built: Path, l1_store: Path, locations: Path, l2_client: Any, tmp_path: Path
) -> None:
    out = tmp_path / "blocks.zarr"
    options = {"windows_per_cube": 2, "samples_per_chunk": 3, "kndvi_normalise": True}
    config = _config(l1_store, locations, out, **options)
    report = build_l2(config, client=l2_client)
    assert report["complete"] and report["blocks_written"] == 3  # 8 samples: 3 + 3 + 2
    check_store(str(out))
    root, reference = _store(out), _store(built)
    assert root["s2"].chunks[0] == 3 and root["cube_id"].chunks == (3,)
    for name in ("s2", "mask", "dist_mask", "weather", "dem", "valid_fraction", "start_time"):
        np.testing.assert_array_equal(root[name][...], reference[name][...], err_msg=name)
    everything = slice(None)
    np.testing.assert_allclose(
        _decoded(root, "kndvi", everything),
        _decoded(reference, "kndvi", everything) / np.tanh(1),
        rtol=0,
        atol=MAX_ERROR * (1 + 1 / np.tanh(1)),
    )


def _files(store: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file()
    }


def test_killed_build_resumes_to_a_clean_build(tmp_path: Path, l2_client: Any) -> None:
    l1 = write_l1(tmp_path / "l1.zarr", cubes=4, size=64)
    locations = write_locations(tmp_path / "locations.parquet", l1)
    clean = tmp_path / "clean.zarr"
    build_l2(_config(l1, locations, clean, windows_per_cube=2), client=l2_client)
    out = tmp_path / "resumed.zarr"
    command = [sys.executable, "-m", "cubestream.cli", "l2", "--l1", str(l1)]
    command += ["--locations", str(locations), "--out", str(out)]
    command += ["--windows-per-cube", "2", "--workers", "1"]
    process = subprocess.Popen(
        command, start_new_session=True, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL
    )
    chunks = out / "valid_fraction" / "c"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if chunks.exists() and len(list(chunks.iterdir())) >= 3:
            break
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert _store(out).attrs["complete"] is False, "a killed build is never marked complete"
    written = len(list(chunks.iterdir()))
    assert 3 <= written < 16
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads(resumed.stdout)["complete"] is True
    report = json.loads(Path(f"{out}.report.json").read_text())
    assert report["state_before"] == "resumed" and report["blocks_written"] == 16 - written
    assert _files(out) == _files(clean), "chunk for chunk (and metadata) equal"


def test_a_resume_deletes_the_temporaries_of_killed_writes(tmp_path: Path) -> None:
    """A write killed between zarr's temporary file and its rename leaves the temporary in
    whichever array it was writing; the resume deletes it, in every array."""
    url = tmp_path / "l2.zarr"
    root = zarr.open_group(str(url), mode="w", zarr_format=3)
    root.create_array("valid_fraction", shape=(4,), chunks=(2,), dtype="float32", fill_value=0)
    root.create_array("s2", shape=(4, 3), chunks=(2, 3), dtype="uint16", fill_value=0)
    root["valid_fraction"][0:2] = 1.0
    root["s2"][0:2] = 7
    partial = url / "s2" / "c" / "1" / "0.9e1f2a.partial"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"half a chunk")
    assert done_blocks(str(url)) == {0}
    assert not partial.exists() and (url / "s2" / "c" / "0" / "0").exists()


def test_bad_inputs_are_named(tmp_path: Path, l2_client: Any, l1_store: Path) -> None:
    locations = write_locations(tmp_path / "loc.parquet", l1_store)
    out = tmp_path / "x.zarr"
    with pytest.raises(L2InputError, match="no L1 store"):
        build_l2(_config(tmp_path / "none.zarr", locations, out), client=l2_client)
    no_landcover = write_l1(tmp_path / "a.zarr", tiles=("37MBU",), cubes=1, drop=("landcover",))
    with pytest.raises(L2InputError, match=r"37MBU has no variable 'landcover'.*--landcover"):
        build_l2(_config(no_landcover, locations, out), client=l2_client)
    no_smap = write_l1(tmp_path / "b.zarr", tiles=("37MBU",), cubes=1, drop=("smap",))
    with pytest.raises(L2InputError, match=r"sm_rootzone"):
        build_l2(_config(no_smap, locations, out, weather=("sm_rootzone",)), client=l2_client)
    with pytest.raises(L2InputError, match="empty time range"):
        build_l2(
            _config(
                l1_store,
                locations,
                out,
                start=dt.date(2021, 1, 1),
                end=dt.date(2020, 1, 1),
            ),
            client=l2_client,
        )
    short = write_l1(tmp_path / "c.zarr", tiles=("37MBU",), cubes=1, start=dt.date(2021, 6, 1))
    with pytest.raises(L2InputError, match="full calendar years"):
        build_l2(_config(short, locations, out), client=l2_client)
    bad = tmp_path / "bad.parquet"
    pd.read_parquet(locations).drop(columns=["split"]).to_parquet(bad)
    with pytest.raises(L2InputError, match="split"):
        build_l2(_config(l1_store, bad, out), client=l2_client)
    assert not out.exists(), "nothing is written when the inputs are refused"
    (out / "notes").mkdir(parents=True)
    with pytest.raises(L2Error, match="not an L2 store"):
        build_l2(_config(l1_store, locations, out), client=l2_client)
    assert (out / "notes").exists(), "a path that is not an L2 store is left alone"


def test_an_incomplete_tile_is_skipped_and_reported(tmp_path: Path, l2_client: Any) -> None:
    l1 = write_l1(tmp_path / "l1.zarr", cubes=1, incomplete=("37MCU",))
    locations = write_locations(tmp_path / "loc.parquet", l1)
    report = build_l2(_config(l1, locations, tmp_path / "l2.zarr"), client=l2_client)
    assert report["tiles"]["37MCU"]["status"] == "skipped"
    assert any(
        s.get("tile") == "37MCU" and "not complete" in s["reason"] for s in report["skipped"]
    )
    assert report["samples"] == 1 and report["complete"]


def test_check_store_names_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(L2StoreNotFoundError, match="no L2 store"):
        check_store(str(tmp_path / "missing.zarr"))
    path = write_synthetic_l2(tmp_path / "s.zarr", samples=2, size=8)
    check_store(str(path))
    root = zarr.open_group(path, mode="r+")
    root["weather"].attrs.update({"mean": [0.0]})
    with pytest.raises(L2StoreError, match=r"'weather'.*'mean'"):
        check_store(str(path))
    del root["kndvi"]
    with pytest.raises(L2StoreError, match="no variable 'kndvi'"):
        check_store(str(path))
    dims = ("sample", "time", "y", "x")
    root.create_array("kndvi", shape=(2, 45, 8, 8), dtype="float64", dimension_names=dims)
    with pytest.raises(L2StoreError, match=r"'kndvi'.*dtype float64"):
        check_store(str(path))
    root.attrs.update({"complete": False})
    with pytest.raises(L2StoreError, match="not complete"):
        check_store(str(path))


def test_netcdf_export_holds_each_sample(built: Path, tmp_path: Path) -> None:
    import xarray as xr

    files = export_netcdf(str(built), tmp_path / "nc", progress=False)
    root, samples = _store(built), _samples(built)
    assert len(files) == len(samples)
    for i, path in enumerate(files):
        with xr.open_dataset(path) as ds:
            assert ds.attrs["cube_id"] == samples["cube_id"][i]
            assert path.parent.name == samples["split"][i]
            assert str(ds.time.values[0])[:10] == str(from_days(int(samples["start"][i])))
            np.testing.assert_array_equal(ds["s2"].values, _decoded(root, "s2", i))
            np.testing.assert_array_equal(ds["landcover"].values, root["landcover"][i])
            assert ds.x.values[0] == root["x_min"][i] + 15.0


def test_inspect_and_cli(built: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    text = describe(str(built))
    assert "L2 store" in text and "8 samples (train 6, val 2)" in text and "skipped: 4" in text
    code = main(["l2", "--l1", str(tmp_path / "none"), "--locations", "x.parquet", "--out", "y"])
    assert code == 3 and "no L1 store" in capsys.readouterr().err
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_store_is_consolidated_and_a_sample_is_placed_in_one_call(built: Path) -> None:
    """xarray opens the store without a warning; a sample comes back with its CRS and transform."""
    import warnings

    import rasterio
    import xarray as xr

    from cubestream._consolidated import is_consolidated
    from cubestream.georef import open_l2_sample

    assert is_consolidated(str(built))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(built)
    assert ds["x_min"].attrs["units"] == "m" and ds["lat"].attrs["units"] == "degrees_north"
    for index in (0, ds.sizes["sample"] - 1):
        sample = open_l2_sample(str(built), index)
        epsg, x_min, y_max = (float(ds[n][index]) for n in ("epsg", "x_min", "y_max"))
        assert sample.rio.crs.to_epsg() == int(epsg)
        assert sample.rio.transform() == rasterio.Affine(30, 0, x_min, 0, -30, y_max)
        np.testing.assert_array_equal(sample.kndvi.values, ds.kndvi[index].values)
