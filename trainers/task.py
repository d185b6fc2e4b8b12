"""The Task: a LightningModule with the loops, the masked loss, optimiser, schedule and logging.

:class:`ForecastTask` works with any :class:`~trainers.models.PixelForecaster`. Training
samples ``train_pixels`` pixels per cube (scored vegetation pixels first) from a generator seeded
by ``(seed, global step, rank)``, so a resumed run draws the same pixels as an uninterrupted one;
validation, test and prediction run on whole cubes, decoded in chunks. Validation and test log
the overall masked MAE (the headline) and RMSE of the model and of the persistence and
climatology baselines (:mod:`trainers.metrics`); the test also writes them with per-sample
scores to ``<default_root_dir>/<scores_file>``, and the GreenEarthNet scores of the model and
both baselines per test track and land cover (:mod:`trainers.scores`,
:mod:`trainers.score_table`) to ``protocol_scores.json`` and ``protocol_scores.md`` beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.distributed as dist
from pytorch_lightning.utilities import rank_zero_info
from torch import Tensor, nn

from trainers import figures as comparison_figures
from trainers import protocol_figures
from trainers.batch import CONTEXT_STEPS, FORECAST_STEPS, Batch, ProblemSpec
from trainers.errors import TrainerConfigError
from trainers.metrics import (
    MaskedErrors,
    climatology_forecast,
    per_sample_errors,
    persistence_forecast,
    vegetation_mask,
)
from trainers.models.base import PixelForecaster
from trainers.objective import ForecastObjective, ForecastOutput, LossName
from trainers.optim import SchedulerName, build_optimizer, build_scheduler
from trainers.saliency import context_reach, one_cube, saliency
from trainers.score_table import score_table, table_markdown
from trainers.scores import PixelRule, cube_class_rows, pixel_scores

__all__ = ["BASELINES", "ForecastTask"]

BASELINES = ("persistence", "climatology")
"""Reference forecasts scored beside the model."""
_FORECASTERS = ("model", *BASELINES)


class ForecastTask(pl.LightningModule):
    """Train, evaluate and apply a kNDVI forecaster.

    Parameters
    ----------
    model : PixelForecaster
        The model (e.g. :class:`~trainers.models.RNN`, :class:`~trainers.models.ContextRNN`).
    loss : {"mae", "mse"}
        Masked loss minimised.
    lr, weight_decay : float
        AdamW settings.
    scheduler : {"cosine", "constant"}
        Learning-rate schedule after a linear warm-up of ``warmup_steps`` optimiser steps.
    warmup_steps : int
        Warm-up length.
    train_pixels : int, optional
        Pixels sampled per cube in training (the original used 512); ``None`` trains on all.
    seed : int
        Seed of the pixel sampling.
    scores_file : str
        File name (in the trainer's ``default_root_dir``) of the test scores.
    protocol : dict, optional
        Fields of the :class:`~trainers.scores.PixelRule` of the protocol scores (default:
        GreenEarthNet's rule).
    figure_cubes : int
        Test samples drawn as forecast series and NSE maps (:mod:`trainers.protocol_figures`).
    saliency : bool
        Whether the test also draws the saliency (:mod:`trainers.saliency`) of the first test
        cube with vegetation: of its vegetation mean and of its central vegetation pixel, whose
        ``context_reach`` (the share of its context attribution on other pixels) goes into
        ``protocol_scores.json``. Skipped under DeepSpeed (ZeRO-3 gathers parameters on every
        rank, the saliency runs on one).
    """

    def __init__(
        self,
        model: PixelForecaster,
        *,
        loss: LossName = "mae",
        lr: float = 1e-3,
        weight_decay: float = 1e-2,
        scheduler: SchedulerName = "cosine",
        warmup_steps: int = 0,
        train_pixels: int | None = 512,
        seed: int = 0,
        scores_file: str = "scores.json",
        protocol: dict[str, Any] | None = None,
        figure_cubes: int = 2,
        saliency: bool = True,
    ) -> None:
        super().__init__()
        if train_pixels is not None and train_pixels < 1:
            raise TrainerConfigError(f"train_pixels must be positive or null, got {train_pixels}")
        self.save_hyperparameters(ignore=["model"])
        self.objective = ForecastObjective(model, loss=loss)
        self.scores = nn.ModuleDict(
            {
                f"{stage}_{name}": MaskedErrors()
                for stage in ("val", "test")
                for name in _FORECASTERS
            }
        )
        self._sample_rows: list[dict[str, Any]] = []
        self._protocol_rows: list[dict[str, Any]] = []
        self._examples: list[dict[str, Any]] = []
        self._saliency_cube: Batch | None = None
        self.problem: ProblemSpec | None = None
        rule = dict(protocol or {})
        if "classes" in rule:
            rule["classes"] = tuple(rule["classes"])
        self.rule = PixelRule(**rule)
        self.tracks: tuple[str, ...] = ()

    @property
    def model(self) -> PixelForecaster:
        """The forecaster."""
        return self.objective.model

    def set_problem(self, problem: ProblemSpec) -> None:
        """Take the store's normalisation and scored classes (done in ``setup`` from the data)."""
        self.objective.set_problem(problem)
        self.problem = problem

    def setup(self, stage: str) -> None:
        """Take the problem of the Setting, when the data module has one."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer else None
        problem = getattr(datamodule, "problem", None)
        if isinstance(problem, ProblemSpec):
            self.set_problem(problem)
        self.tracks = tuple(getattr(datamodule, "tracks", ()) or ())

    def _track(self, sample: int) -> str:
        return self.tracks[sample] if sample < len(self.tracks) and self.tracks[sample] else "iid"

    def forward(self, batch: Batch, pixels: Tensor | None = None) -> Tensor:
        """Forecast kNDVI of a batch: ``(B, 36, H, W)``, or ``(B, 36, P)`` at ``pixels``."""
        forecast: Tensor = self.objective.model(self.objective.encode(batch), pixels)
        return forecast

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        """Masked loss on the sampled pixels."""
        pixels = self.objective.training_pixels(
            batch,
            self.hparams["train_pixels"],
            seed=self.hparams["seed"],
            step=self.global_step,
            rank=self.global_rank,
        )
        out: ForecastOutput = self.objective(batch, pixels)
        size = len(batch["cube_id"])
        self.log("train/loss", out.loss, prog_bar=True, batch_size=size)
        self.log("train/scored_fraction", out.weight.mean(), batch_size=size)
        return out.loss

    def _metric(self, stage: str, name: str) -> MaskedErrors:
        metric = self.scores[f"{stage}_{name}"]
        assert isinstance(metric, MaskedErrors)
        return metric

    def _evaluate(self, stage: str, batch: Batch) -> dict[str, Tensor]:
        out = self.objective(batch)
        kndvi, mask = batch["kndvi"], batch["mask"]
        forecasts = {
            "model": out.prediction,
            "persistence": persistence_forecast(kndvi, mask, FORECAST_STEPS),
            "climatology": climatology_forecast(kndvi, mask, FORECAST_STEPS),
        }
        for name, forecast in forecasts.items():
            self._metric(stage, name).update(forecast, out.target, out.weight)
        self.log(f"{stage}/loss", out.loss, batch_size=len(batch["cube_id"]), sync_dist=True)
        return {**forecasts, "target": out.target, "weight": out.weight}

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Score whole cubes."""
        self._evaluate("val", batch)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        """Score whole cubes, keeping per-sample scores."""
        values = self._evaluate("test", batch)
        target, weight = values["target"], values["weight"]
        per_sample = {n: per_sample_errors(values[n], target, weight) for n in _FORECASTERS}
        for i, cube in enumerate(batch["cube_id"]):
            row: dict[str, Any] = {
                "cube_id": cube,
                "sample": int(batch["sample"][i]),
                "scored": int(per_sample["model"][2][i]),
            }
            for name, (mae, rmse, _) in per_sample.items():
                row[f"{name}_mae"] = float(mae[i])
                row[f"{name}_rmse"] = float(rmse[i])
            self._sample_rows.append(row)
        self._protocol_rows += self._protocol(batch, values)
        if self.hparams["saliency"] and self._saliency_cube is None:
            self._keep_saliency_cube(batch)

    def _keep_saliency_cube(self, batch: Batch) -> None:
        """Keep the batch's first cube with a vegetation pixel, for the saliency at the end."""
        vegetation = vegetation_mask(batch["landcover"], self.objective.vegetation_classes)
        for i in range(len(batch["cube_id"])):
            if bool(vegetation[i].any()):
                self._saliency_cube = one_cube(batch, i)
                return

    def _protocol(self, batch: Batch, values: dict[str, Tensor]) -> list[dict[str, Any]]:
        """Per (sample, land cover) GreenEarthNet rows of every forecaster."""
        kndvi, mask = batch["kndvi"], batch["mask"]
        rows: list[dict[str, Any]] = []
        for i, cube in enumerate(batch["cube_id"]):
            sample = int(batch["sample"][i])
            one = slice(i, i + 1)
            for name in _FORECASTERS:
                scores = pixel_scores(
                    values[name][one],
                    kndvi[one, CONTEXT_STEPS:],
                    mask[one, CONTEXT_STEPS:],
                    kndvi[one, :CONTEXT_STEPS],
                    mask[one, :CONTEXT_STEPS],
                    batch["landcover"][one],
                    self.rule,
                )
                if name == "model" and len(self._examples) < self.hparams["figure_cubes"]:
                    self._examples.append(
                        {
                            "cube_id": f"{cube}#{sample}",
                            "kndvi": kndvi[i].float().cpu().numpy(),
                            "mask": mask[i].float().cpu().numpy(),
                            "forecasts": {
                                n: values[n][i].float().cpu().numpy() for n in _FORECASTERS
                            },
                            "nse": scores.nse[0].float().cpu().numpy(),
                            "scored": scores.scored[0].cpu().numpy(),
                        }
                    )
                rows += cube_class_rows(
                    scores,
                    batch["landcover"][one],
                    [str(cube)],
                    forecaster=name,
                    track=self._track(sample),
                    sample=sample,
                )
        return rows

    def _log_scores(self, stage: str) -> dict[str, float]:
        overall: dict[str, float] = {}
        for name in _FORECASTERS:
            metric = self._metric(stage, name)
            values = metric.compute()
            metric.reset()
            prefix = f"{stage}/" if name == "model" else f"{stage}/{name}_"
            for key, value in values.items():
                self.log(f"{prefix}{key}", value.float(), sync_dist=False, rank_zero_only=False)
                overall[f"{name}_{key}"] = float(value)
        return overall

    def on_validation_epoch_end(self) -> None:
        """Log overall validation scores."""
        self._log_scores("val")

    def on_test_epoch_start(self) -> None:
        """Start fresh lists of per-sample scores."""
        self._sample_rows = []
        self._protocol_rows = []
        self._examples = []
        self._saliency_cube = None

    def on_test_epoch_end(self) -> None:
        """Log overall test scores and write them with the per-sample scores."""
        overall = self._log_scores("test")
        rows, protocol = self._sample_rows, self._protocol_rows
        if dist.is_available() and dist.is_initialized():
            gathered: list[Any] = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (rows, protocol))
            rows = [row for part in gathered for row in part[0]]
            protocol = [row for part in gathered for row in part[1]]
        unique = {row["sample"]: row for row in rows}
        protocol = list(
            {(r["sample"], r["forecaster"], r["landcover"]): r for r in protocol}.values()
        )
        if self.trainer.is_global_zero:
            directory = Path(self.trainer.default_root_dir)
            directory.mkdir(parents=True, exist_ok=True)
            scores = {
                "definition": "masked over vegetation pixels with valid observations (mask == 0)",
                "context_steps": CONTEXT_STEPS,
                "forecast_steps": FORECAST_STEPS,
                "vegetation_classes": list(self.objective.vegetation_classes),
                "overall": overall,
                "samples": [unique[k] for k in sorted(unique)],
            }
            path = directory / self.hparams["scores_file"]
            path.write_text(json.dumps(scores, indent=1, allow_nan=True))
            self._write_protocol(directory, protocol)

    def _write_protocol(self, directory: Path, rows: list[dict[str, Any]]) -> None:
        table = score_table(rows)
        document = {
            "definition": "GreenEarthNet protocol scores (trainers.scores) per test track",
            "rule": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(self.rule).items()},
            "table": table,
            "rows": rows,
        }
        figures = directory / "figures"
        figures.mkdir(exist_ok=True)
        if (reach := self._write_saliency(figures)) is not None:
            document["saliency"] = reach
        (directory / "protocol_scores.json").write_text(
            json.dumps(document, indent=1, allow_nan=True)
        )
        (directory / "protocol_scores.md").write_text(table_markdown(table))
        protocol_figures.track_bars(table, figures / "tracks.png")
        for example in self._examples:
            name = example["cube_id"].replace("#", "_")
            protocol_figures.forecast_series(
                example["cube_id"],
                example["kndvi"],
                example["mask"],
                example["forecasts"],
                example["scored"],
                figures / f"series_{name}.png",
            )
            protocol_figures.nse_map(
                example["cube_id"], example["nse"], example["scored"], figures / f"nse_{name}.png"
            )

    def _write_saliency(self, figures: Path) -> dict[str, Any] | None:
        """Draw the saliency of the kept cube; its central pixel's context reach, or ``None``."""
        cube = self._saliency_cube
        if cube is None:
            return None
        if "deepspeed" in type(self.trainer.strategy).__name__.lower():
            rank_zero_info("saliency skipped under DeepSpeed (run python -m trainers.saliency)")
            return None
        vegetation = vegetation_mask(cube["landcover"], self.objective.vegetation_classes)[0]
        rows, cols = torch.nonzero(vegetation, as_tuple=True)
        centre = (vegetation.shape[0] - 1) / 2, (vegetation.shape[1] - 1) / 2
        nearest = int(torch.argmin((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2))
        pixel = int(rows[nearest]), int(cols[nearest])
        # the test loop runs in inference mode; the saliency needs gradients of normal tensors
        with torch.inference_mode(False), torch.enable_grad():
            plain: Any = {
                k: v.clone() if isinstance(v, Tensor) else v for k, v in dict(cube).items()
            }
            mean = saliency(self, plain, problem=self.problem)
            one = saliency(self, plain, pixel=pixel, problem=self.problem)
        name = str(mean["cube_id"])
        comparison_figures.saliency_figure(mean, figures / f"saliency_{name}.png")
        comparison_figures.saliency_figure(one, figures / f"saliency_{name}_pixel.png")
        return {"cube_id": name, "pixel": list(pixel), "context_reach": context_reach(one)}

    def predict_step(self, batch: Batch, batch_idx: int) -> dict[str, Any]:
        """Forecast kNDVI of whole cubes, with their ids."""
        return {"cube_id": batch["cube_id"], "sample": batch["sample"], "kndvi": self(batch)}

    def configure_optimizers(self) -> Any:
        """AdamW and the schedule, stepped every optimiser step."""
        optimizer = build_optimizer(
            self.parameters(), lr=self.hparams["lr"], weight_decay=self.hparams["weight_decay"]
        )
        scheduler = build_scheduler(
            optimizer,
            name=self.hparams["scheduler"],
            warmup_steps=self.hparams["warmup_steps"],
            total_steps=lambda: int(self.trainer.estimated_stepping_batches),
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }
