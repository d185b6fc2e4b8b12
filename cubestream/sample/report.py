"""The bias report: strata shares of the sample against the eligible population.

For every stratum column the report lists the population share ``p``, the share the allocation
rule intended ``r`` and the sample share ``q`` of each class, and two divergences per column: the
Jensen-Shannon divergence (base 2, 0 = identical, 1 = disjoint) of ``q`` against ``p`` (how far the
sample departs from the landscape, by design under an equalised rule) and of ``q`` against ``r``
(how well the draw met the rule). It is written as JSON and as a PNG with the locations on a map
of the area and the shares as bars.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cubestream.sample.allocate import STRATUM_COLUMNS

__all__ = ["bias_report", "jensen_shannon", "write_report"]


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence (base 2) of two distributions over the same classes."""
    p = np.asarray(p, dtype=float) / max(float(np.sum(p)), 1e-300)
    q = np.asarray(q, dtype=float) / max(float(np.sum(q)), 1e-300)
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        mask = a > 0
        return float(np.sum(a[mask] * np.log2(a[mask] / m[mask])))

    return round(max(0.5 * kl(p) + 0.5 * kl(q), 0.0), 6)


def _intended(eligible: pd.DataFrame, quotas: pd.Series, column: str) -> pd.Series:
    """Shares of one column implied by the per-stratum quotas."""
    first = eligible.groupby("stratum")[column].first()
    return quotas.groupby(first.reindex(quotas.index)).sum()


def bias_report(
    eligible: pd.DataFrame,
    sample: pd.DataFrame,
    quotas: pd.Series,
    *,
    columns: tuple[str, ...] = STRATUM_COLUMNS,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Compare the strata of ``sample`` with those of the ``eligible`` population.

    ``eligible`` carries a ``stratum`` column (see :func:`allocate.stratum_keys`); ``quotas`` are
    the per-stratum counts the rule asked for.
    """
    out: dict[str, Any] = {"context": context or {}, "strata": {}}
    for column in columns:
        pop = eligible[column].value_counts()
        got = sample[column].value_counts().reindex(pop.index, fill_value=0)
        want = _intended(eligible, quotas, column).reindex(pop.index, fill_value=0)
        out["strata"][column] = {
            "classes": {
                str(k): {
                    "population_share": round(float(pop[k] / pop.sum()), 6),
                    "intended_share": round(float(want[k] / max(want.sum(), 1)), 6),
                    "sample_share": round(float(got[k] / max(got.sum(), 1)), 6),
                    "sample_count": int(got[k]),
                }
                for k in pop.index
            },
            "js_divergence_vs_population": jensen_shannon(pop.to_numpy(), got.to_numpy()),
            "js_divergence_vs_intended": jensen_shannon(want.to_numpy(), got.to_numpy()),
        }
    splits = sample["split"].value_counts() if "split" in sample else pd.Series(dtype=int)
    out["splits"] = {str(k): round(float(v / len(sample)), 6) for k, v in splits.items()}
    if "track" in sample:
        tracks = sample.loc[sample["track"] != "", "track"].value_counts()
        out["tracks"] = {str(k): int(v) for k, v in tracks.items()}
    out["counts"] = {
        "eligible_boxes": len(eligible),
        "sampled_boxes": len(sample),
        "tiles": int(sample["tile"].nunique()),
        "strata_populated": int(eligible["stratum"].nunique()),
        "strata_sampled": int(sample["stratum"].nunique()) if "stratum" in sample else None,
    }
    return out


def _plot(
    report: dict[str, Any], eligible: pd.DataFrame, sample: pd.DataFrame, area: Any, path: Path
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = list(report["strata"])
    fig = plt.figure(figsize=(15, 8), constrained_layout=True)
    grid = fig.add_gridspec(len(columns), 2, width_ratios=[1.2, 1])
    ax = fig.add_subplot(grid[:, 0])
    if area is not None:
        for poly in getattr(area, "geoms", [area]):
            ax.plot(*poly.exterior.xy, color="0.3", lw=0.8)
    ax.scatter(eligible["lon"], eligible["lat"], s=1, color="0.85", label="eligible boxes")
    for split, colour in (("train", "tab:blue"), ("val", "tab:orange"), ("test", "tab:red")):
        part = sample[sample.get("split", pd.Series(index=sample.index)) == split]
        if len(part):
            ax.scatter(part["lon"], part["lat"], s=6, color=colour, label=f"{split} ({len(part)})")
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title("sampled minicube locations")
    for row, column in enumerate(columns):
        bar = fig.add_subplot(grid[row, 1])
        classes = report["strata"][column]["classes"]
        names = list(classes)
        x = np.arange(len(names))
        bar.bar(x - 0.2, [classes[n]["population_share"] for n in names], 0.4, label="population")
        bar.bar(x + 0.2, [classes[n]["sample_share"] for n in names], 0.4, label="sample")
        bar.set_xticks(x, names, rotation=30, ha="right", fontsize=7)
        js = report["strata"][column]["js_divergence_vs_population"]
        bar.set_title(f"{column} (JS divergence vs population {js:.3f})", fontsize=9)
        if row == 0:
            bar.legend(fontsize=7)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_report(
    report: dict[str, Any],
    eligible: pd.DataFrame,
    sample: pd.DataFrame,
    out: Path,
    area: Any = None,
) -> tuple[Path, Path]:
    """Write the report as ``<out>.report.json`` and ``<out>.report.png``; return both paths."""
    json_path = out.with_name(out.stem + ".report.json")
    png_path = out.with_name(out.stem + ".report.png")
    json_path.write_text(json.dumps(report, indent=1) + "\n")
    _plot(report, eligible, sample, area, png_path)
    return json_path, png_path
