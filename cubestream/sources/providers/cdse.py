"""Copernicus Data Space Ecosystem ``sentinel-2-l2a``: asset keys named by band and resolution.

Asset keys ``B02_10m`` ... ``B12_20m``, ``SCL_20m`` (the native-resolution asset of each band),
STAC 1.1 with raster v2 (``raster:scale``/``raster:offset`` on the asset), the baseline in
``processing:version``, the tile in ``grid:code``. The offset is the blue asset's, else the
processing baseline.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cubestream.sources.providers.base import Catalogue, ReplicaSchema, has_assets

__all__ = ["CDSE"]

_KEYS = {
    "B02": "B02_10m", "B03": "B03_10m", "B04": "B04_10m", "B05": "B05_20m", "B06": "B06_20m",
    "B07": "B07_20m", "B8A": "B8A_20m", "B11": "B11_20m", "B12": "B12_20m", "SCL": "SCL_20m",
}  # fmt: skip


def _recognise(item: Mapping[str, Any]) -> str | None:
    return "asset keys B02_10m and SCL_20m" if has_assets(item, "B02_10m", "SCL_20m") else None


CDSE = Catalogue(
    name="cdse",
    title="Copernicus Data Space",
    collection="sentinel-2-l2a",
    asset_keys=_KEYS,
    recognise=_recognise,
    replica=ReplicaSchema(writer="cubestream.replica._cdse_schema:cdse", s3_hrefs=True),
)
