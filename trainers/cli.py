"""``cubestream train``: LightningCLI over :class:`ForecastTask` and :class:`KndviSetting`.

``cubestream train fit --config trainers/configs/rnn.yaml`` (and ``validate``, ``test``,
``predict``) parse a YAML config with ``seed_everything``, ``trainer``, ``model`` (the task's
arguments, its ``model`` given by ``class_path`` and ``init_args``) and ``data`` (the
Setting's arguments); any key can be overridden on the command line
(``--data.store demo/l2.zarr``, ``--trainer.max_epochs 5``). The number of weather variables is
taken from the store and linked into the model (``model.model.init_args.weather_variables``),
so configs need not repeat it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence

from pytorch_lightning.cli import LightningArgumentParser, LightningCLI

from trainers.setting import KndviSetting
from trainers.task import ForecastTask

__all__ = ["CubestreamCLI", "main"]


class CubestreamCLI(LightningCLI):
    """LightningCLI with the store's weather size linked into the model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        """Link the Setting's weather variable count to the model."""
        parser.link_arguments(
            "data",
            "model.model.init_args.weather_variables",
            compute_fn=lambda setting: len(setting.problem.weather_variables),
            apply_on="instantiate",
        )


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
