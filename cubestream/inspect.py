"""``cubestream inspect``: a short summary of any store or table cubestream writes."""

from __future__ import annotations

from pathlib import Path

__all__ = ["describe"]


def _describe_table(path: str) -> str:
    import pandas as pd

    table = pd.read_parquet(path)
    lines = [f"locations table {path}: {len(table)} rows, {table['tile'].nunique()} tiles"]
    if "split" in table:
        lines.append(
            "splits: " + ", ".join(f"{k} {v}" for k, v in table["split"].value_counts().items())
        )
    lines.append("columns: " + ", ".join(table.columns))
    return "\n".join(lines)


def _describe_zarr(url: str) -> str:
    import xarray as xr
    import zarr

    root = zarr.open_group(url, mode="r")
    lines = [f"zarr store {url}"]
    groups = sorted(name for name, _ in root.groups())
    for name in groups:
        group = root[name]
        ds = xr.open_zarr(url, group=name, consolidated=False, mask_and_scale=False)
        sizes = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
        lines.append(f"  group {name}: complete={group.attrs.get('complete')} {sizes}")
        for var in ds.data_vars:
            if ds[var].ndim > 1:
                lines.append(
                    f"    {var}{tuple(ds[var].dims)} {ds[var].dtype} "
                    f"chunks={ds[var].encoding.get('chunks')}"
                )
    if not groups:
        ds = xr.open_zarr(url, consolidated=False)
        lines.append(str(ds))
    report = Path(url.rstrip("/") + ".report.json")
    if report.exists():
        lines.append(f"build report: {report}")
    return "\n".join(lines)


def describe(store: str) -> str:
    """Summarise a Zarr store (its groups, variables, chunks) or a Parquet locations table."""
    if store.endswith(".parquet"):
        return _describe_table(store)
    return _describe_zarr(store)
