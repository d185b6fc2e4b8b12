"""The training YAML outside LightningCLI: build the task and the Setting of a config.

The DeepSpeed CPU path, the comparison and the saliency read the same YAML files as
``cubestream train`` (``model`` and ``data`` sections; ``trainer`` is ignored), with the same
link of the store's weather size into the model, so that one config describes a model
everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jsonargparse import ActionConfigFile, ArgumentParser, Namespace

from trainers.errors import CheckpointError
from trainers.setting import KndviSetting
from trainers.task import ForecastTask

__all__ = ["Loaded", "build_parser", "load", "load_trained"]


def _weather_size(setting: KndviSetting) -> int:
    return len(setting.problem.weather_variables)


def build_parser(prog: str, description: str | None = None) -> ArgumentParser:
    """A parser of the training YAML: ``--config``, ``seed_everything``, ``model``, ``data``."""
    parser = ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_argument("--seed_everything", type=int, default=0)
    parser.add_argument("--trainer", type=dict[str, Any] | None, default=None, help="ignored")
    parser.add_argument("--ckpt_path", type=str | None, default=None, help="ignored")
    parser.add_class_arguments(ForecastTask, "model")
    parser.add_class_arguments(KndviSetting, "data")
    parser.link_arguments(
        "data",
        "model.model.init_args.weather_variables",
        compute_fn=_weather_size,
        apply_on="instantiate",
    )
    return parser


@dataclass(frozen=True)
class Loaded:
    """A task and its Setting built from a config, with the parsed config."""

    task: ForecastTask
    setting: KndviSetting
    config: Namespace


def load(parser: ArgumentParser, argv: Sequence[str]) -> Loaded:
    """Parse ``argv`` and build the task (seeded by ``seed_everything``) and the Setting."""
    cfg = parser.parse_args(list(argv))
    torch.manual_seed(cfg.seed_everything)
    init = parser.instantiate_classes(cfg)
    task: ForecastTask = init.model
    setting: KndviSetting = init.data
    task.set_problem(setting.problem)
    return Loaded(task=task, setting=setting, config=cfg)


def load_trained(
    config: str | Path, checkpoint: str | Path, overrides: Sequence[str] = ()
) -> Loaded:
    """The task of ``config`` with the weights (and normalisation) of a Lightning checkpoint.

    Parameters
    ----------
    config : str or Path
        Training YAML.
    checkpoint : str or Path
        Checkpoint of a run of that config (``best.ckpt``, ``last.ckpt``).
    overrides : sequence of str
        Further arguments, e.g. ``["--data.store", "other.zarr"]``.
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: train with `cubestream train fit` first")
    loaded = load(build_parser("trainers"), ["--config", str(config), *overrides])
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    try:
        loaded.task.load_state_dict(state)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit the model of {config}: {exc}") from None
    loaded.task.eval()
    return loaded
