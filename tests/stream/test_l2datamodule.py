"""L2DataModule under a Lightning Trainer: epochs reach persistent workers; mid-epoch resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from cubestream.stream import L2DataModule, make_loader


class Recorder(pl.LightningModule):
    """Trains nothing; records the samples of every training batch, by epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.seen: dict[int, list[list[int]]] = {}

    def training_step(self, batch: dict[str, Any], index: int) -> torch.Tensor:
        self.seen.setdefault(self.current_epoch, []).append(batch["sample"].tolist())
        return (self.weight * batch["dem"].mean()).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


def trainer(root: Path, **options: Any) -> pl.Trainer:
    return pl.Trainer(
        **{
            "default_root_dir": root,
            "accelerator": "cpu",
            "devices": 1,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 0,
            **options,
        }
    )


def module(store: str, workers: int) -> L2DataModule:
    return L2DataModule(
        store,
        batch_size=2,
        num_workers=workers,
        variables=["dem"],
        seed=4,
        multiprocessing_context="forkserver",
    )


def expected(store: str, epoch: int) -> list[list[int]]:
    loader = make_loader(store, split="train", batch_size=2, seed=4, variables=["dem"])
    loader.set_epoch(epoch)
    return [batch["sample"].tolist() for batch in loader]


def test_epochs_reach_persistent_workers(tmp_path: Path, store_s1: str) -> None:
    data, model = module(store_s1, workers=1), Recorder()
    trainer(tmp_path, max_epochs=2).fit(model, datamodule=data)
    assert model.seen == {0: expected(store_s1, 0), 1: expected(store_s1, 1)}
    assert data.stats["train"].batches == 2 * len(expected(store_s1, 0))
    assert not data.loaders  # teardown stopped the workers


def test_resume_from_a_mid_epoch_checkpoint(tmp_path: Path, store_s1: str) -> None:
    every_3 = pl.callbacks.ModelCheckpoint(tmp_path, every_n_train_steps=3, save_top_k=-1)
    first = Recorder()
    trainer(tmp_path, max_epochs=1, callbacks=[every_3], enable_checkpointing=True).fit(
        first, datamodule=module(store_s1, workers=0)
    )
    checkpoint = next(tmp_path.glob("*step=3.ckpt"))
    saved = torch.load(checkpoint, weights_only=False)["loops"]["fit_loop"]["state_dict"]
    assert saved["combined_loader"][0]["batches"] == 3
    second = Recorder()
    trainer(tmp_path, max_epochs=1).fit(
        second, datamodule=module(store_s1, 0), ckpt_path=checkpoint
    )
    full = expected(store_s1, 0)
    assert first.seen[0] == full and second.seen[0] == full[3:]


class Predictor(Recorder):
    def predict_step(self, batch: dict[str, Any], index: int) -> torch.Tensor:
        return batch["sample"]


def test_predict_follows_the_predict_split(tmp_path: Path, store_s1: str) -> None:
    """Lightning rebuilds the predict loader (to track indices); it still follows the split."""
    data = L2DataModule(store_s1, batch_size=2, num_workers=0, variables=["dem"])
    run = trainer(tmp_path)
    predicted = run.predict(Predictor(), datamodule=data)
    assert predicted is not None
    assert sorted(torch.cat(predicted).tolist()) == [4, 9, 14, 19]  # the test split
