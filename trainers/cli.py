"""``cubestream train``: LightningCLI over :class:`ForecastTask` and :class:`KndviSetting`.

``cubestream train fit --config trainers/configs/rnn.yaml`` (and ``validate``, ``test``,
``predict``) parse a YAML config with ``seed_everything``, ``trainer``, ``model`` (the task's
arguments, its ``model`` given by ``class_path`` and ``init_args``) and ``data`` (the
Setting's arguments); any key can be overridden on the command line
(``--data.store demo/l2.zarr``, ``--trainer.max_epochs 5``). The number of weather variables is
taken from the store and linked into the model (``model.model.init_args.weather_variables``),
so configs need not repeat it.

Every output of a run goes under ``trainer.default_root_dir`` (``D``), so that
``--trainer.default_root_dir D`` moves a whole run (:func:`place_outputs`):

- ``trainer.logger: true`` (Lightning's default) becomes a TensorBoard and a CSV logger writing
  to ``D/tensorboard/<subcommand>`` and ``D/csv/<subcommand>`` (a ``test`` run does not
  overwrite the logs of its ``fit``); a logger list given in the YAML is kept as it is;
- a ``ModelCheckpoint`` without ``dirpath`` writes to ``D/checkpoints``;
- the test scores go to ``D/scores.json`` (:class:`~trainers.task.ForecastTask`).
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from jsonargparse import Namespace
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from trainers.setting import KndviSetting
from trainers.task import ForecastTask

__all__ = ["CHECKPOINT_DIR", "CubestreamCLI", "main", "place_outputs"]

CHECKPOINT_DIR = "checkpoints"
"""Folder of ``default_root_dir`` that checkpoints without a ``dirpath`` are written to."""
_LOGGERS = {
    "tensorboard": "pytorch_lightning.loggers.TensorBoardLogger",
    "csv": "pytorch_lightning.loggers.CSVLogger",
}


def place_outputs(trainer: Namespace, subcommand: str) -> None:
    """Fill in the loggers and checkpoint folders of a parsed ``trainer`` config, in place.

    Parameters
    ----------
    trainer : Namespace
        The ``trainer`` section of a parsed config (its ``default_root_dir``, ``logger`` and
        ``callbacks``).
    subcommand : str
        ``fit``, ``validate``, ``test`` or ``predict``: the loggers' version folder.
    """
    root = str(Path(trainer.default_root_dir or "."))
    trainer.default_root_dir = root
    if trainer.logger is None or trainer.logger is True:
        trainer.logger = [
            Namespace(
                class_path=class_path,
                init_args=Namespace(save_dir=root, name=name, version=subcommand),
            )
            for name, class_path in _LOGGERS.items()
        ]
    for callback in trainer.callbacks or []:
        is_checkpoint = str(callback.get("class_path", "")).endswith(".ModelCheckpoint")
        init_args = callback.get("init_args")
        if is_checkpoint and init_args is not None and init_args.get("dirpath") is None:
            init_args.dirpath = str(Path(root) / CHECKPOINT_DIR)


class CubestreamCLI(LightningCLI):
    """LightningCLI with the store's weather size linked in and outputs under one folder."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Link the Setting's weather variable count to the model."""
        parser.link_arguments(
            "data",
            "model.model.init_args.weather_variables",
            compute_fn=lambda setting: len(setting.problem.weather_variables),
            apply_on="instantiate",
        )

    def before_instantiate_classes(self) -> None:
        """Put the loggers and checkpoints under ``trainer.default_root_dir``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        place_outputs(config.trainer, self.subcommand or "run")


def main(args: Sequence[str] | None = None) -> int:
    """Run the CLI on ``args`` (``fit --config FILE ...``); returns 0 (errors exit)."""
    # `cubestream train ...` hands its remaining arguments over; that is intended.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    CubestreamCLI(
        ForecastTask,
        KndviSetting,
        args=None if args is None else list(args),
        seed_everything_default=0,
        auto_configure_optimizers=False,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"prog": "cubestream train"},
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
