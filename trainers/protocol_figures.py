"""Figures of a test run's protocol scores (matplotlib, Agg backend, PNG files).

- :func:`track_bars`: NSE, RMSE and R2 per test track, one bar per forecaster;
- :func:`forecast_series`: observed kNDVI (valid observations) and each forecast over the 45
  steps, averaged over the cube's scored pixels, for a few sample cubes;
- :func:`nse_map`: the model's per-pixel NSE of one cube, unscored pixels blank.

:class:`~trainers.task.ForecastTask` draws them at the end of a test into
``<default_root_dir>/figures/``; the saliency of the context encoder is
:mod:`trainers.saliency`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["forecast_series", "nse_map", "track_bars"]

_SCORES = (("nse", "NSE"), ("rmse", "RMSE"), ("r2", "R2"))


def track_bars(table: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Grouped bars: per score, one group per track, one bar per forecaster."""
    tracks = list(dict.fromkeys(str(e["track"]) for e in table))
    names = list(dict.fromkeys(str(e["forecaster"]) for e in table))
    value = {(e["track"], e["forecaster"]): e for e in table}
    fig, axes = plt.subplots(1, len(_SCORES), figsize=(4.5 * len(_SCORES), 3.6))
    width = 0.8 / max(len(names), 1)
    for ax, (key, label) in zip(axes, _SCORES, strict=True):
        for k, name in enumerate(names):
            heights = [
                float(value[(t, name)][key]) if (t, name) in value else math.nan for t in tracks
            ]
            x = np.arange(len(tracks)) + (k - (len(names) - 1) / 2) * width
            ax.bar(x, np.nan_to_num(heights), width, label=name)
        ax.set_xticks(np.arange(len(tracks)), tracks, rotation=20, fontsize=8)
        ax.set_title(label)
        ax.axhline(0, color="black", linewidth=0.6)
    axes[0].legend(fontsize=8)
    fig.suptitle("GreenEarthNet scores per test track")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def forecast_series(
    cube_id: str,
    kndvi: np.ndarray,
    mask: np.ndarray,
    forecasts: Mapping[str, np.ndarray],
    scored: np.ndarray,
    path: Path,
) -> Path:
    """Observed and forecast kNDVI of one cube, averaged over its scored pixels.

    Parameters
    ----------
    kndvi, mask : numpy.ndarray
        ``(45, H, W)`` target and gap mask of every step.
    forecasts : dict of str to numpy.ndarray
        ``(36, H, W)`` forecasts by name.
    scored : numpy.ndarray
        ``(H, W)`` bool: the pixels averaged (all pixels where none is scored).
    """
    pick = scored if scored.any() else np.ones_like(scored, dtype=bool)
    steps, forecast_steps = kndvi.shape[0], next(iter(forecasts.values())).shape[0]
    valid = (mask == 0) & pick[None]
    counts = valid.sum(axis=(1, 2))
    observed = np.where(
        counts > 0, (kndvi * valid).sum(axis=(1, 2)) / np.maximum(counts, 1), np.nan
    )
    fig, ax = plt.subplots(figsize=(7, 3.4))
    days = np.arange(steps) * 10
    ax.plot(days, observed, "o", color="black", markersize=3, label="observed (valid)")
    first = steps - forecast_steps
    for name, forecast in forecasts.items():
        ax.plot(days[first:], forecast[:, pick].mean(axis=1), label=name)
    ax.axvline(days[first] - 5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("days from the window start (context | forecast)")
    ax.set_ylabel("kNDVI")
    ax.set_title(f"cube {cube_id}: mean over {int(pick.sum())} pixels", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def nse_map(cube_id: str, nse: np.ndarray, scored: np.ndarray, path: Path) -> Path:
    """The per-pixel NSE of one cube (scored pixels; colours clipped to [-1, 1])."""
    fig, ax = plt.subplots(figsize=(4.6, 4))
    image = ax.imshow(np.where(scored, nse, np.nan), vmin=-1, vmax=1, cmap="RdBu")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(image, ax=ax, label="NSE")
    kept = nse[scored]
    median = f"{np.median(kept):.2f}" if kept.size else "—"
    ax.set_title(f"cube {cube_id}: per-pixel NSE (median {median})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
