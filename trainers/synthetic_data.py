"""A small in-process loader that yields the batch contract: the trainers' tests and the peer.

:class:`SyntheticL2DataModule` reads an L2 store (for example one written by
:func:`cubestream.l2.synthetic.write_synthetic_l2`) with zarr directly and yields exactly the
batches of :class:`trainers.batch.Batch` (``s2`` of the context steps only,
:data:`~trainers.batch.READ_STEPS`, as the streaming loader reads it for the trainers). It exists
so that the trainers can be tested (and benchmarked, as the peer of ``benchmarks.train_step``)
apart from the streaming loader; it is not a loader for real training (it reads sample by sample,
in the main process). Its epochs are shuffled by ``(seed, epoch)``, sharded over the ranks of an
initialised process group (each rank gets the same count: the training tail is dropped, evaluation
splits are padded by repeating samples), and it uses torchdata's ``StatefulDataLoader``, so a
mid-epoch checkpoint resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
import zarr
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader
from torchdata.stateful_dataloader.sampler import StatefulDistributedSampler

from cubestream.l2.encoding import decode_array, scale_of
from trainers.batch import FLOAT_KEYS, READ_STEPS, Batch

__all__ = ["L2SampleDataset", "SyntheticL2DataModule"]

_INTS = ("landcover", "geomorphons")
"""The integer variables the Setting reads (:data:`trainers.setting.VARIABLES`); the floats are
:data:`trainers.batch.FLOAT_KEYS`."""


class L2SampleDataset(Dataset[dict[str, Any]]):
    """Samples of an L2 store as dicts of tensors (one sample, no batch dimension).

    Parameters
    ----------
    store : str or Path
        L2 store.
    indices : list of int
        The samples, in order.
    steps : mapping, optional
        Leading time steps read of some variables (``{"s2": 9}``); the others whole.
    """

    def __init__(
        self, store: str | Path, indices: list[int], steps: Mapping[str, int] | None = None
    ) -> None:
        self.store = str(store)
        self.indices = indices
        self.steps = dict(steps or {})
        self._root: Any = None

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if self._root is None:
            self._root = zarr.open_group(self.store, mode="r")
        index = self.indices[i]
        item: dict[str, Any] = {}
        for name in FLOAT_KEYS:  # s2 and kndvi may be scaled codes (cubestream.l2.encoding)
            array = self._root[name]
            region = (index, slice(0, self.steps[name])) if name in self.steps else (index,)
            values = decode_array(np.asarray(array[region]), scale_of(array.attrs))
            item[name] = torch.from_numpy(values)
        for name in _INTS:
            item[name] = torch.from_numpy(np.asarray(self._root[name][index], np.int64))
        item["sample"] = torch.tensor(index, dtype=torch.int64)
        item["cube_id"] = str(self._root["cube_id"][index])
        return item


class _EpochSampler(StatefulDistributedSampler):  # type: ignore[misc]  # torchdata is untyped
    """A stateful distributed sampler whose state also holds its epoch.

    Lightning creates the iterator of a resumed loader before it calls ``set_epoch``, so the
    epoch must come back with the position.
    """

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "epoch": self.epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if "epoch" in state_dict:
            self.epoch = int(state_dict["epoch"])


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class SyntheticL2DataModule(pl.LightningDataModule):
    """Whole-sample batches of an L2 store, by split (test helper; see the module docstring).

    Parameters
    ----------
    store : str or Path
        L2 store.
    batch_size : int
        Samples per batch.
    seed : int
        Shuffle seed (the order depends on seed and epoch only).
    steps : mapping, optional
        Leading time steps read of some variables (:data:`~trainers.batch.READ_STEPS` when
        None; ``{}`` reads every variable whole).
    """

    def __init__(
        self,
        store: str | Path,
        batch_size: int = 2,
        seed: int = 0,
        steps: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        self.store = str(store)
        self.batch_size = batch_size
        self.seed = seed
        self.steps = dict(READ_STEPS if steps is None else steps)

    def _indices(self, split: str) -> list[int]:
        root: Any = zarr.open_group(self.store, mode="r")
        splits = root["split"][...]
        return [i for i, name in enumerate(splits) if str(name) == split]

    def _loader(self, split: str, *, shuffle: bool) -> StatefulDataLoader[Batch]:
        rank, world = _rank()
        dataset = L2SampleDataset(self.store, self._indices(split), self.steps)
        sampler = _EpochSampler(
            dataset,
            num_replicas=world,
            rank=rank,
            shuffle=shuffle,
            seed=self.seed,
            drop_last=shuffle,
        )
        return StatefulDataLoader(dataset, batch_size=self.batch_size, sampler=sampler)

    def train_dataloader(self) -> StatefulDataLoader[Batch]:
        """Shuffled training batches."""
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> StatefulDataLoader[Batch]:
        """Validation batches in store order."""
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> StatefulDataLoader[Batch]:
        """Test batches in store order."""
        return self._loader("test", shuffle=False)

    def predict_dataloader(self) -> StatefulDataLoader[Batch]:
        """The test split, for prediction."""
        return self._loader("test", shuffle=False)
