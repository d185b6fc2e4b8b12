"""A small L2 store of the replica world, made by the real L2 builder in a few seconds.

The whole chain (``cubestream replica create``, ``cubestream l1``, ``cubestream l2``) takes
minutes for the 450 days one L2 sample spans, most of it writing whole-tile COGs and 8 SMAP
files a day. This fixture keeps what the trainers learn from and skips the files: it takes
the L1 layout of the L2 tests' hand-built store (``tests/l2/l1_fixture.py``) and overwrites its
values with the replica world's own (:mod:`cubestream.replica`): Sentinel-2 DN and scene
classes rendered by :func:`cubestream.replica.sentinel2.render` for every acquisition, land
cover and elevation of the pixels, and the simulated weather and soil moisture at each cube.
:func:`cubestream.l2.build_l2` then masks, gap-fills and windows them as for real data.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import zarr
from pyproj import Transformer

from cubestream.l2 import L2Config, build_l2
from cubestream.replica.sentinel2 import render
from cubestream.replica.spec import ReplicaSpec, Window
from cubestream.replica.world import World

__all__ = ["write_replica_l2"]

TILE = "37MBU"
"""The tile of the cubes."""
FAR = "37MCU"
"""A tile never rendered: the replica places its volcano in the first tile's imaged window, and
this tile's window keeps it away from the cubes (grass, shrub and bare land)."""
START, END = dt.date(2020, 1, 1), dt.date(2021, 12, 31)


def _l1_fixture() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "l2" / "l1_fixture.py"
    spec = importlib.util.spec_from_file_location("l1_fixture", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _pixels(world: World, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude of the window's pixel centres."""
    tile = world.tiles[TILE]
    rows = window.row + np.arange(window.height) + 0.5
    cols = window.col + np.arange(window.width) + 0.5
    x, y = np.meshgrid(tile.x0 + 30 * cols, tile.y0 - 30 * rows)
    lon, lat = Transformer.from_crs(tile.epsg, 4326, always_xy=True).transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def _overwrite(group: Any, name: str, values: np.ndarray) -> None:
    array = group[name]
    assert array.shape == values.shape, (name, array.shape, values.shape)
    array[...] = values.astype(array.dtype)


def _weather(world: World, lon: float, lat: float, days: np.ndarray) -> dict[str, np.ndarray]:
    """Daily drivers at a point, on the L1 fixture's daily axis (days since 1970-01-01)."""
    point = world.drivers.interp(lon=lon, lat=lat)
    dates = np.datetime64("1970-01-01") + days.astype("timedelta64[D]")
    daily = point.sel(day=dates)
    mean, amp = daily["t2m"].values, daily["t2m_amp"].values
    return {
        "t2m_mean": mean,
        "t2m_min": mean - amp / 2,
        "t2m_max": mean + amp / 2,
        "tp_sum": daily["tp"].values,
        "sm_rootzone": daily["sm_rootzone"].values,
        "surface_temp": mean,
        "surface_temp_min": mean - amp / 2,
    }


def write_replica_l2(root: Path, *, cubes: int = 4, size: int = 32, scheduler: str) -> Path:
    """Write ``root/l1.zarr``, ``root/locations.parquet`` and ``root/l2.zarr``; return the last.

    Parameters
    ----------
    root : Path
        Folder of the three outputs.
    cubes : int
        Cubes of ``size`` x ``size`` px side by side in one tile (two windows each in L2).
    size : int
        Cube side in pixels.
    scheduler : str
        Address of the Dask scheduler the L2 build runs on.
    """
    fixture = _l1_fixture()
    window = Window(row=11 * 128, col=21 * 128, height=size, width=cubes * size)
    spec = ReplicaSpec(
        tiles=(FAR, TILE),
        start=START,
        end=END,
        data_windows={FAR: Window(row=20 * 128, col=20 * 128, height=128, width=128), TILE: window},
        missing_dates=0,
        split_datatakes=0,
    )
    world = World(spec)
    l1 = fixture.write_l1(
        root / "l1.zarr",
        tiles=(FAR, TILE),
        cubes=cubes,
        size=size,
        start=START,
        end=END,
        revisit=spec.revisit_days,
    )
    group: Any = zarr.open_group(l1, mode="r+")[TILE]
    acquisitions = world.acquisitions(TILE)
    days = group["time"][...]
    assert [fixture.day_number(a.day) for a in acquisitions] == list(days)

    def per_cube(values: np.ndarray) -> np.ndarray:
        """(..., size, cubes * size) -> (cubes, ..., size, size)."""
        return np.stack(np.split(values, cubes, axis=-1))

    rendered = [render(world, acq) for acq in acquisitions]
    dn = np.stack([r.dn for r in rendered], axis=1)  # (band, time, y, x)
    scl = np.stack([r.scl for r in rendered])  # (time, y, x)
    _overwrite(group, "s2", per_cube(dn).transpose(0, 2, 1, 3, 4))
    _overwrite(group, "scl", per_cube(scl))
    _overwrite(group, "data_fraction", per_cube(scl > 0).mean(axis=(2, 3)))
    lon, lat = _pixels(world, window)
    _overwrite(group, "landcover", per_cube(world.statics.landcover(lon, lat)))
    _overwrite(group, "dem", per_cube(world.statics.elevation(lon, lat)))
    daily = np.arange(fixture.day_number(START), fixture.day_number(END) + 1)
    lons, lats = per_cube(lon).mean(axis=(1, 2)), per_cube(lat).mean(axis=(1, 2))
    weather = [_weather(world, float(x), float(y), daily) for x, y in zip(lons, lats, strict=True)]
    era5 = np.stack([weather[0][name] for name in fixture.ERA5], axis=1)
    _overwrite(group, "era5", np.broadcast_to(era5[..., None, None], group["era5"].shape))
    smap = np.stack([np.stack([w[n] for n in fixture.SMAP], axis=-1) for w in weather])
    _overwrite(group, "smap", smap)
    locations = fixture.write_locations(root / "locations.parquet", l1)
    out = root / "l2.zarr"
    config = L2Config(
        l1=str(l1),
        locations=str(locations),
        out=str(out),
        windows_per_cube=2,
        tiles=(TILE,),
    )
    from distributed import Client

    with Client(scheduler, set_as_default=False) as client:
        report = build_l2(config, client=client)
    assert report["complete"] and not report["failed_blocks"], report
    return out
