"""The Setting: the data of the problem (the streaming loader) and what is scored on it.

:class:`KndviSetting` is a LightningDataModule around :class:`cubestream.stream.L2DataModule`
(or any DataModule yielding the same :class:`~trainers.batch.Batch` dicts, given as
``loader``). The streaming loader reads ``s2`` for the context steps only
(:data:`~trainers.batch.READ_STEPS`), all the models use of it. It reads the store's metadata
once into a :class:`~trainers.batch.ProblemSpec` (weather variables, normalisation, bands, the
scored vegetation classes), which the task takes in ``setup``; everything else it forwards to
the loader, including the loader's state, which Lightning saves in checkpoints for mid-epoch
resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytorch_lightning as pl
from torch.utils.data import DataLoader, IterableDataset

from trainers.batch import READ_STEPS, VEGETATION_CLASSES, ProblemSpec
from trainers.errors import LoaderNotAvailableError

__all__ = ["VARIABLES", "KndviSetting", "PlainBatches", "sample_tracks"]

VARIABLES = ("s2", "kndvi", "mask", "weather", "dem", "landcover", "geomorphons")
"""The store variables the trainers read (not ``dist_mask``: no model reads it, and at 1.5 MB
decoded per sample it was a fifth of the loader's decode once ``s2`` is read for the context
only)."""


class PlainBatches:
    """The batches of a loader, as an iterable that is not a ``DataLoader``.

    For prediction, Lightning re-creates every ``DataLoader`` with a batch sampler of its own
    (to track batch indices for prediction writers). A loader over an ``IterableDataset`` that
    shards itself, like the streaming loader, has no sampler to replace and cannot be re-created
    that way; its batches carry ``sample`` and ``cube_id``, which is what identifies a
    prediction, so the Setting hands Lightning the batches as they are.
    """

    def __init__(self, loader: DataLoader[Any]) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[Any]:
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def sample_tracks(store: str, storage_options: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Test track of every sample of an L2 store (metadata only).

    The store's ``track`` variable where it has one (``cubestream l2``); else ``iid`` for the
    test samples and ``""`` for the others (stores made before the tracks, synthetic stores).
    """
    from cubestream.storage import open_group

    root: Any = open_group(store, storage_options, zarr_format=None)
    split = [str(s) for s in root["split"][...]] if "split" in root else []
    track = [str(t) for t in root["track"][...]] if "track" in root else [""] * len(split)
    return tuple(t or ("iid" if s == "test" else "") for s, t in zip(split, track, strict=True))


def _stream_loader(
    store: str,
    *,
    batch_size: int,
    num_workers: int,
    seed: int,
    storage_options: dict[str, Any] | None,
    options: dict[str, Any],
) -> pl.LightningDataModule:
    try:
        from cubestream.stream import L2DataModule
    except ImportError as exc:
        raise LoaderNotAvailableError(
            "the streaming loader cubestream.stream cannot be imported "
            f"({exc}); give KndviSetting a `loader` DataModule yielding the batch contract"
        ) from exc
    extra = {"steps": READ_STEPS, **options}
    if storage_options is not None:
        extra["storage_options"] = storage_options
    loader: pl.LightningDataModule = L2DataModule(
        store,
        batch_size=batch_size,
        num_workers=num_workers,
        variables=VARIABLES,
        seed=seed,
        **extra,
    )
    return loader


class KndviSetting(pl.LightningDataModule):
    """kNDVI forecasting on an L2 store.

    Parameters
    ----------
    store : str
        L2 store (path or URL).
    batch_size : int
        Samples per batch and device.
    num_workers : int
        DataLoader workers per device.
    seed : int
        Shuffle seed of the loader.
    vegetation_classes : list of int
        WorldCover codes scored by the loss and metrics.
    storage_options : dict, optional
        fsspec options of a remote store.
    loader : LightningDataModule, optional
        A DataModule to use instead of ``cubestream.stream.L2DataModule``.
    loader_options : dict, optional
        Further keyword arguments of ``L2DataModule`` (patches, filters, prefetching;
        ``steps`` replaces :data:`~trainers.batch.READ_STEPS`).
    """

    def __init__(
        self,
        store: str,
        *,
        batch_size: int = 4,
        num_workers: int = 0,
        seed: int = 0,
        vegetation_classes: list[int] | None = None,
        storage_options: dict[str, Any] | None = None,
        loader: pl.LightningDataModule | None = None,
        loader_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        classes = tuple(vegetation_classes) if vegetation_classes else VEGETATION_CLASSES
        self.store = store
        self.problem = ProblemSpec.from_store(
            store, vegetation_classes=classes, storage_options=storage_options
        )
        self.tracks = sample_tracks(store, storage_options)
        self.loader = loader or _stream_loader(
            store,
            batch_size=batch_size,
            num_workers=num_workers,
            seed=seed,
            storage_options=storage_options,
            options=loader_options or {},
        )

    def prepare_data(self) -> None:
        """Forward to the loader."""
        self.loader.prepare_data()

    def setup(self, stage: str) -> None:
        """Forward to the loader, which sees this DataModule's trainer."""
        self.loader.trainer = self.trainer
        self.loader.setup(stage)

    def teardown(self, stage: str) -> None:
        """Forward to the loader."""
        self.loader.teardown(stage)

    def train_dataloader(self) -> Any:
        """The loader's training batches."""
        return self.loader.train_dataloader()

    def val_dataloader(self) -> Any:
        """The loader's validation batches."""
        return self.loader.val_dataloader()

    def test_dataloader(self) -> Any:
        """The loader's test batches."""
        return self.loader.test_dataloader()

    def predict_dataloader(self) -> Any:
        """The loader's prediction batches (see :class:`PlainBatches`)."""
        loader = self.loader.predict_dataloader()
        if isinstance(loader, DataLoader) and isinstance(loader.dataset, IterableDataset):
            return PlainBatches(loader)
        return loader

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """The loader's own hook: the streaming loader decodes its codes here, on the GPU."""
        return self.loader.on_after_batch_transfer(batch, dataloader_idx)

    def state_dict(self) -> dict[str, Any]:
        """The loader's state (saved in checkpoints)."""
        return self.loader.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the loader's state."""
        self.loader.load_state_dict(state_dict)
