"""``cubestream replica create``: write a replica world into a directory.

The Sentinel-2 items are rendered and written in parallel processes (each COG is written to a
``.part`` file and renamed); SMAP, ERA5, SRTM and the strata rasters follow; ``replica.json`` is
written last, so a directory without it is never mistaken for a complete replica. Creating the
same spec again is a no-op; another spec needs ``overwrite=True``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cubestream.errors import ReplicaError
from cubestream.replica import layout
from cubestream.replica.spec import SPEC_FILE, ReplicaSpec
from cubestream.replica.world import World

__all__ = ["create_replica"]

_WORLDS: dict[str, World] = {}


def _world(spec_json: str) -> World:
    """One World per process and spec (its drivers are simulated once)."""
    if spec_json not in _WORLDS:
        _WORLDS[spec_json] = World(ReplicaSpec.from_dict(json.loads(spec_json)))
    return _WORLDS[spec_json]


def _write_acquisition(spec_json: str, objects: str, tile_id: str, index: int) -> dict[str, Any]:
    """Render one acquisition, write its ten COGs and return its STAC item (worker process)."""
    from cubestream.replica.sentinel2 import asset_arrays, render, write_cog
    from cubestream.replica.stac import item

    world = _world(spec_json)
    acq = world.acquisitions(tile_id)[index]
    tile = world.tiles[tile_id]
    native = world.spec.resolution == "native"
    rendered = render(world, acq, resolution=10 if native else 30)
    ident = layout.item_id(acq.satellite, tile_id, acq.day, acq.sequence)
    hrefs, shapes, resolutions = {}, {}, {}
    tags = {"S2_PROCESSING_BASELINE": acq.baseline, "BOA_ADD_OFFSET": str(-acq.offset)}
    assets = asset_arrays(rendered, native)
    for name, (values, window, res) in assets.items():
        path = Path(objects) / layout.s2_key(tile_id, acq.day, ident, name)
        shape = tile.shape(res)
        write_cog(
            path,
            values,
            window,
            tile_shape=shape,
            transform=tile.transform(res),
            epsg=tile.epsg,
            blocksize=world.spec.blocksize,
            tags=tags,
        )
        hrefs[name], shapes[name], resolutions[name] = str(path.resolve()), shape, res
    entry = item(
        acq,
        tile,
        hrefs=hrefs,
        shapes=shapes,
        resolutions=resolutions,
        scl=assets["SCL"][0],
        window=rendered.window,
        covered=rendered.covered,
    )
    for asset in entry["assets"].values():
        asset |= _file_info(Path(asset["href"]))
    return entry


def _file_info(path: Path) -> dict[str, Any]:
    """``file:size`` and ``file:checksum`` (a SHA2-256 multihash, as Earth Search writes it)."""
    data = path.read_bytes()
    return {"file:size": len(data), "file:checksum": "1220" + hashlib.sha256(data).hexdigest()}


def _write_sentinel2(world: World, objects: Path, workers: int) -> list[dict[str, Any]]:
    spec_json = json.dumps(world.spec.to_dict(), sort_keys=True)
    jobs = [
        (tile_id, k)
        for tile_id in world.spec.tiles
        for k in range(len(world.acquisitions(tile_id)))
    ]
    items: list[dict[str, Any]] = []
    bar = tqdm(total=len(jobs), desc="sentinel-2 items", unit="item", file=sys.stderr)
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(_write_acquisition, spec_json, str(objects), *job) for job in jobs]
        for future in futures:
            items.append(future.result())
            bar.update()
    bar.close()
    return sorted(items, key=lambda i: (i["properties"]["datetime"], i["id"]))


def _write_others(world: World, objects: Path) -> dict[str, int]:
    from cubestream.replica.era5 import write_era5
    from cubestream.replica.smap import write_smap
    from cubestream.replica.srtm import write_srtm
    from cubestream.replica.strata import write_strata

    counts = {}
    for name, writer in (
        ("smap", write_smap),
        ("era5", write_era5),
        ("srtm", write_srtm),
        ("strata", write_strata),
    ):
        started = time.perf_counter()
        counts[name] = len(writer(world, objects))
        print(
            f"{name}: {counts[name]} objects in {time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    return counts


def _check_existing(root: Path, spec: ReplicaSpec, overwrite: bool) -> bool:
    """Return True if ``root`` already holds this replica; clear it if asked to."""
    manifest = root / SPEC_FILE
    if overwrite and root.exists():
        shutil.rmtree(root)
        return False
    if manifest.exists():
        existing = json.loads(manifest.read_text()).get("spec")
        if existing == spec.to_dict():
            return True
        raise ReplicaError(
            f"{root} already holds a replica of another spec; pass --overwrite to replace it "
            "or choose another directory"
        )
    if root.is_dir() and any(root.iterdir()) and not (root / layout.OBJECTS_DIR).is_dir():
        raise ReplicaError(
            f"{root} is not empty and holds no replica (no {SPEC_FILE}, no "
            f"{layout.OBJECTS_DIR}/); pass --overwrite to replace its contents or choose "
            "another directory"
        )
    if root.exists() and not root.is_dir():
        raise ReplicaError(f"{root} is a file; give a directory for the replica")
    return False


def create_replica(
    root: Path, spec: ReplicaSpec, *, workers: int | None = None, overwrite: bool = False
) -> Path:
    """Write the replica world of ``spec`` into ``root`` (see :mod:`cubestream.replica.layout`).

    Parameters
    ----------
    root : Path
        Target directory (created if missing).
    spec : ReplicaSpec
        The world to write.
    workers : int, optional
        Processes rendering Sentinel-2 items (default: the number of CPUs).
    overwrite : bool
        Replace a replica of another spec already in ``root``.

    Returns
    -------
    Path
        ``root``.
    """
    root = Path(root)
    if _check_existing(root, spec, overwrite):
        print(f"{root} already holds this replica; nothing to do", file=sys.stderr)
        return root
    world = World(spec)
    objects = root / layout.OBJECTS_DIR
    objects.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    items = _write_sentinel2(world, objects, workers or os.cpu_count() or 1)
    counts = _write_others(world, objects)
    mislabelled = _write_stac(root, world, items)
    (root / layout.IMAGED_FILE).write_text(json.dumps(_imaged(world), indent=1))
    manifest = {
        "spec": spec.to_dict(),
        "created": dt.datetime.now(dt.UTC).isoformat(),
        "seconds": round(time.perf_counter() - started, 1),
        "counts": {"sentinel2_items": len(items), **counts},
        "bytes": sum(p.stat().st_size for p in objects.rglob("*") if p.is_file()),
        "mislabelled_offsets": mislabelled,
    }
    (root / SPEC_FILE).write_text(json.dumps(manifest, indent=1))
    return root


def _write_ndjson(path: Path, items: list[dict[str, Any]]) -> None:
    with path.open("w") as out:
        for entry in items:
            out.write(json.dumps(entry) + "\n")


def _write_stac(root: Path, world: World, canonical: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Write the items in every catalogue's schema; return the mislabelled ids per catalogue.

    ``stac/items.ndjson`` and ``stac/collection.json`` get the spec's catalogue; each catalogue
    also gets its items (mislabels included), its correctly labelled items and its collection
    under ``stac/catalogues/``.
    """
    from cubestream.replica.catalogues import (
        MISLABELLABLE,
        catalogue_collection,
        catalogue_item,
        scene,
    )
    from cubestream.replica.spec import CATALOGUES

    (root / layout.CATALOGUES_DIR).mkdir(parents=True, exist_ok=True)
    wrong_days = {tile_id: world.mislabelled_days(tile_id) for tile_id in world.spec.tiles}
    mislabelled: dict[str, list[str]] = {}
    for name in CATALOGUES:
        labelled, truth, wrong = [], [], []
        for item in canonical:
            s = scene(item)
            bad = name in MISLABELLABLE and s.sensed.date() in wrong_days[s.tile]
            correct = catalogue_item(item, name)
            labelled.append(catalogue_item(item, name, mislabel=True) if bad else correct)
            truth.append(correct)
            if bad:
                wrong.append(correct["id"])
        items_file, truth_file, collection_file = layout.catalogue_files(name)
        _write_ndjson(root / items_file, labelled)
        _write_ndjson(root / truth_file, truth)
        collection = catalogue_collection(_collection(world), name)
        (root / collection_file).write_text(json.dumps(collection, indent=1))
        mislabelled[name] = wrong
    items_file, _, collection_file = layout.catalogue_files(world.spec.catalogue)
    shutil.copyfile(root / items_file, root / layout.ITEMS_FILE)
    shutil.copyfile(root / collection_file, root / layout.COLLECTION_FILE)
    return mislabelled


def _collection(world: World) -> dict[str, Any]:
    from cubestream.replica.stac import collection

    return collection(world.bbox, world.spec.start, world.spec.end)


def _imaged(world: World) -> dict[str, Any]:
    """GeoJSON of each tile's imaged window: the area where minicubes have data."""
    import shapely
    from pyproj import Transformer
    from shapely.geometry import box, mapping

    features = []
    for tile_id, tile in world.tiles.items():
        win = world.window(tile_id)
        x_min, y_max = tile.x0 + 30 * win.col, tile.y0 - 30 * win.row
        footprint = box(x_min, y_max - 30 * win.height, x_min + 30 * win.width, y_max)
        to_ll = Transformer.from_crs(tile.epsg, 4326, always_xy=True).transform
        geometry = shapely.transform(
            footprint.segmentize(1000.0),
            lambda xy, f=to_ll: np.column_stack(f(xy[:, 0], xy[:, 1])),
        )
        features.append(
            {
                "type": "Feature",
                "properties": {"tile": tile_id, "window": world.window(tile_id).__dict__},
                "geometry": mapping(geometry),
            }
        )
    return {"type": "FeatureCollection", "features": features}
