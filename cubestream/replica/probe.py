"""Check that a served replica answers like the production services, with the real clients.

Each probe uses the client a user would: pystac-client for the STAC API, rasterio/GDAL for COGs
over S3, h5py over fsspec for SMAP, xarray over fsspec for the ERA5 Zarr store. The figures they
return go into the demo's summary.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window as RioWindow

from cubestream.replica import layout
from cubestream.replica.serve import Endpoints
from cubestream.replica.spec import load_spec
from cubestream.replica.world import World
from cubestream.sources.sentinel2 import names_tile, to_s2_item

__all__ = [
    "access_log_bytes",
    "probe_all",
    "read_cog_window",
    "read_era5",
    "read_smap_hyperslab",
    "search_stac",
]


def access_log_bytes(endpoints: Endpoints, key_contains: str, since_line: int = 0) -> int:
    """Bytes the S3 server sent for objects whose path contains ``key_contains``."""
    lines = Path(endpoints.access_log).read_text().splitlines()[since_line:]
    records = [json.loads(line) for line in lines if line.strip()]
    return sum(int(r["bytes"]) for r in records if key_contains in r["path"])


def _log_length(endpoints: Endpoints) -> int:
    return len(Path(endpoints.access_log).read_text().splitlines())


def search_stac(
    endpoints: Endpoints, bbox: tuple[float, float, float, float], datetime: str
) -> list[dict[str, Any]]:
    """Search the STAC API with pystac-client; return the items as dicts."""
    from pystac_client import Client

    client = Client.open(endpoints.stac_api)
    search = client.search(collections=[endpoints.collection], bbox=bbox, datetime=datetime)
    return list(search.items_as_dicts())


def read_cog_window(
    href: str, row: int, col: int, size: int = 128, endpoints: Endpoints | None = None
) -> np.ndarray:
    """Read a ``size x size`` window of band 1 of a COG (local path, URL, or ``s3://`` served)."""
    path = href.replace("s3://", "/vsis3/", 1) if href.startswith("s3://") else href
    env = endpoints.rasterio_env() if endpoints else rasterio.Env()
    with env, rasterio.open(path) as src:
        return np.asarray(src.read(1, window=RioWindow(col, row, size, size)))


def read_smap_hyperslab(
    endpoints: Endpoints, key: str, variable: str, rows: slice, cols: slice
) -> np.ndarray:
    """Read rows x cols of one SMAP variable from the bucket with h5py over fsspec."""
    from cubestream.storage import open_h5

    with open_h5(endpoints.s3_url(key), endpoints.s3(), block_size=256 * 1024) as h5:
        return np.asarray(h5[f"Geophysical_Data/{variable}"][rows, cols])


def read_era5(endpoints: Endpoints) -> Any:
    """Open the ERA5 Zarr store from the bucket with xarray (lazily)."""
    import xarray as xr

    from cubestream.storage import zarr_store

    url = endpoints.s3_url(layout.ERA5_KEY)
    return xr.open_zarr(zarr_store(url, endpoints.s3()), consolidated=None)


def probe_all(root: Path, endpoints: Endpoints) -> dict[str, Any]:
    """Run every probe against a served replica and compare with the local files.

    Returns
    -------
    dict
        Figures: items found, the bytes sent for one 128 x 128 window vs the COG's size, timings.
    """
    world = World(load_spec(root))
    tile_id = world.spec.tiles[0]
    win = world.window(tile_id)
    acq = world.acquisitions(tile_id)[0]
    started = time.perf_counter()
    items = search_stac(endpoints, world.bbox, f"{acq.day.isoformat()}/{acq.day.isoformat()}")
    search_s = time.perf_counter() - started
    item = next(to_s2_item(i) for i in items if names_tile(i, tile_id))
    href = item.hrefs["B04"]
    key = href.split(f"/{endpoints.bucket}/", 1)[1]
    local_path = root / layout.OBJECTS_DIR / key
    mark = _log_length(endpoints)
    remote = read_cog_window(f"s3://{endpoints.bucket}/{key}", win.row, win.col, 128, endpoints)
    sent = access_log_bytes(endpoints, key, mark)
    local = read_cog_window(str(local_path), win.row, win.col, 128)
    smap_keys = sorted((root / layout.OBJECTS_DIR / "smap").rglob("*.h5"))
    smap_key = str(smap_keys[0].relative_to(root / layout.OBJECTS_DIR))
    sm = read_smap_hyperslab(endpoints, smap_key, "sm_surface", slice(0, 2), slice(0, 2))
    era5 = read_era5(endpoints)
    return {
        "stac_items_found": len(items),
        "stac_search_seconds": round(search_s, 3),
        "cog_window_identical": bool(np.array_equal(remote, local)),
        "cog_window_bytes_sent": sent,
        "cog_file_bytes": local_path.stat().st_size,
        "smap_hyperslab": [[float(v) for v in row] for row in sm],
        "era5_variables": sorted(str(v) for v in era5.data_vars),
        "era5_shape": {str(k): int(v) for k, v in era5.sizes.items()},
    }
