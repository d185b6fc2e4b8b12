"""Where a pipeline's training run writes, checked against its trainer YAML.

``cubestream train`` puts every output of a run under ``trainer.default_root_dir`` (``D``):
loggers given as ``logger: true`` write to ``D/tensorboard`` and ``D/csv``, checkpoint callbacks
without a ``dirpath`` to ``D/checkpoints``, the test scores to ``D/scores.json``
(``trainers/cli.py``, ``place_outputs``). So the pipeline only passes
``--data.store <workdir>/l2.zarr --trainer.default_root_dir <workdir>/train/<name>``, and
checks here that the YAML leaves nothing outside ``D``: a logger or checkpoint directory written
into the YAML would not move with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cluster.errors import PipelineConfigError

__all__ = ["CHECKPOINT_DIR", "TrainLayout", "train_layout"]

CHECKPOINT_DIR = "checkpoints"
"""Folder of ``default_root_dir`` holding checkpoints (``trainers.cli.CHECKPOINT_DIR``)."""
_LOGGER_DIRS = ("save_dir", "root_dir", "log_dir")


@dataclass(frozen=True)
class TrainLayout:
    """Where a training run's outputs land.

    Attributes
    ----------
    root : Path
        ``trainer.default_root_dir``: ``<workdir>/train/<name>``.
    checkpoints : Path
        Directory of ``last.ckpt``.
    scores : Path
        The test scores file (``<root>/scores.json``).
    """

    root: Path
    checkpoints: Path
    scores: Path


def train_layout(config: Path, root: Path) -> TrainLayout:
    """Check the trainer YAML ``config`` and say where a run of it under ``root`` writes.

    Raises
    ------
    PipelineConfigError
        The YAML is not a mapping, writes logs or checkpoints to a fixed directory, or has no
        checkpoint callback that saves ``last.ckpt`` (needed to resume and to test).
    """
    try:
        loaded = yaml.safe_load(config.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineConfigError(f"trainer config {config} cannot be read: {exc}") from None
    if not isinstance(loaded, Mapping):
        raise PipelineConfigError(f"trainer config {config} is not a YAML mapping")
    trainer = loaded.get("trainer") or {}
    _check_loggers(config, trainer.get("logger"))
    _check_checkpoints(config, trainer.get("callbacks"))
    model = loaded.get("model") or {}
    scores = str(model.get("scores_file", "scores.json")) if isinstance(model, Mapping) else ""
    return TrainLayout(
        root=root, checkpoints=root / CHECKPOINT_DIR, scores=root / (scores or "scores.json")
    )


def _entries(value: Any) -> list[Mapping[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return [v for v in items if isinstance(v, Mapping)]


def _check_loggers(config: Path, logger: Any) -> None:
    for i, entry in enumerate(_entries(logger)):
        init = entry.get("init_args") or {}
        for key in _LOGGER_DIRS:
            if init.get(key) is not None:
                raise PipelineConfigError(
                    f"trainer config {config}: trainer.logger[{i}].init_args.{key} is "
                    f"{init[key]!r}, which --trainer.default_root_dir does not move; write "
                    "`logger: true` (TensorBoard and CSV under default_root_dir) or leave "
                    f"{key} out"
                )


def _check_checkpoints(config: Path, callbacks: Any) -> None:
    last = False
    for i, entry in enumerate(_entries(callbacks)):
        if not str(entry.get("class_path", "")).endswith("ModelCheckpoint"):
            continue
        init = entry.get("init_args") or {}
        if init.get("dirpath") is not None:
            raise PipelineConfigError(
                f"trainer config {config}: trainer.callbacks[{i}].init_args.dirpath is "
                f"{init['dirpath']!r}, which --trainer.default_root_dir does not move; leave it "
                f"out (checkpoints then go to default_root_dir/{CHECKPOINT_DIR})"
            )
        last = last or bool(init.get("save_last"))
    if not last:
        raise PipelineConfigError(
            f"trainer config {config} has no ModelCheckpoint callback with save_last: true: the "
            "pipeline needs last.ckpt to resume training and to test (see "
            "trainers/configs/rnn.yaml)"
        )
