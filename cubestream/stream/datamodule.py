"""``L2DataModule``: the L2 store as a LightningDataModule for the trainers.

Each stage gets an :class:`~cubestream.stream.L2Loader` over an :class:`~cubestream.stream.
L2Dataset`: ``train`` shuffled, ``val``, ``test`` and ``predict`` in storage order. Lightning
sets the epoch of each loader through its sampler (``set_epoch``) before every epoch, saves
the train loader's :meth:`~cubestream.stream.L2Loader.state_dict` in checkpoints and loads it
on resume; the loaders' counters are in :attr:`L2DataModule.stats`.

With ``decode="device"`` (the default when CUDA is available) the loaders deliver the stored
dtypes (``s2`` as uint16 codes) and :meth:`L2DataModule.on_after_batch_transfer` decodes them
on the GPU, which Lightning calls after moving each batch; the batches the model sees are the
same float32 bits either way (:mod:`cubestream.stream.batches`).

Resuming on another number of ranks. Lightning sizes an epoch from ``len(train_dataloader())``
once, before it loads the loader's state, and keeps that size for later epochs. So the
DataModule saves the train loader's state too (:meth:`L2DataModule.state_dict`, loaded before
the loaders are made) and gives it to the new train loader at once: Lightning then sizes the
resumed epoch, which is longer or shorter than a whole one on the new number of ranks, right.
When it differs, the DataModule asks Lightning to make the train loader again for the next
epoch (``reload_dataloaders_every_n_epochs``, set back afterwards), so later epochs are sized
right too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pytorch_lightning as pl
import torch

from cubestream.stream.batches import BATCH_VARIABLES, decode_batch
from cubestream.stream.dataset import Decode, L2Dataset
from cubestream.stream.loader import L2Loader, StartMethod
from cubestream.stream.shards import Uneven
from cubestream.stream.stats import LoaderStats
from cubestream.stream.store import DEFAULT_OBJECT_STORE, ObjectStoreKind

__all__ = ["L2DataModule", "Stage"]

Stage = Literal["train", "val", "test", "predict"]


class L2DataModule(pl.LightningDataModule):
    """Train, validation, test and predict loaders of one L2 store.

    Parameters
    ----------
    store : str
        Path or URL of the L2 store.
    batch_size : int
        Items per batch (per rank).
    num_workers : int
        DataLoader worker processes per rank.
    variables : sequence of str
        Variables in each batch.
    patch, overlap : int or (int, int), optional
        Patches instead of whole samples, and their overlap.
    seed : int
        Seed of the training shuffle.
    chunk_buffer : int
        Chunks shuffled together.
    min_valid_fraction : float
        Leave out samples with less valid data (``valid_fraction``).
    uneven : {"pad", "drop"}
        How ranks are evened (``pad`` for every stage but ``train``, which takes this).
    storage_options : dict, optional
        fsspec options (S3 endpoint and credentials).
    pin_memory : bool, optional
        By default when CUDA is available.
    persistent_workers : bool
        Keep workers between epochs.
    prefetch_factor : int, optional
        Batches ready in advance per worker.
    prefetch_mb : float, optional
        Cap on the megabytes of batches in flight per loader.
    threads : int, optional
        zarr decoding threads per loader, shared among its workers.
    multiprocessing_context : {"spawn", "forkserver"}
        How workers start.
    predict_split : str, optional
        Split the predict loader reads (all samples when None).
    rank, world_size : int, optional
        Only to simulate ranks; from torch.distributed by default.
    decode : {"auto", "loader", "device"}
        Where codes become float32: ``device`` after the transfer (see the module's
        description), ``loader`` in the workers; ``auto``: ``device`` when CUDA is available.
    object_store : {"fsspec", "obstore"}
        The client of an ``s3://`` store (see :mod:`cubestream.stream.store`).
    steps : mapping, optional
        Leading ``time`` steps read of some variables (``{"s2": 9}``: the context steps of
        ``s2`` only), for every stage; see :class:`~cubestream.stream.L2Dataset`.
    """

    def __init__(
        self,
        store: str,
        *,
        batch_size: int = 8,
        num_workers: int = 2,
        variables: Sequence[str] = BATCH_VARIABLES,
        patch: int | tuple[int, int] | None = None,
        overlap: int | tuple[int, int] = 0,
        seed: int = 0,
        chunk_buffer: int = 4,
        min_valid_fraction: float = 0.0,
        uneven: Uneven = "pad",
        storage_options: dict[str, Any] | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        prefetch_factor: int | None = None,
        prefetch_mb: float | None = None,
        threads: int | None = None,
        multiprocessing_context: StartMethod = "spawn",
        predict_split: str | None = "test",
        rank: int | None = None,
        world_size: int | None = None,
        decode: Literal["auto", "loader", "device"] = "auto",
        object_store: ObjectStoreKind = DEFAULT_OBJECT_STORE,
        steps: Mapping[str, int] | None = None,
    ) -> None:
        super().__init__()
        if decode == "auto":
            decode = "device" if torch.cuda.is_available() else "loader"
        self.decode: Decode = decode
        self.scales: dict[str, float] = {}
        self.store = store
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.variables = tuple(variables)
        self.patch, self.overlap = patch, overlap
        self.seed = seed
        self.chunk_buffer = chunk_buffer
        self.min_valid_fraction = min_valid_fraction
        self.uneven: Uneven = uneven
        self.storage_options = storage_options
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.prefetch_factor = prefetch_factor
        self.prefetch_mb = prefetch_mb
        self.threads = threads
        self.multiprocessing_context: StartMethod = multiprocessing_context
        self.predict_split = predict_split
        self.rank, self.world_size = rank, world_size
        self.object_store: ObjectStoreKind = object_store
        self.steps = dict(steps or {})
        self.loaders: dict[str, L2Loader] = {}
        self.stats: dict[str, LoaderStats] = {}
        self._train_state: dict[str, Any] = {}
        self._reload: int | None = None  # the trainer's setting while a reload is asked for

    def dataset(self, stage: Stage) -> L2Dataset:
        """A new dataset for ``stage`` (``train`` shuffled, the others in storage order)."""
        split = self.predict_split if stage == "predict" else stage
        workers = max(self.num_workers, 1)
        return L2Dataset(
            self.store,
            split=split,
            variables=self.variables,
            batch_size=self.batch_size,
            patch=self.patch,
            overlap=self.overlap,
            seed=self.seed,
            shuffle=stage == "train",
            uneven=self.uneven if stage == "train" else "pad",
            min_valid_fraction=self.min_valid_fraction,
            storage_options=self.storage_options,
            rank=self.rank,
            world_size=self.world_size,
            chunk_buffer=self.chunk_buffer,
            threads=None if self.threads is None else max(1, self.threads // workers),
            decode=self.decode,
            object_store=self.object_store,
            steps=self.steps,
        )

    def loader(self, stage: Stage) -> L2Loader:
        """A new loader for ``stage``; its counters go to ``stats[stage]``."""
        old = self.loaders.pop(stage, None)
        if old is not None:
            old.shutdown()
        dataset = self.dataset(stage)
        self.scales = dict(dataset.info.scales)
        loader = L2Loader(
            dataset,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            prefetch_factor=self.prefetch_factor,
            prefetch_mb=self.prefetch_mb,
            persistent_workers=self.persistent_workers,
            multiprocessing_context=self.multiprocessing_context,
            stats=self.stats.setdefault(stage, LoaderStats()),
        )
        self.loaders[stage] = loader
        return loader

    def train_dataloader(self) -> L2Loader:
        """Shuffled training batches, from where a loaded state left off."""
        loader = self.loader("train")
        state, self._train_state = self._train_state, {}
        loader.load_state_dict(state)
        trainer: Any = self.trainer  # Lightning sets its reload setting dynamically
        if trainer is None:
            return loader
        if self._reload is not None:  # the loader was made again: Lightning sizes it anew
            trainer.reload_dataloaders_every_n_epochs, self._reload = self._reload, None
        if len(loader) != len(loader.l2):  # a resumed epoch of another size than a whole one
            self._reload = trainer.reload_dataloaders_every_n_epochs
            trainer.reload_dataloaders_every_n_epochs = 1
        return loader

    def state_dict(self) -> dict[str, Any]:
        """The train loader's state (Lightning saves it in checkpoints)."""
        train = self.loaders.get("train")
        return {"train": train.state_dict()} if train is not None else {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Keep the train loader's state for the next train loader made."""
        self._train_state = dict(state_dict.get("train") or {})

    def val_dataloader(self) -> L2Loader:
        """Validation batches in storage order."""
        return self.loader("val")

    def test_dataloader(self) -> L2Loader:
        """Test batches in storage order."""
        return self.loader("test")

    def predict_dataloader(self) -> L2Loader:
        """Batches of ``predict_split`` in storage order."""
        return self.loader("predict")

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Decode a batch of stored dtypes on its device (``decode="device"``)."""
        if self.decode == "device" and isinstance(batch, dict):
            return decode_batch(batch, self.scales)
        return batch

    def teardown(self, stage: str) -> None:
        """Stop the workers of every loader made so far."""
        for loader in self.loaders.values():
            loader.shutdown()
        self.loaders.clear()
