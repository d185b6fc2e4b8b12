"""Export an L2 store to one NetCDF file per sample, for the tools that read minicube files.

Each sample becomes ``DIR/<split>/<cube_id>_<YYYY-MM-DD>.nc`` (the date is ``start_time``; with
one window per cube that is one file per cube), holding the sample's variables with real
coordinates:

==============================  ==========================================================
in the file                     from the store
==============================  ==========================================================
``time``                        ``start_time + time`` as dates
``x``, ``y``                    pixel centres in the tile's CRS (``x_min + x``, ``y_max + y``)
``band``, ``weather_variable``  as in the store
``s2``, ``kndvi``, ``mask``,    the sample's slices, same dtypes
``dist_mask``, ``weather``,
``dem``, ``landcover``,
``geomorphons``
attributes                      ``cube_id``, ``split``, ``tile``, ``epsg``, ``crs``
                                (``EPSG:<epsg>``), ``window``, ``valid_fraction``, and the
                                store's normalisation statistics
==============================  ==========================================================

The files are NetCDF-4 (zlib level 4) through ``h5netcdf`` when it is installed, else NetCDF-3
through scipy (no compression; ``uint8`` variables become ``int16`` there: NetCDF-3 has no
unsigned bytes).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from cubestream.georef import grid_mapping_attrs
from cubestream.l2.check import check_store
from cubestream.l2.encoding import ENCODED, decode_array, scale_of
from cubestream.l2.plan import strings
from cubestream.l2.store import EXTRAS, open_store

__all__ = ["export_netcdf"]

_PER_SAMPLE = ("s2", "kndvi", "mask", "dist_mask", "weather", "dem", "landcover", "geomorphons")


def _engine() -> Literal["h5netcdf", "scipy"]:
    return "h5netcdf" if importlib.util.find_spec("h5netcdf") else "scipy"


def _dataset(root: Any, i: int, meta: dict[str, np.ndarray], netcdf3: bool) -> xr.Dataset:
    start = np.datetime64(int(meta["start_time"][i]), "D")
    time = start + np.asarray(root["time"][...]).astype("timedelta64[D]")
    x = float(meta["x_min"][i]) + np.asarray(root["x"][...], np.float64)
    y = float(meta["y_max"][i]) + np.asarray(root["y"][...], np.float64)
    data = {}
    for name in _PER_SAMPLE:
        array = root[name]
        dims = tuple(array.metadata.dimension_names)[1:]
        values = np.asarray(array[i])
        if name in ENCODED:  # earlier tools read float reflectance and kNDVI
            values = decode_array(values, scale_of(array.attrs))
        if netcdf3 and values.dtype == np.uint8:
            values = values.astype(np.int16)  # NetCDF-3 has no unsigned bytes
        attrs = {"long_name": array.attrs.get("long_name", "")}
        if dims[-2:] == ("y", "x"):
            attrs["grid_mapping"] = "spatial_ref"
        data[name] = (dims, values, attrs)
    epsg = int(meta["epsg"][i])
    data["spatial_ref"] = ((), np.asarray(0, np.int32), grid_mapping_attrs(epsg))
    attrs = {
        "cube_id": str(meta["cube_id"][i]),
        "split": str(meta["split"][i]),
        "tile": str(meta["tile"][i]),
        "epsg": epsg,
        "crs": f"EPSG:{epsg}",
        "window": int(meta["window"][i]),
        "valid_fraction": float(meta["valid_fraction"][i]),
        "weather_mean": list(root["weather"].attrs.get("mean", [])),
        "weather_std": list(root["weather"].attrs.get("std", [])),
        "dem_mean": float(root["dem"].attrs.get("mean", np.nan)),
        "dem_std": float(root["dem"].attrs.get("std", np.nan)),
        "source": "cubestream L2",
    }
    coords = {
        "time": ("time", time.astype("datetime64[ns]")),
        "band": ("band", strings(root["band"][...])),
        "weather_variable": (
            "weather_variable",
            strings(root["weather_variable"][...]),
        ),
        "y": ("y", y, {"units": "m", "standard_name": "projection_y_coordinate"}),
        "x": ("x", x, {"units": "m", "standard_name": "projection_x_coordinate"}),
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def export_netcdf(
    store: str,
    directory: str | Path,
    *,
    storage_options: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[Path]:
    """Write one NetCDF file per sample of a complete L2 store; return their paths.

    Parameters
    ----------
    store : str
        The L2 store (checked with :func:`~cubestream.l2.check.check_store` first).
    directory : str or Path
        Where to write ``<split>/<cube_id>_<date>.nc``.
    storage_options : dict, optional
        fsspec options of an ``s3://`` store.
    progress : bool
        Show a progress bar.
    """
    from tqdm import tqdm

    check_store(store, storage_options)
    root = open_store(store, storage_options)
    names = ("cube_id", "split", "start_time", "valid_fraction", *EXTRAS)
    meta = {name: np.asarray(root[name][...]) for name in names}
    engine = _engine()
    encoding_of = {"zlib": True, "complevel": 4} if engine == "h5netcdf" else {}
    written = []
    count = len(meta["cube_id"])
    for i in tqdm(
        range(count), desc="l2 netcdf", unit="file", disable=not progress, file=sys.stderr
    ):
        ds = _dataset(root, i, meta, engine == "scipy")
        day = str(np.datetime64(int(meta["start_time"][i]), "D"))
        path = Path(directory) / str(meta["split"][i]) / f"{meta['cube_id'][i]}_{day}.nc"
        path.parent.mkdir(parents=True, exist_ok=True)
        encoding = {name: dict(encoding_of) for name in _PER_SAMPLE}
        ds.to_netcdf(path, engine=engine, encoding=encoding)
        written.append(path)
    return written
