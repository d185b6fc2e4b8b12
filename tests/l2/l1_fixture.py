"""A hand-built L1 store with known values: the layout `cubestream l1` writes, small cubes.

The auxiliary variables are written by L1's own writer (``cubestream.l1.auxiliary._write``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import zarr

from cubestream.l1.auxiliary import _write
from cubestream.l1.sentinel2 import BANDS
from cubestream.l1.store import COMPRESSOR
from cubestream.l2.plan import strings

EPOCH = dt.date(1970, 1, 1)
START, END = dt.date(2020, 1, 1), dt.date(2021, 12, 31)
ERA5 = ("t2m_mean", "t2m_min", "t2m_max", "tp_sum")
SMAP = ("sm_rootzone", "surface_temp", "surface_temp_min")
SLOPES = (0, 1, 1, 0, 1, 0, 2, 1, 0)
"""DN per day of each band: reflectance is linear in time, B8A (2) rises faster than B04 (1)."""


def day_number(day: dt.date) -> int:
    return (day - EPOCH).days


def known_dn(cube: int, band: int, days: np.ndarray, size: int) -> np.ndarray:
    """DN (time, y, x): integer and linear in the day at every pixel."""
    yy, xx = np.mgrid[0:size, 0:size]
    base = 500 + 300 * band + 7 * cube + yy + 2 * xx
    offset = (days - day_number(START))[:, None, None]
    return (base[None] + SLOPES[band] * offset).astype(np.uint16)


def _array(group, name, values, dims, chunks=None, attrs=None, fill=0):
    dtype = str if values.dtype.kind in "UO" else values.dtype
    array = group.create_array(
        name,
        shape=values.shape,
        chunks=chunks or values.shape,
        dtype=dtype,
        fill_value="" if dtype is str else fill,
        compressors=COMPRESSOR,
        dimension_names=dims,
        overwrite=True,
    )
    array[...] = values
    array.attrs.update(attrs or {})
    return array


def write_l1(
    path: Path,
    *,
    tiles: tuple[str, ...] = ("37MBU", "37MCU"),
    cubes: int = 3,
    size: int = 16,
    start: dt.date = START,
    end: dt.date = END,
    revisit: int = 5,
    cloud: float = 0.3,
    seed: int = 0,
    cloudy: tuple[str, ...] = (),
    water: tuple[str, ...] = (),
    drop: tuple[str, ...] = (),
    incomplete: tuple[str, ...] = (),
) -> Path:
    """Write an L1 store like `cubestream l1` does, with known values.

    ``cloudy`` cube ids are covered by cloud on every day; ``water`` cube ids have no SMAP
    value; ``drop`` names variables left out of every group; ``incomplete`` tiles are not
    marked complete.
    """
    rng = np.random.default_rng(seed)
    root = zarr.open_group(path, mode="a", zarr_format=3)
    first, last = day_number(start), day_number(end)
    for k, tile in enumerate(tiles):
        group = root.create_group(tile, overwrite=True)
        days = np.arange(first + k, last + 1, revisit, dtype=np.int64)
        ids = [f"{tile}{10 + k:02d}{10 + c:02d}" for c in range(cubes)]
        x0, y0 = 300000.0 + 100000 * k, 9700020.0
        cols = np.arange(cubes) + 10
        table = pd.DataFrame(
            {
                "row": np.full(cubes, 10 + k),
                "col": cols,
                "x_min": x0 + cols * 3840.0,
                "y_min": y0 - (11 + k) * 3840.0,
                "x_max": x0 + (cols + 1) * 3840.0,
                "y_max": np.full(cubes, y0 - (10 + k) * 3840.0),
                "lon": 36.2 + 0.9 * k + 0.035 * np.arange(cubes),
                "lat": np.full(cubes, -2.8),
            }
        )
        for name in ("min_lon", "min_lat", "max_lon", "max_lat"):
            table[name] = table["lon" if "lon" in name else "lat"] + (
                -0.017 if "min" in name else 0.017
            )
        group.attrs.update(
            {
                "tile": tile,
                "epsg": 32737,
                "resolution": 30,
                "x0": x0,
                "y0": y0,
                "complete": tile not in incomplete,
                "build": {"start": start.isoformat(), "end": end.isoformat(), "seed": seed},
                "missing_dates": [],
            }
        )
        _array(group, "cube", np.array(ids), ("cube",))
        _array(group, "time", days, ("time",), attrs={"units": "days since 1970-01-01"})
        _array(group, "band", np.array(BANDS), ("band",))
        offsets = (np.arange(size) + 0.5) * 30.0
        _array(group, "x", offsets, ("x",))
        _array(group, "y", -offsets, ("y",))
        for name in table.columns:
            _array(group, name, table[name].to_numpy(), ("cube",))
        t = len(days)
        scl = np.full((cubes, t, size, size), 4, np.uint8)
        draw = rng.random((cubes, t, size, size))
        scl[draw < cloud] = 9
        scl[draw < cloud / 2] = 3
        scl[draw < cloud / 6] = 10
        scl[draw > 1 - cloud / 10] = 0
        for c, cube_id in enumerate(ids):
            if cube_id in cloudy:
                scl[c] = 9
        dn = np.stack(
            [
                np.stack([known_dn(c, b, days, size) for b in range(len(BANDS))], 1)
                for c in range(cubes)
            ]
        )
        dn[np.broadcast_to((scl == 0)[:, :, None], dn.shape)] = 0
        if "s2" not in drop:
            _array(
                group,
                "s2",
                dn,
                ("cube", "time", "band", "y", "x"),
                chunks=(1, 16, len(BANDS), size, size),
                attrs={"scale_factor": 1e-4, "add_offset": 0.0, "_FillValue": 0},
            )
        _array(group, "scl", scl, ("cube", "time", "y", "x"), chunks=(1, 16, size, size))
        _array(
            group,
            "data_fraction",
            (scl > 0).mean(axis=(2, 3), dtype=np.float32),
            ("cube", "time"),
            chunks=(1, 16),
        )
        dem = (1000.0 + 10 * np.arange(size)[None, :, None] + np.zeros((cubes, 1, size))).astype(
            np.float32
        )
        dem[:, 0, 0] = np.nan
        layers = {
            "dem": dem,
            "landcover": rng.choice(np.array([10, 20, 30, 40], np.uint8), (cubes, size, size)),
            "geomorphons": rng.integers(1, 11, (cubes, size, size), dtype=np.uint8),
        }
        for name, values in layers.items():
            if name not in drop:
                _write(group, name, values, ("cube", "y", "x"), {}, {})
        daily = np.arange(first, last + 1, dtype=np.int64)
        if "era5" not in drop:
            lat = np.array([-2.6, -2.7, -2.8, -2.9, -3.0])
            lon = 36.0 + 0.1 * np.arange(12) + 0.9 * k
            n = daily - first
            era5 = np.empty((len(daily), len(ERA5), len(lat), len(lon)), np.float32)
            cell = 10 * np.arange(len(lat))[:, None] + np.arange(len(lon))[None, :]
            era5[:, 0] = 290 + n[:, None, None] * 0.01 + cell
            era5[:, 1] = era5[:, 0] - 5 - (n % 3)[:, None, None]
            era5[:, 2] = era5[:, 0] + 5 + (n % 4)[:, None, None]
            era5[:, 3] = 0.001 * (n % 5)[:, None, None]
            _write(
                group,
                "era5",
                era5,
                ("era5_time", "era5_variable", "latitude", "longitude"),
                {
                    "era5_time": ("era5_time", daily),
                    "era5_variable": ("era5_variable", np.array(ERA5)),
                    "latitude": ("latitude", lat),
                    "longitude": ("longitude", lon),
                },
                {},
            )
        if "smap" not in drop:
            smap = np.empty((cubes, len(daily), len(SMAP)), np.float32)
            n = daily - first
            smap[:, :, 0] = 0.2 + 0.001 * (n % 50)[None]
            smap[:, :, 1] = 300 + 0.01 * n[None]
            smap[:, :, 2] = 295 - (n % 7)[None]
            smap[:, n % 11 == 3] = np.nan
            for c, cube_id in enumerate(ids):
                if cube_id in water:
                    smap[c] = np.nan
            _write(
                group,
                "smap",
                smap,
                ("cube", "day", "smap_variable"),
                {"day": ("day", daily), "smap_variable": ("smap_variable", np.array(SMAP))},
                {},
            )
    return path


def write_locations(path: Path, l1: Path, splits: dict[str, str] | None = None) -> Path:
    """A locations table for the cubes of an L1 store (split: train, then val/test in turn)."""
    root = zarr.open_group(l1, mode="r")
    ids = sorted(str(c) for name, group in root.groups() for c in strings(group["cube"][...]))
    cycle = ("train", "train", "train", "val", "test", "train", "train", "test")
    split = [(splits or {}).get(c, cycle[i % len(cycle)]) for i, c in enumerate(ids)]
    pd.DataFrame({"cube_id": ids, "tile": [c[:5] for c in ids], "split": split}).to_parquet(path)
    return path
