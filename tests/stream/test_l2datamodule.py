"""L2DataModule under a Lightning Trainer: epochs reach persistent workers; mid-epoch resume."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
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


def simulated(store: str, rank: int, world: int) -> L2DataModule:
    return L2DataModule(
        store, batch_size=2, num_workers=0, variables=["dem"], seed=4, rank=rank, world_size=world
    )


@pytest.mark.parametrize(("saved", "resumed"), [(2, 1), (1, 2)])
def test_resume_a_mid_epoch_checkpoint_on_another_number_of_ranks(
    tmp_path: Path, store_s1: str, saved: int, resumed: int
) -> None:
    """Ranks simulated by separate Trainers: Lightning sizes the resumed and the next epoch."""
    train = {s for s in range(24) if s % 5 < 3}  # 15 samples
    first: list[int] = []
    for rank in range(saved):
        root = tmp_path / f"saved{rank}"
        every_2 = pl.callbacks.ModelCheckpoint(root, every_n_train_steps=2, save_top_k=-1)
        run = trainer(root, max_epochs=1, callbacks=[every_2], enable_checkpointing=True)
        model = Recorder()
        run.fit(model, datamodule=simulated(store_s1, rank, saved))
        first += [s for batch in model.seen[0][:2] for s in batch]  # before the checkpoint
    checkpoint = next((tmp_path / "saved0").glob("*step=2.ckpt"))
    second: list[int] = []
    after: list[int] = []
    for rank in range(resumed):
        model, data = Recorder(), simulated(store_s1, rank, resumed)
        trainer(tmp_path / f"resumed{rank}", max_epochs=2).fit(
            model, datamodule=data, ckpt_path=checkpoint
        )
        second += [s for batch in model.seen[0] for s in batch]
        whole = [s for batch in model.seen[1] for s in batch]
        assert len(whole) == 2 * -(-15 // (2 * resumed))  # the next epoch: a whole one
        after += whole
    left = 15 - saved * 2 * 2
    padding = resumed * -(-left // (2 * resumed)) * 2 - left
    got = Counter(first + second)
    assert set(got) == train and sum(got.values()) == 15 + padding
    assert set(after) == train
