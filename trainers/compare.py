r"""Model comparison as in the original study: per-pixel errors, Performance Gain, KS test.

Two forecasters, A and B (trained models from a config and a checkpoint, or the persistence or
climatology baseline), forecast every cube of a split. For every (cube, pixel) with at least one
scored value (vegetation, valid observation: :mod:`trainers.metrics`) the pixel's MAE over its
scored forecast steps is kept, with its land cover and geomorphon. Then

- **Performance Gain** ``PG = (1 - MAE_A / MAE_B) x 100``, with MAE the masked MAE over all
  scored values, overall and per land-cover and per geomorphon class (positive: A is better);
- a **one-sided two-sample Kolmogorov-Smirnov test** on the per-pixel MAEs (scipy's
  ``ks_2samp(A, B, alternative="greater")``): the alternative is that A's error distribution
  function lies above B's somewhere, i.e. A's pixel errors tend to be smaller;

and the same per test track (``tracks``: :mod:`trainers.score_table`), written to
``<out>/comparison.json`` with three figures: ground truth vs both forecasts for one
cube (``maps.png``), the per-pixel error distributions (``errors.png``) and the gain per class
(``gain.png``)::

    python -m trainers.compare --store demo/l2.zarr --out demo/train/compare \
        --a context_rnn trainers/configs/context_rnn.yaml \
            demo/train/context_rnn/checkpoints/best.ckpt \
        --b persistence
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from trainers.batch import CONTEXT_STEPS, FORECAST_STEPS, Batch
from trainers.errors import TrainerConfigError
from trainers.metrics import climatology_forecast, persistence_forecast, score_weight
from trainers.setting import KndviSetting
from trainers.task import ForecastTask

__all__ = [
    "Forecaster",
    "PixelErrors",
    "baseline",
    "compare",
    "main",
    "model_forecaster",
    "performance_gain",
    "pixel_errors",
]

WORLDCOVER_NAMES = {
    10: "tree",
    20: "shrub",
    30: "grass",
    40: "crop",
    50: "built-up",
    60: "bare",
    70: "snow",
    80: "water",
    90: "wetland",
    95: "mangroves",
    100: "moss",
}
GEOMORPHON_NAMES = {
    1: "flat",
    2: "peak",
    3: "ridge",
    4: "shoulder",
    5: "spur",
    6: "slope",
    7: "hollow",
    8: "footslope",
    9: "valley",
    10: "pit",
}

Forecaster = Callable[[Batch], Tensor]
"""Batch -> forecast kNDVI ``(B, 36, H, W)``."""


@dataclass(frozen=True)
class Forecast:
    """A named forecaster."""

    name: str
    forecast: Forecaster


def baseline(name: str) -> Forecast:
    """The ``persistence`` or ``climatology`` baseline as a forecaster."""
    functions = {"persistence": persistence_forecast, "climatology": climatology_forecast}
    if name not in functions:
        raise TrainerConfigError(f"unknown baseline {name!r}: use {sorted(functions)}")
    function = functions[name]
    return Forecast(name, lambda batch: function(batch["kndvi"], batch["mask"], FORECAST_STEPS))


def model_forecaster(name: str, task: ForecastTask) -> Forecast:
    """A trained task as a forecaster (whole cubes, no gradients)."""

    def forecast(batch: Batch) -> Tensor:
        with torch.no_grad():
            out: Tensor = task(batch)
            return out.float()

    return Forecast(name, forecast)


@dataclass
class PixelErrors:
    """Per-pixel errors of one forecaster over a split (pixels with a scored value)."""

    abs_sum: list[np.ndarray] = field(default_factory=list)
    count: list[np.ndarray] = field(default_factory=list)
    landcover: list[np.ndarray] = field(default_factory=list)
    geomorphon: list[np.ndarray] = field(default_factory=list)
    sample: list[np.ndarray] = field(default_factory=list)

    def add(
        self,
        error: Tensor,
        weight: Tensor,
        landcover: Tensor,
        geomorphon: Tensor,
        sample: int = -1,
    ) -> None:
        """Add one sample: ``error`` and ``weight`` (36, H, W), classes (H, W), its index."""
        abs_sum = (error.abs() * weight).sum(0).flatten()
        count = weight.sum(0).flatten()
        keep = count > 0
        self.abs_sum.append(abs_sum[keep].double().numpy())
        self.count.append(count[keep].double().numpy())
        self.landcover.append(landcover.flatten()[keep].numpy())
        self.geomorphon.append(geomorphon.flatten()[keep].numpy())
        self.sample.append(np.full(int(keep.sum()), sample, dtype=np.int64))

    def arrays(self) -> dict[str, np.ndarray]:
        """Per-pixel ``abs_sum``, ``count``, ``mae``, classes and ``sample`` index, concatenated."""
        out = {
            name: np.concatenate(getattr(self, name)) if getattr(self, name) else np.zeros(0)
            for name in ("abs_sum", "count", "landcover", "geomorphon", "sample")
        }
        out["mae"] = out["abs_sum"] / np.maximum(out["count"], 1)
        return out


def performance_gain(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], select: Any = None
) -> dict[str, float]:
    """MAE of A and B over the selected pixels and ``PG = (1 - MAE_A / MAE_B) x 100``."""
    pick = slice(None) if select is None else select
    count = float(a["count"][pick].sum())
    mae_a = float(a["abs_sum"][pick].sum()) / count if count else float("nan")
    mae_b = float(b["abs_sum"][pick].sum()) / count if count else float("nan")
    gain = (1.0 - mae_a / mae_b) * 100.0 if count and mae_b > 0 else float("nan")
    return {"mae_a": mae_a, "mae_b": mae_b, "gain": gain, "pixels": int(np.size(a["count"][pick]))}


@dataclass
class _Example:
    cube_id: str = ""
    values: dict[str, np.ndarray] = field(default_factory=dict)


def pixel_errors(
    forecasters: Sequence[Forecast],
    setting: KndviSetting,
    *,
    split: str = "test",
    example_cube: str | None = None,
) -> tuple[dict[str, PixelErrors], _Example]:
    """Per-pixel errors of each forecaster over ``split``; padded repeats are counted once.

    Also keeps, for ``example_cube`` (default: the first cube), the target, the gap mask and each
    forecast, for the maps.
    """
    setting.setup("test" if split == "test" else "validate")
    loader = setting.test_dataloader() if split == "test" else setting.val_dataloader()
    errors = {f.name: PixelErrors() for f in forecasters}
    example, seen = _Example(), set()
    classes = setting.problem.vegetation_classes
    for batch in loader:
        target = batch["kndvi"][:, CONTEXT_STEPS:]
        mask = batch["mask"][:, CONTEXT_STEPS:]
        weight = score_weight(mask, batch["landcover"], classes)
        forecasts = {f.name: f.forecast(batch) for f in forecasters}
        for i, cube in enumerate(batch["cube_id"]):
            sample = int(batch["sample"][i])
            if sample in seen:
                continue
            seen.add(sample)
            for name, forecast in forecasts.items():
                errors[name].add(
                    forecast[i] - target[i],
                    weight[i],
                    batch["landcover"][i],
                    batch["geomorphons"][i],
                    sample,
                )
            if not example.cube_id and (example_cube is None or cube == example_cube):
                example.cube_id = cube
                example.values = {"target": target[i].numpy(), "mask": mask[i].numpy()}
                example.values.update({n: f[i].numpy() for n, f in forecasts.items()})
    setting.teardown("test")
    return errors, example


def _per_class(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], key: str, names: dict[int, str]
) -> dict[str, dict[str, float]]:
    return {
        f"{c} {names.get(int(c), '')}".strip(): performance_gain(a, b, a[key] == c)
        for c in np.unique(a[key])
    }


def _per_track(
    a: dict[str, np.ndarray], b: dict[str, np.ndarray], tracks: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Performance Gain and the one-sided KS test per test track (``iid`` without tracks)."""
    names = np.array(
        [tracks[s] if 0 <= s < len(tracks) and tracks[s] else "iid" for s in a["sample"]]
    )
    out: dict[str, dict[str, Any]] = {}
    for track in sorted(set(names.tolist())):
        pick = names == track
        ks = stats.ks_2samp(a["mae"][pick], b["mae"][pick], alternative="greater")
        out[track] = {
            **performance_gain(a, b, pick),
            "ks": {"statistic": float(ks.statistic), "pvalue": float(ks.pvalue)},
        }
    return out


def compare(
    a: Forecast, b: Forecast, setting: KndviSetting, out: Path, **kwargs: Any
) -> dict[str, Any]:
    """Compare A with B on a split; write ``comparison.json`` and the figures into ``out``."""
    errors, example = pixel_errors([a, b], setting, **kwargs)
    ea, eb = errors[a.name].arrays(), errors[b.name].arrays()
    if not ea["count"].size:
        raise TrainerConfigError("no scored pixel in the split: nothing to compare")
    ks = stats.ks_2samp(ea["mae"], eb["mae"], alternative="greater")
    result: dict[str, Any] = {
        "a": a.name,
        "b": b.name,
        "definition": "PG = (1 - MAE_A / MAE_B) x 100 over vegetation pixels with valid "
        "observations; KS: ks_2samp(per-pixel MAE of A, of B, alternative='greater')",
        "overall": performance_gain(ea, eb),
        "ks": {"statistic": float(ks.statistic), "pvalue": float(ks.pvalue)},
        "landcover": {
            f"{c} {WORLDCOVER_NAMES.get(int(c), '')}".strip(): performance_gain(
                ea, eb, ea["landcover"] == c
            )
            for c in np.unique(ea["landcover"])
        },
        "geomorphons": {
            f"{g} {GEOMORPHON_NAMES.get(int(g), '')}".strip(): performance_gain(
                ea, eb, ea["geomorphon"] == g
            )
            for g in np.unique(ea["geomorphon"])
        },
        "example_cube": example.cube_id,
        "tracks": _per_track(ea, eb, getattr(setting, "tracks", ())),
    }
    out.mkdir(parents=True, exist_ok=True)
    from trainers import figures

    result["figures"] = [
        str(
            figures.forecast_maps(
                example.cube_id, example.values, (a.name, b.name), out / "maps.png"
            )
        ),
        str(
            figures.error_distributions(ea["mae"], eb["mae"], (a.name, b.name), out / "errors.png")
        ),
        str(figures.gain_per_class(result, out / "gain.png")),
    ]
    (out / "comparison.json").write_text(json.dumps(result, indent=1))
    return result


def _forecast(
    spec: Sequence[str], overrides: Sequence[str]
) -> tuple[Forecast, KndviSetting | None]:
    if len(spec) == 1:
        return baseline(spec[0]), None
    if len(spec) != 3:
        raise TrainerConfigError(
            f"give NAME CONFIG CHECKPOINT or a baseline name, got {list(spec)}"
        )
    from trainers.config import load_trained

    name, config, checkpoint = spec
    loaded = load_trained(config, checkpoint, overrides)
    return model_forecaster(name, loaded.task), loaded.setting


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m trainers.compare --store S --out DIR --a ... --b ...``."""
    parser = argparse.ArgumentParser(
        prog="python -m trainers.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", required=True, help="L2 store")
    parser.add_argument("--out", required=True, help="directory for comparison.json and figures")
    parser.add_argument("--a", nargs="+", required=True, help="NAME CONFIG CKPT, or a baseline")
    parser.add_argument("--b", nargs="+", required=True, help="NAME CONFIG CKPT, or a baseline")
    parser.add_argument("--split", default="test", choices=["test", "val"])
    parser.add_argument("--cube", default=None, help="cube of the maps (default: the first)")
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args(argv)
    overrides = ["--data.store", args.store, "--data.batch_size", str(args.batch_size)]
    (a, setting_a), (b, setting_b) = _forecast(args.a, overrides), _forecast(args.b, overrides)
    setting = setting_a or setting_b or KndviSetting(args.store, batch_size=args.batch_size)
    result = compare(a, b, setting, Path(args.out), split=args.split, example_cube=args.cube)
    print(json.dumps({"overall": result["overall"], "ks": result["ks"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
