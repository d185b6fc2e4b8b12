"""Figures of the comparison and the saliency (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

__all__ = ["error_distributions", "forecast_maps", "gain_per_class", "saliency_figure"]

_STEPS = (0, 9, 18, 27, 35)


def forecast_maps(
    cube_id: str, values: dict[str, np.ndarray], names: tuple[str, str], path: Path
) -> Path:
    """Ground truth (gaps blank) and both forecasts of one cube at a few forecast steps."""
    rows = [("ground truth", np.where(values["mask"] == 0, values["target"], np.nan))]
    rows += [(name, values[name]) for name in names]
    fig, axes = plt.subplots(len(rows), len(_STEPS), figsize=(2.2 * len(_STEPS), 2.2 * len(rows)))
    image: Any = None
    for r, (label, data) in enumerate(rows):
        for c, step in enumerate(_STEPS):
            ax = axes[r, c]
            image = ax.imshow(data[step], vmin=0, vmax=1, cmap="YlGn")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"step +{step + 1} ({(step + 1) * 10} d)", fontsize=9)
            if c == 0:
                ax.set_ylabel(label, fontsize=9)
    fig.colorbar(image, ax=axes, shrink=0.8, label="kNDVI")
    fig.suptitle(f"cube {cube_id}: forecast kNDVI")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def error_distributions(a: np.ndarray, b: np.ndarray, names: tuple[str, str], path: Path) -> Path:
    """Histograms and empirical distribution functions of the per-pixel MAE of A and B."""
    fig, (hist, ecdf) = plt.subplots(1, 2, figsize=(10, 4))
    top = float(np.quantile(np.concatenate([a, b]), 0.995)) or 1.0
    bins = np.linspace(0, top, 60)
    for data, name in ((a, names[0]), (b, names[1])):
        hist.hist(
            data, bins=bins, alpha=0.5, density=True, label=f"{name} (median {np.median(data):.3f})"
        )
        ordered = np.sort(data)
        ecdf.plot(ordered, np.arange(1, ordered.size + 1) / ordered.size, label=name)
    hist.set_xlabel("per-pixel MAE")
    hist.set_ylabel("density")
    hist.legend()
    ecdf.set_xlabel("per-pixel MAE")
    ecdf.set_ylabel("share of pixels")
    ecdf.set_xlim(0, top)
    ecdf.legend()
    fig.suptitle("error distributions (vegetation pixels, valid observations)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def gain_per_class(result: dict[str, Any], path: Path) -> Path:
    """Performance Gain of A over B per land-cover and per geomorphon class."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key in zip(axes, ("landcover", "geomorphons"), strict=True):
        labels = list(result[key])
        gains = [result[key][label]["gain"] for label in labels]
        colours = ["tab:green" if g >= 0 else "tab:red" for g in gains]
        ax.barh(labels, gains, color=colours)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"PG of {result['a']} over {result['b']} (%)")
        ax.set_title(key)
    overall = result["overall"]["gain"]
    fig.suptitle(f"Performance Gain per class (overall {overall:.1f} %)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def saliency_figure(attribution: dict[str, Any], path: Path) -> Path:
    """Attribution to the context (step x channel, and map), the weather and the statics."""
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    context, weather = attribution["context"], attribution["weather"]
    image = axes[0].imshow(context.T, aspect="auto", cmap="magma")
    axes[0].set_yticks(range(len(attribution["context_channels"])))
    axes[0].set_yticklabels(attribution["context_channels"], fontsize=7)
    axes[0].set_xlabel("context step")
    axes[0].set_title("context (|gradient x input|)")
    fig.colorbar(image, ax=axes[0])
    image = axes[1].imshow(attribution["context_map"], cmap="magma")
    axes[1].set_title("context, per pixel")
    axes[1].set_xticks([])
    axes[1].set_yticks([])
    fig.colorbar(image, ax=axes[1])
    image = axes[2].imshow(weather.T, aspect="auto", cmap="magma")
    axes[2].set_yticks(range(len(attribution["weather_variables"])))
    axes[2].set_yticklabels(attribution["weather_variables"], fontsize=7)
    axes[2].set_xlabel("step (the forecast starts at step 9)")
    axes[2].set_title("weather")
    fig.colorbar(image, ax=axes[2])
    axes[3].barh(attribution["static_channels"], attribution["statics"])
    axes[3].set_title("statics")
    axes[3].tick_params(axis="y", labelsize=7)
    fig.suptitle(f"saliency of {attribution['target']} for cube {attribution['cube_id']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
