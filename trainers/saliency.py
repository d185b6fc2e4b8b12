r"""Saliency: gradient-based attribution of a forecast to the inputs of one cube.

The attributed quantity is the cube's mean forecast kNDVI over its vegetation pixels and all 36
forecast steps (or over one pixel). Its attribution to each model input is
``|d forecast / d input x input|`` (gradient x input) on the standardised inputs the model sees,
summed over what the figure does not show: per context step and channel (bands, kNDVI), per
pixel of the context, per step (the 9 context steps, then the 36 forecast steps) and weather
variable, and per static channel (DEM, land-cover classes)::

    python -m trainers.saliency --config trainers/configs/context_rnn.yaml \
        --ckpt demo/train/context_rnn/checkpoints/best.ckpt --store demo/l2.zarr \
        --out demo/train/saliency.png [--cube 37MBU0412]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import Tensor

from trainers.batch import WORLDCOVER_CLASSES, Batch, ModelInputs, ProblemSpec
from trainers.errors import TrainerConfigError
from trainers.metrics import vegetation_mask

if TYPE_CHECKING:
    from trainers.task import ForecastTask

__all__ = ["context_reach", "main", "one_cube", "saliency", "select_cube"]


def one_cube(batch: Batch, index: int) -> Batch:
    """Entry ``index`` of ``batch`` as a batch of one (tensors sliced, lists indexed)."""
    items: dict[str, Any] = dict(batch)
    out = {
        k: v[index : index + 1] if isinstance(v, Tensor) else [v[index]] for k, v in items.items()
    }
    return cast(Batch, out)


def context_reach(attribution: dict[str, Any]) -> float:
    """Share of a pixel's context attribution that falls on other pixels than itself.

    0 for a pixelwise model (its forecast sees only its own pixel); the larger, the more the
    forecast of that pixel draws on its spatial context. Needs the attribution of one pixel
    (``saliency(..., pixel=(row, col))``).
    """
    pixel = attribution.get("pixel")
    if pixel is None:
        raise TrainerConfigError("context_reach needs the saliency of one pixel (pixel=...)")
    context_map = attribution["context_map"]
    total = float(context_map.sum())
    if total <= 0.0:
        return 0.0
    return 1.0 - float(context_map[pixel[0], pixel[1]]) / total


def select_cube(batches: Any, cube_id: str | None) -> Batch:
    """The first batch entry of ``cube_id`` (or the first cube) as a batch of one."""
    for batch in batches:
        for i, cube in enumerate(batch["cube_id"]):
            if cube_id is None or cube == cube_id:
                return one_cube(batch, i)
    raise TrainerConfigError(f"cube {cube_id!r} is not in the split")


def saliency(
    task: ForecastTask,
    batch: Batch,
    *,
    pixel: tuple[int, int] | None = None,
    problem: ProblemSpec | None = None,
) -> dict[str, Any]:
    """Gradient x input attribution of the forecast of a batch of one cube.

    Parameters
    ----------
    task : ForecastTask
        Trained task (its normalisation and model).
    batch : Batch
        One cube (batch size 1).
    pixel : (row, col), optional
        Attribute this pixel's forecast instead of the vegetation mean.
    problem : ProblemSpec, optional
        Names of the bands and weather variables (numbered otherwise).

    Returns
    -------
    dict
        ``context`` (9, C + 1), ``context_map`` (H, W), ``weather`` (45, V), ``statics`` (12,)
        as numpy arrays, the channel names, ``target``, ``pixel`` (``None`` for the vegetation
        mean) and ``cube_id``.
    """
    task.eval()
    encoded = task.objective.encode(batch)
    leaves = {
        name: getattr(encoded, name).detach().clone().requires_grad_(True)
        for name in ("context", "weather", "statics")
    }
    forecast = task.model(ModelInputs(**leaves))[0]  # (36, H, W)
    if pixel is not None:
        target, label = forecast[:, pixel[0], pixel[1]].mean(), f"pixel {pixel}"
    else:
        vegetation = vegetation_mask(batch["landcover"], task.objective.vegetation_classes)[0]
        if not bool(vegetation.any()):
            raise TrainerConfigError(f"cube {batch['cube_id'][0]} has no vegetation pixel")
        target, label = forecast[:, vegetation].mean(), "mean forecast over vegetation"
    # gradients of the inputs only: no parameter gradient is accumulated, so no DDP or DeepSpeed
    # gradient hook fires and a trained model's .grad stays as it was
    grads = torch.autograd.grad(target, list(leaves.values()), allow_unused=True)
    attribution = {
        name: ((torch.zeros_like(leaf) if grad is None else grad) * leaf).abs()[0].detach()
        for (name, leaf), grad in zip(leaves.items(), grads, strict=True)
    }
    channels, variables = attribution["context"].shape[1], attribution["weather"].shape[1]
    bands = list(problem.bands) if problem else [f"band {i}" for i in range(channels - 1)]
    weather = (
        list(problem.weather_variables) if problem else [f"variable {i}" for i in range(variables)]
    )
    return {
        "cube_id": batch["cube_id"][0],
        "target": label,
        "pixel": pixel,
        "context": attribution["context"].sum((-2, -1)).float().cpu().numpy(),
        "context_map": attribution["context"].sum((0, 1)).float().cpu().numpy(),
        "weather": attribution["weather"].float().cpu().numpy(),
        "statics": attribution["statics"].sum((-2, -1)).float().cpu().numpy(),
        "context_channels": [*bands, "kNDVI"],
        "weather_variables": weather,
        "static_channels": ["DEM", *(f"LC {c}" for c in WORLDCOVER_CLASSES)],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m trainers.saliency --config C --ckpt K --store S --out FIG``."""
    parser = argparse.ArgumentParser(
        prog="python -m trainers.saliency",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="training YAML of the model")
    parser.add_argument("--ckpt", required=True, help="checkpoint of that model")
    parser.add_argument("--store", required=True, help="L2 store")
    parser.add_argument("--out", required=True, help="figure to write (.png)")
    parser.add_argument("--cube", default=None, help="cube id (default: the split's first)")
    parser.add_argument("--split", default="test", choices=["test", "val"])
    args = parser.parse_args(argv)
    from trainers import figures
    from trainers.config import load_trained

    loaded = load_trained(args.config, args.ckpt, ["--data.store", args.store])
    setting = loaded.setting
    setting.setup("test")
    loader = setting.test_dataloader() if args.split == "test" else setting.val_dataloader()
    batch = select_cube(loader, args.cube)
    setting.teardown("test")
    result = saliency(loaded.task, batch, problem=setting.problem)
    path = figures.saliency_figure(result, Path(args.out))
    print(json.dumps({"figure": str(path), "cube_id": result["cube_id"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
