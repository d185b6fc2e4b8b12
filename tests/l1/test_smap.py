"""SMAP L4 per cube: area-weighted cells, daily statistics, only the hyperslab, clear errors."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from pyproj import Transformer

from cubestream import grid
from cubestream.errors import AssetNotFoundError, AssetReadError, IncompleteSourceWarning
from cubestream.l1.smap import DEFAULT_VARIABLES, list_granules, output_names, smap_cubes
from cubestream.replica.serve import Endpoints
from cubestream.replica.smap import write_smap
from cubestream.replica.spec import ReplicaSpec, preset
from cubestream.replica.world import World

PREFIX = "smap/SPL4SMGP.007"
DAYS = (dt.date(2021, 12, 1), dt.date(2021, 12, 3))
FILL = -9999.0


def cube_table(rows: range = range(12, 16), cols: range = range(12, 16)) -> pd.DataFrame:
    """Boxes of tile 37MBU (the tiny replica's imaged window by default)."""
    tile = grid.tile("37MBU")
    to_ll = Transformer.from_crs(tile.epsg, 4326, always_xy=True)
    records = []
    for row in rows:
        for col in cols:
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


@pytest.fixture(scope="module")
def smap_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three days of SMAP granules of the tiny world (24 files)."""
    spec = ReplicaSpec.from_dict({**preset("tiny").to_dict(), "end": DAYS[1].isoformat()})
    objects = tmp_path_factory.mktemp("smap-objects")
    write_smap(World(spec), objects)
    return objects / PREFIX


@pytest.fixture(scope="module")
def cubes() -> pd.DataFrame:
    return cube_table()


# --- an independent computation: brute-force cells, supersampled weights ------------------------


def direct_cube_value(files: list[Path], cube: pd.Series, name: str) -> np.ndarray:
    """The 3-hourly values of ``name`` over one cube, straight from h5py: ``(granule,)``.

    Weights: 100 x 100 points spread over the bounding box of the cube's corners in EPSG:6933,
    counted per cell (cells found by searching the cell edges).
    """
    to_ease = Transformer.from_crs(int(cube.epsg), 6933, always_xy=True)
    xs, ys = to_ease.transform(
        [cube.x_min, cube.x_max, cube.x_max, cube.x_min],
        [cube.y_min, cube.y_min, cube.y_max, cube.y_max],
    )
    fx = (np.arange(100) + 0.5) / 100
    px, py = np.meshgrid(min(xs) + fx * (max(xs) - min(xs)), min(ys) + fx * (max(ys) - min(ys)))
    out = []
    for path in files:
        with h5py.File(path) as f:
            x, y = f["x"][...], f["y"][...]
            values = f["Geophysical_Data"][name][...].astype(np.float64)
        half = abs(x[1] - x[0]) / 2
        col = np.searchsorted(x + half, px.ravel())  # x ascending
        row = np.searchsorted(-(y - half), -py.ravel())  # y descending
        counts = np.zeros(values.shape)
        np.add.at(counts, (row, col), 1)
        valid = (values != FILL) & (counts > 0)
        out.append((counts * values)[valid].sum() / counts[valid].sum() if valid.any() else np.nan)
    return np.asarray(out)


def weight_tolerance(files: list[Path], cube: pd.Series, name: str) -> float:
    """What 100-point supersampling can miss: 1/100 of the box per axis moved between cells."""
    values = []
    for path in files:
        with h5py.File(path) as f:
            v = f["Geophysical_Data"][name][...]
        values.append(v[v != FILL])
    spread = max(float(np.ptp(v)) for v in values)  # bounds the spread under any one cube
    return 2 * 0.01 * spread + 1e-6 * float(np.abs(np.concatenate(values)).max())


def test_list_granules_gives_eight_per_day_sorted(smap_dir: Path) -> None:
    granules = list_granules(str(smap_dir), *DAYS)
    assert len(granules) == 24
    names = [Path(g).name for g in granules]
    assert names == sorted(names)
    assert names[0] == "SMAP_L4_SM_gph_20211201T013000_Vv7032_001.h5"
    assert names[-1] == "SMAP_L4_SM_gph_20211203T223000_Vv7032_001.h5"
    assert all(Path(g).is_file() for g in granules)


def test_daily_values_equal_a_direct_h5py_computation(smap_dir: Path, cubes: pd.DataFrame) -> None:
    result = smap_cubes(list_granules(str(smap_dir), *DAYS), cubes)
    assert result.dims == ("cube", "day", "smap_variable")
    assert result.dtype == np.float32
    assert list(result.smap_variable.values) == output_names(DEFAULT_VARIABLES)
    assert {"surface_temp_min", "surface_temp_max", "soil_temp_layer1_max"} <= set(
        result.smap_variable.values
    )
    assert list(result.granule_count.values) == [8, 8, 8]
    assert np.isfinite(result.values).all()
    day = dt.date(2021, 12, 2)
    files = sorted((smap_dir / f"{day:%Y.%m.%d}").glob("*.h5"))
    for index in (0, 6, 15):
        cube = cubes.iloc[index]
        got = result.sel(cube=cube.cube_id, day=np.datetime64(day))
        for name in DEFAULT_VARIABLES:
            direct = direct_cube_value(files, cube, name)
            tol = weight_tolerance(files, cube, name)
            assert abs(float(got.sel(smap_variable=name)) - direct.mean()) <= tol, name
        direct_t = direct_cube_value(files, cube, "surface_temp")
        tol = weight_tolerance(files, cube, "surface_temp")
        assert abs(float(got.sel(smap_variable="surface_temp_min")) - direct_t.min()) <= tol
        assert abs(float(got.sel(smap_variable="surface_temp_max")) - direct_t.max()) <= tol


def test_cubes_meet_several_cells_and_weights_follow_the_area(
    smap_dir: Path, cubes: pd.DataFrame, tmp_path: Path
) -> None:
    """A constant field gives itself back; a field of steps in x gives the overlap-weighted mean."""
    work = tmp_path / "2021.12.01"
    shutil.copytree(smap_dir / "2021.12.01", work)
    to_ease = Transformer.from_crs(int(cubes.epsg[0]), 6933, always_xy=True)
    for path in work.glob("*.h5"):
        with h5py.File(path, "r+") as f:
            x = f["x"][...]
            f["Geophysical_Data/sm_rootzone"][...] = np.broadcast_to(
                (x - x[0]) / 1e6, f["Geophysical_Data/sm_rootzone"].shape
            )
            f["Geophysical_Data/sm_profile"][...] = 0.25
    result = smap_cubes(sorted(str(p) for p in work.glob("*.h5")), cubes)
    np.testing.assert_allclose(result.sel(smap_variable="sm_profile"), 0.25, rtol=1e-6)
    with h5py.File(next(work.glob("*.h5"))) as f:
        x0, cell = float(f["x"][0]), float(f["x"][1] - f["x"][0])
    crossing = 0
    for cube, got in zip(cubes.itertuples(), result.sel(smap_variable="sm_rootzone"), strict=True):
        ex, _ = to_ease.transform([cube.x_min, cube.x_max], [cube.y_min, cube.y_max])
        box = (min(ex), max(ex))
        # the cell means are piecewise constant: integrate the step function over the box
        edges = x0 - cell / 2 + cell * np.arange(int((box[1] - x0) / cell) + 3)
        lows, highs = np.clip(edges[:-1], *box), np.clip(edges[1:], *box)
        want = ((highs - lows) * (edges[:-1] + cell / 2 - x0) / 1e6).sum() / (box[1] - box[0])
        crossing += int(((edges > box[0]) & (edges < box[1])).any())
        np.testing.assert_allclose(float(got[0]), want, rtol=1e-5)
    assert crossing >= 4  # several cubes straddle a cell edge


def test_fill_cells_are_left_out_and_all_fill_is_nan(
    smap_dir: Path, cubes: pd.DataFrame, tmp_path: Path
) -> None:
    work = tmp_path / "2021.12.01"
    shutil.copytree(smap_dir / "2021.12.01", work)
    files = sorted(work.glob("*.h5"))
    cube = cubes.iloc[0]
    before = direct_cube_value(files, cube, "sm_surface")
    to_ease = Transformer.from_crs(int(cube.epsg), 6933, always_xy=True)
    cx, cy = to_ease.transform(cube.x_min + 100, cube.y_max - 100)  # inside the NW corner cell
    for path in files:
        with h5py.File(path, "r+") as f:
            x, y = f["x"][...], f["y"][...]
            r, c = int(np.abs(y - cy).argmin()), int(np.abs(x - cx).argmin())
            f["Geophysical_Data/sm_surface"][r, c] = FILL
            f["Geophysical_Data/sm_rootzone"][...] = FILL
    after = direct_cube_value(files, cube, "sm_surface")
    result = smap_cubes([str(p) for p in files], cubes.iloc[[0]])
    value = float(result.sel(smap_variable="sm_surface")[0, 0])
    assert abs(value - after.mean()) <= weight_tolerance(files, cube, "sm_surface")
    assert before.mean() != pytest.approx(after.mean(), rel=1e-6)  # the filled cell mattered
    assert np.isnan(result.sel(smap_variable="sm_rootzone")).all()


def test_a_day_short_of_granules_raises_or_is_counted(
    smap_dir: Path, cubes: pd.DataFrame, tmp_path: Path
) -> None:
    root = tmp_path / PREFIX
    shutil.copytree(smap_dir, root)
    sorted((root / "2021.12.02").glob("*.h5"))[3].unlink()
    with pytest.raises(AssetNotFoundError, match=r"2021-12-02 \(7 of 8\)"):
        list_granules(str(root), *DAYS)
    with pytest.warns(IncompleteSourceWarning, match=r"2021-12-02 \(7 of 8\)"):
        granules = list_granules(str(root), *DAYS, missing="skip")
    assert len(granules) == 23
    result = smap_cubes(granules, cubes.iloc[:2], ("sm_rootzone", "surface_temp"))
    assert list(result.granule_count.values) == [8, 7, 8]
    assert np.isfinite(result.values).all()
    with pytest.warns(IncompleteSourceWarning, match=r"2021-12-05 \(0 of 8\)"):
        list_granules(str(root), DAYS[0], dt.date(2021, 12, 5), missing="skip")
    wide = smap_cubes(granules, cubes.iloc[:2], ("sm_rootzone",), end=dt.date(2021, 12, 4))
    assert list(wide.granule_count.values) == [8, 7, 8, 0]
    assert np.isnan(wide[:, 3]).all()


def test_errors_name_the_granule_or_the_cube(
    smap_dir: Path, cubes: pd.DataFrame, tmp_path: Path
) -> None:
    missing = str(smap_dir / "2021.12.09" / "SMAP_L4_SM_gph_20211209T013000_Vv7032_001.h5")
    with pytest.raises(AssetNotFoundError, match="SMAP_L4_SM_gph_20211209T013000"):
        smap_cubes([missing], cubes)
    granule = next((smap_dir / "2021.12.01").glob("*.h5"))
    with pytest.raises(AssetReadError, match=r"lacks Geophysical_Data/.*no_such_variable"):
        smap_cubes([str(granule)], cubes, ("sm_surface", "no_such_variable"))
    with pytest.raises(AssetReadError, match="not an SMAP L4 granule name"):
        smap_cubes([str(smap_dir / "notes.txt")], cubes)
    corrupt = tmp_path / "SMAP_L4_SM_gph_20211201T013000_corrupt.h5"
    corrupt.write_bytes(b"not hdf5" * 100)
    with pytest.raises(AssetReadError, match=r"corrupt\.h5"):
        smap_cubes([str(corrupt)], cubes)
    far = cubes.iloc[:1].assign(
        cube_id="far", x_min=cubes.x_min[0] + 3e5, x_max=cubes.x_max[0] + 3e5
    )
    with pytest.raises(AssetReadError, match=r"\['far'\] reach beyond"):
        smap_cubes([str(granule)], pd.concat([cubes.iloc[:1], far]))


def test_runs_in_another_process(smap_dir: Path, cubes: pd.DataFrame) -> None:
    """Arguments and results pickle, and nothing relies on the parent's state (Dask workers)."""
    granules = list_granules(str(smap_dir), DAYS[0], DAYS[0])
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        got = pool.submit(smap_cubes, granules, cubes.iloc[:3]).result()
    xr.testing.assert_identical(got, smap_cubes(granules, cubes.iloc[:3]))


def test_served_over_s3_equals_local(replica_root: Path, replica_endpoints: Endpoints) -> None:
    """Through the S3 API: the same granules, the same values, only the granules fetched."""
    options = replica_endpoints.storage_options()
    start, end = dt.date(2022, 1, 10), dt.date(2022, 1, 14)
    local = list_granules(str(replica_root / "objects" / PREFIX), start, end)
    remote = list_granules(replica_endpoints.s3_url(PREFIX), start, end, options)
    assert [Path(u).name for u in remote] == [Path(p).name for p in local]
    assert remote[0].startswith(f"s3://{replica_endpoints.bucket}/{PREFIX}/2022.01.10/")
    cubes = cube_table()
    want = smap_cubes(local, cubes)
    got = smap_cubes(remote, cubes, storage_options=options)
    np.testing.assert_array_equal(got.values, want.values)
    assert list(got.granule_count.values) == [8] * 5
    bad = remote[0].replace("2022.01.10/", "2022.01.10/x")
    with pytest.raises(AssetNotFoundError, match=r"2022\.01\.10/xSMAP_L4_SM_gph_20220110T013000"):
        smap_cubes([bad], cubes, storage_options=options)
    with pytest.raises(AssetNotFoundError, match=r"no SMAP L4 granules under .*smap/nowhere"):
        list_granules(replica_endpoints.s3_url("smap/nowhere"), start, start, options)


def test_throttled_granule_opens_are_retried_by_the_policy(
    smap_dir: Path, cubes: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each remote granule's first open is answered 503: the retry policy reads it again."""
    import fsspec

    from cubestream.config import RetryPolicy

    local = list_granules(str(smap_dir), DAYS[0], DAYS[0])
    memory = fsspec.filesystem("memory")
    remote = []
    for path in local:
        url = f"memory://retry-smap/{Path(path).name}"
        memory.pipe(url, Path(path).read_bytes())
        remote.append(url)
    real, failed = fsspec.core.url_to_fs, set()

    def throttled(url: str, **options: object) -> object:
        if url not in failed:
            failed.add(url)
            raise OSError(f"503 SlowDown: {url}")
        return real(url, **options)

    monkeypatch.setattr(fsspec.core, "url_to_fs", throttled)
    once = RetryPolicy(attempts=2, base_delay=0.0)
    got = smap_cubes(remote, cubes, start=DAYS[0], end=DAYS[0], retry=once)
    want = smap_cubes(local, cubes, start=DAYS[0], end=DAYS[0])
    np.testing.assert_array_equal(got.values, want.values)
    assert failed == set(remote)
    failed.clear()
    with pytest.raises(AssetReadError, match="503 SlowDown"):
        smap_cubes(remote, cubes, start=DAYS[0], end=DAYS[0], retry=RetryPolicy(attempts=1))
