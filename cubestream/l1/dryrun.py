"""What a level-1 build would read, from its plan alone: ``cubestream l1 --dry-run``.

Per tile: the items, days and read blocks (tasks) of the plan, and the bytes the build expects
to fetch, counted once per item and band under the read blocks:

- ``expected_bytes``: where the asset states its ``file:size`` (Earth Search C1, CDSE), that size
  times the share of the tile the read blocks cover (COG blocks compress alike over a tile, so
  this is the estimate); elsewhere the uncompressed size below;
- ``expected_bytes_uncompressed``: the native pixels under the read blocks (each band at its own
  resolution: the 10 m bands hold 9 times the pixels of a 30 m block, the 20 m bands 2.25
  times) at 2 bytes (SCL 1): an upper bound.

Nothing is read but the catalogue.
"""

from __future__ import annotations

from typing import Any

from cubestream.l1.blocks import plan_blocks
from cubestream.l1.plan import TilePlan
from cubestream.l1.sentinel2 import BANDS, SCL, TILE_PIXELS
from cubestream.sources.providers import get_provider
from cubestream.sources.sentinel2 import S2Item

__all__ = ["dry_run_entry", "native_resolution"]

TILE_METRES = TILE_PIXELS * 30.0
_NATIVE = {"B02": 10.0, "B03": 10.0, "B04": 10.0, "B8A": 20.0, SCL: 20.0}


def native_resolution(item: S2Item, band: str) -> float:
    """Metres per pixel of ``band``'s asset: ``proj:shape``, ``gsd`` or the product's native."""
    asset = (item.raw.get("assets") or {}).get(get_provider(item.provider).asset_keys[band]) or {}
    shape = asset.get("proj:shape")
    if shape:
        return TILE_METRES / float(shape[0])
    for value in (asset.get("gsd"), *(b.get("spatial_resolution") for b in _bands(asset))):
        if value:
            return float(value)
    return _NATIVE.get(band, 20.0)


def _file_size(item: S2Item, band: str) -> float | None:
    """The asset's ``file:size`` in bytes, when the catalogue states it."""
    asset = (item.raw.get("assets") or {}).get(get_provider(item.provider).asset_keys[band]) or {}
    size = asset.get("file:size")
    return float(size) if size else None


def _bands(asset: dict[str, Any]) -> list[dict[str, Any]]:
    bands = asset.get("raster:bands") or []
    return [b for b in bands if isinstance(b, dict)]


def _block_side(index: int, block: int) -> int:
    """Pixels (30 m) of read block ``index`` along one axis (the last one is cut by the tile)."""
    return min(block, TILE_PIXELS - index * block)


def dry_run_entry(plan: TilePlan, block: int) -> dict[str, Any]:
    """The dry-run report of one tile: what the build would read (see the module docstring)."""
    tasks = plan_blocks(plan, block)
    starts = [0]
    for n in plan.item_chunks:
        starts.append(starts[-1] + n)
    raw = estimate = 0.0
    for task in tasks:
        area = _block_side(task.by, block) * _block_side(task.bx, block) * 900.0  # m2
        for item in plan.items[starts[task.t] : starts[task.t + 1]]:
            for band in (*BANDS, SCL):
                pixels = area / native_resolution(item, band) ** 2 * (1 if band == SCL else 2)
                raw += pixels
                size = _file_size(item, band)
                estimate += pixels if size is None else size * area / TILE_METRES**2
    providers = sorted({item.provider for item in plan.items})
    return {
        "status": "planned (dry run)",
        "providers": providers,
        "read_blocks": len(tasks),
        "expected_bytes": int(estimate),
        "expected_bytes_uncompressed": int(raw),
        "first_day": plan.days[0].isoformat(),
        "last_day": plan.days[-1].isoformat(),
    }
