"""What-if for the level-1 build: read chunks aligned to the COG blocks, one graph for the writes.

Two things make cubestream's build fetch each COG block once per cube rather than once:

1. :func:`cubestream.l1.sentinel2.cube_arrays` stacks a tile in 128 x 128 chunks, one per box,
   so each Dask task opens every COG of its time chunk again and reads (and decodes) the whole
   COG block under its box; boxes that share a block read it once each, unless GDAL's
   ``/vsicurl/`` cache still holds it (16 MB by default: it does not).
2. :func:`cubestream.l1.build.tile_writes` wraps each chunk (``s2.blocks[c, t]``) in its own
   ``dask.delayed`` write; computing them optimizes each write's graph on its own, which fuses
   the reads into every write task, so nothing is shared between writes (``scl`` is read twice,
   for ``scl`` and for ``data_fraction``, and a read chunk shared by cubes is read per cube).

:func:`block_cube_arrays` stacks one item at a time in chunks of the COG block size on the
tile's grid (at 30 m a 1024 px block covers 8 x 8 boxes exactly), cuts every box out of its block
chunk, then regroups the items by time chunk and fuses the days exactly as cubestream does; a
read chunk holds one item's assets over one block (9 x 1024 x 1024 x 2 bytes, about 19 MB).
:func:`shared_tile_writes` optimizes ``s2``, ``scl`` and ``data_fraction`` together once and
turns their chunks into delayed values without optimizing again, so every read task is shared
by the writes that need it. Together, each COG block under the cubes is fetched and decoded once
per build. :func:`patched` swaps both into :func:`cubestream.l1.build_l1` for one run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from cubestream.l1.plan import TilePlan
from cubestream.l1.sentinel2 import BAND_ASSETS, BOX, SCL_ASSET, _fused

__all__ = ["block_cube_arrays", "patched", "shared_tile_writes"]

BLOCK = 1024
"""Read chunk side in pixels of the 30 m grid (the replica's COG block size)."""


def _stack(plan: TilePlan, assets: tuple[str, ...], gdal_env: Any, block: int) -> Any:
    import stackstac
    from rasterio.enums import Resampling

    reflectance = assets != (SCL_ASSET,)
    dtype = np.dtype("uint16") if reflectance else np.dtype("uint8")
    return stackstac.stack(
        list(plan.items),
        assets=list(assets),
        epsg=plan.epsg,
        resolution=30,
        bounds=plan.bounds,
        snap_bounds=False,
        resampling=Resampling.average if reflectance else Resampling.nearest,
        chunksize=(1, -1, block, block),
        dtype=dtype,
        fill_value=dtype.type(0),
        rescale=False,
        sortby_date=False,
        errors_as_nodata=(),
        gdal_env=gdal_env,
        properties=False,
        band_coords=False,
        xy_coords="topleft",
    ).data


def _cubes(stack: Any, plan: TilePlan, offsets: bool) -> Any:
    """Cut each box, regroup items per time chunk, fuse the days; stack the cubes."""
    import dask.array as da

    cubes = []
    for row, col in zip(plan.cubes["row"], plan.cubes["col"], strict=True):
        box = stack[..., row * BOX : (row + 1) * BOX, col * BOX : (col + 1) * BOX]
        cubes.append(_fused(box.rechunk((plan.item_chunks, -1, BOX, BOX)), plan, offsets))
    return da.stack(cubes)


def block_cube_arrays(plan: TilePlan, gdal_env: Any, block: int = BLOCK) -> tuple[Any, Any]:
    """Same arrays as :func:`cubestream.l1.sentinel2.cube_arrays`, read in block chunks."""
    reflectance = _cubes(_stack(plan, BAND_ASSETS, gdal_env, block), plan, True)
    scl = _cubes(_stack(plan, (SCL_ASSET,), gdal_env, block), plan, False)[:, :, 0]
    return reflectance, scl


def _data_fraction(block: np.ndarray) -> np.ndarray:
    return (block > 0).mean(axis=(2, 3), dtype=np.float32)


def shared_tile_writes(plan: TilePlan, group: Any, config: Any) -> list[Any]:
    """:func:`cubestream.l1.build.tile_writes` with one optimized graph shared by all writes."""
    import dask

    from cubestream.l1 import build
    from cubestream.l1.config import layered_env
    from cubestream.l1.store import existing_chunks, write_block

    s2, scl = build.cube_arrays(plan, layered_env(config.gdal_env))
    fraction = scl.map_blocks(_data_fraction, drop_axis=[2, 3], dtype=np.float32)
    arrays = dict(
        zip(("s2", "scl", "data_fraction"), dask.optimize(s2, scl, fraction), strict=True)
    )
    write = dask.delayed(write_block, pure=False)
    writes = []
    for name, array in arrays.items():
        done = existing_chunks(group, name)
        blocks = array.to_delayed(optimize_graph=False)
        for c in range(len(plan.cubes)):
            for t in range(len(plan.day_chunks)):
                index = (c, t) + (0,) * (array.ndim - 2)
                if index not in done:
                    region = build._region(plan, c, t)
                    path = f"{plan.tile}/{name}"
                    so = config.storage_options or None
                    writes.append(write(config.out, so, path, region, blocks[index]))
    return writes


@contextmanager
def patched() -> Iterator[None]:
    """Make :func:`cubestream.l1.build_l1` use both changes inside the ``with`` block."""
    from cubestream.l1 import build

    originals = build.cube_arrays, build.tile_writes
    build.cube_arrays, build.tile_writes = block_cube_arrays, shared_tile_writes
    try:
        yield
    finally:
        build.cube_arrays, build.tile_writes = originals
