"""``cubestream inspect``: a short summary of any store or table cubestream writes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from cubestream.errors import InputError

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


def _describe_l2(url: str, root: Any) -> str:
    import numpy as np

    from cubestream.l2.plan import strings
    from cubestream.l2.schema import VARIABLES
    from cubestream.l2.windows import from_days, season_of

    ids, splits = strings(root["cube_id"][...]), strings(root["split"][...])
    starts = [from_days(int(d)) for d in np.asarray(root["start_time"][...])]
    tiles = strings(root["tile"][...]) if "tile" in root else np.array([c[:5] for c in ids])
    counts = Counter(str(s) for s in splits)
    seasons = Counter(season_of(d) for d in starts)
    weather = [str(w) for w in strings(root["weather_variable"][...])]
    how = root.attrs.get("weather_statistics", {})
    fraction = np.asarray(root["valid_fraction"][...])
    lines = [
        f"L2 store {url}: complete={root.attrs.get('complete')}, {len(ids)} samples "
        f"({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}) from "
        f"{len(set(ids))} cubes in {len(set(tiles))} tiles",
        f"  time: {root['time'].shape[0]} steps of 10 days; start_time "
        + (f"{min(starts)}..{max(starts)}" if starts else "-")
        + f" (starts by season: {', '.join(f'{k} {v}' for k, v in sorted(seasons.items()))})",
        f"  sample: {root['s2'].shape[-2]} x {root['s2'].shape[-1]} px, bands "
        f"{' '.join(strings(root['band'][...]))}",
        f"  weather ({len(weather)}): "
        + ", ".join(f"{w} ({how[w]})" if w in how else w for w in weather),
    ]
    if fraction.size:
        lines.append(
            f"  valid_fraction: min {fraction.min():.3f}, mean {fraction.mean():.3f}, "
            f"max {fraction.max():.3f}"
        )
    lines.append("  variables:")
    for name in VARIABLES:
        if name in root:
            array = root[name]
            dims = tuple(array.metadata.dimension_names or ())
            lines.append(f"    {name}{dims} {array.dtype} chunks={array.chunks}")
    skipped = root.attrs.get("skipped", [])
    reasons = Counter(str(s.get("reason", "")).split(":")[0] for s in skipped)
    lines.append(f"  skipped: {len(skipped)}" + (f" ({dict(reasons)})" if skipped else ""))
    return "\n".join(lines)


def _open(url: str, group: str | None) -> Any:
    """A group as a Dataset; a store that xarray cannot read is an input error."""
    import xarray as xr

    try:
        return xr.open_zarr(url, group=group, consolidated=False, mask_and_scale=group is None)
    except (KeyError, ValueError) as exc:
        where = f"group {group} of {url}" if group else url
        raise InputError(
            f"cannot read {where} as a dataset ({exc}); is it a store cubestream wrote?"
        ) from exc


def _describe_zarr(url: str) -> str:
    import zarr

    root = zarr.open_group(url, mode="r")
    if "kndvi" in root and "cube_id" in root:
        text = _describe_l2(url, root)
        report = Path(url.rstrip("/") + ".report.json")
        return text + (f"\nbuild report: {report}" if report.exists() else "")
    lines = [f"zarr store {url}"]
    groups = sorted(name for name, _ in root.groups())
    for name in groups:
        group = root[name]
        ds = _open(url, name)
        sizes = ", ".join(f"{k}={v}" for k, v in ds.sizes.items())
        lines.append(f"  group {name}: complete={group.attrs.get('complete')} {sizes}")
        for var in ds.data_vars:
            if ds[var].ndim > 1:
                lines.append(
                    f"    {var}{tuple(ds[var].dims)} {ds[var].dtype} "
                    f"chunks={ds[var].encoding.get('chunks')}"
                )
    if not groups:
        ds = _open(url, None)
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
