"""``L2Dataset``: a torch IterableDataset of batches of an L2 store, sharded by rank and worker.

The dataset yields whole batches (use it with ``batch_size=None``; :class:`~cubestream.stream.
L2Loader` does). In each process it plans the epoch (:func:`~cubestream.stream.shards.
plan_epoch`), takes the runs of its worker and reads each of their buffers once with a
:class:`~cubestream.stream.store.SampleReader`, in the buffer's shuffled order, about two
batches ahead in the background. Whole-sample batches are then views of the decoded buffers
(no copy, unless a batch straddles two buffers or a dtype changes); patches are cut from the
decoded samples (:mod:`cubestream.stream.batches`). In DataLoader workers the buffers are
born in shared memory, so batches reach the main process without another copy.

The epoch, the batch to start from, the rank and the world size live in a 4-element int64
tensor in shared memory, created with the dataset. DataLoader workers receive that same memory
when they start (spawn and forkserver pass it as a file descriptor), so what the main process
writes before an epoch reaches workers that persist between epochs. What an elastic resume left
of an epoch (:meth:`L2Dataset.resume`, a few intervals of the epoch's order) is an attribute:
it is set before workers start, and the loader stops persistent workers when it changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed
from torch.utils.data import IterableDataset, get_worker_info

from cubestream.errors import LoaderConfigError
from cubestream.stream._slots import SlotPool
from cubestream.stream.batches import (
    BATCH_TORCH_DTYPES,
    BATCH_VARIABLES,
    Batch,
    patch_batch,
    rows_batch,
)
from cubestream.stream.patches import Window, patch_windows
from cubestream.stream.shards import (
    Intervals,
    RankPlan,
    ShardSpec,
    Uneven,
    batches_per_rank,
    phase_batches,
    phase_todo,
    plan_epoch,
)
from cubestream.stream.store import (
    DEFAULT_OBJECT_STORE,
    Decoded,
    ObjectStoreKind,
    SampleReader,
    StoreInfo,
    describe,
    torch_dtype,
)

__all__ = ["DECODES", "Decode", "L2Dataset", "world"]

Decode = Literal["loader", "device"]
"""Where integer codes become float32: in the loader's workers, or on the device."""
DECODES: tuple[Decode, ...] = ("loader", "device")

_EPOCH, _START, _RANK, _WORLD = range(4)


def world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int]:
    """``(rank, world_size)``: as given, else torch.distributed's, else ``RANK``/``WORLD_SIZE``.

    Both environment variables must be set to be used; otherwise a single process ``(0, 1)``.
    """
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    return 0, 1


def _buffer_spans(plan: RankPlan, runs: list[tuple[int, int]]) -> list[tuple[int, int, int]]:
    """``(buffer, first, end)`` item positions of each buffer in ``runs``, in order."""
    spans = []
    for first, end in runs:
        lo, hi = first * plan.batch_size, end * plan.batch_size
        buffers = plan.buffers[lo:hi]
        cuts = [0, *(np.flatnonzero(buffers[1:] != buffers[:-1]) + 1).tolist(), hi - lo]
        for a, b in itertools.pairwise(cuts):
            spans.append((int(buffers[a]), lo + a, lo + b))
    return spans


class L2Dataset(IterableDataset[Batch]):
    """Batches of an L2 store for one rank: every item once per epoch across ranks and workers.

    Parameters
    ----------
    store : str
        Path or URL (``s3://bucket/key``) of the L2 store.
    split : {"train", "val", "test"}, optional
        Only the samples of this split; all samples when None.
    variables : sequence of str
        Variables in each batch (see :mod:`cubestream.stream.batches`); all by default.
    batch_size : int
        Items per batch.
    patch : int or (int, int), optional
        Patch size in pixels; whole samples when None.
    overlap : int or (int, int)
        Overlap of neighbouring patches in pixels.
    seed : int
        Seed of the shuffle.
    shuffle : bool
        Shuffle chunks and items, differently in every epoch.
    uneven : {"pad", "drop"}
        How every rank gets the same number of batches (see :mod:`cubestream.stream`).
    min_valid_fraction : float
        Leave out samples whose ``valid_fraction`` is below this.
    storage_options : dict, optional
        fsspec options for a URL (for S3: ``key``, ``secret``, ``client_kwargs``).
    rank, world_size : int, optional
        This process's rank and the number of ranks; from :func:`world` when not given.
    chunk_buffer : int
        Chunks whose items are shuffled together.
    threads : int, optional
        zarr decoding threads per process that reads (see :class:`~cubestream.stream.store.
        SampleReader`).
    decode : {"loader", "device"}
        ``loader``: batches in the contract's dtypes (codes scaled to float32 here, in the
        workers); ``device``: every variable in its stored dtype, for
        :func:`~cubestream.stream.batches.decode_batch` after the transfer to the GPU (see
        :mod:`cubestream.stream.batches`).
    object_store : {"fsspec", "obstore"}
        The client of an ``s3://`` store: fsspec / s3fs, or obstore through zarr's
        ``ObjectStore``; both take ``storage_options`` (see :mod:`cubestream.stream.store`).
    steps : mapping, optional
        Leading ``time`` steps to read of some variables, e.g. ``{"s2": 9}`` (the trainers'
        context); the others are read whole. In a store chunked along ``time`` only the chunks
        of those steps are decoded (see :mod:`cubestream.stream.store`). It changes what a
        batch holds, not the order of the items.

    Raises
    ------
    LoaderStoreError
        If the store lacks a variable or disagrees with the schema (the message names it).
    LoaderConfigError
        If the settings cannot work (patch too large, not one batch per rank, ...).
    """

    def __init__(
        self,
        store: str,
        *,
        split: str | None = None,
        variables: Sequence[str] = BATCH_VARIABLES,
        batch_size: int = 8,
        patch: int | tuple[int, int] | None = None,
        overlap: int | tuple[int, int] = 0,
        seed: int = 0,
        shuffle: bool = True,
        uneven: Uneven = "pad",
        min_valid_fraction: float = 0.0,
        storage_options: dict[str, Any] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        chunk_buffer: int = 4,
        threads: int | None = None,
        decode: Decode = "loader",
        object_store: ObjectStoreKind = DEFAULT_OBJECT_STORE,
        steps: Mapping[str, int] | None = None,
    ) -> None:
        if decode not in DECODES:
            raise LoaderConfigError(f"decode must be one of {DECODES}, not {decode!r}")
        unknown = [v for v in variables if v not in BATCH_VARIABLES]
        if unknown or not variables:
            raise LoaderConfigError(
                f"unknown or no variables {unknown or list(variables)}; choose among "
                f"{list(BATCH_VARIABLES)}"
            )
        if (rank is None) != (world_size is None):
            raise LoaderConfigError("give both rank and world_size, or neither")
        self.store = str(store)
        self.split = split
        self.variables = tuple(variables)
        self.spec = ShardSpec(
            batch_size=batch_size,
            seed=seed,
            shuffle=shuffle,
            chunk_buffer=chunk_buffer,
            uneven=uneven,
        )
        self.min_valid_fraction = min_valid_fraction
        self.storage_options = storage_options
        self.threads = threads
        self.decode: Decode = decode
        self.object_store: ObjectStoreKind = object_store
        self._rank, self._world_size = rank, world_size
        self.info: StoreInfo = describe(
            self.store,
            self.variables,
            storage_options,
            need_split=split is not None,
            object_store=object_store,
            steps=steps,
        )
        self.windows: tuple[Window, ...] = patch_windows(
            self.info.height, self.info.width, patch, overlap
        )
        self.selected = self.info.selection(split, min_valid_fraction)
        self._state = torch.zeros(4, dtype=torch.int64).share_memory_()
        self._tagged = False
        self._returns: list[Any] | None = None
        self._slot_capacity = 4
        self._slots: SlotPool | None = None
        self._reader: SampleReader | None = None
        self._plan: RankPlan | None = None
        self._todo: tuple[int, Intervals] | None = None
        self._digest: str | None = None
        self.publish(epoch=0, start=0)
        if len(self) == 0:
            raise LoaderConfigError(
                f"{self.items} items ({len(self.selected)} samples of split {split!r} x "
                f"{len(self.windows)} patches) do not fill one batch of {batch_size} on each "
                f"of {self.world_size} ranks; use a smaller batch_size, uneven='pad' or fewer ranks"
            )

    @property
    def batch_dtypes(self) -> dict[str, torch.dtype]:
        """The dtype of each variable in the batches (see ``decode``)."""
        if self.decode == "loader":
            return {name: BATCH_TORCH_DTYPES[name] for name in self.variables}
        return {name: torch_dtype(self.info.dtypes[name]) for name in self.variables}

    @property
    def rank(self) -> int:
        """The rank this dataset delivers for (as published to the workers)."""
        return int(self._state[_RANK])

    @property
    def world_size(self) -> int:
        """The number of ranks (as published to the workers)."""
        return int(self._state[_WORLD])

    @property
    def epoch(self) -> int:
        """The epoch the next iteration plays."""
        return int(self._state[_EPOCH])

    @property
    def keep_bytes(self) -> int:
        """Decoded memory a reading process keeps for reuse: about six batches' worth.

        Two batches being read ahead, the buffers being cut, and the batches the consumer
        still holds; more than that is allocated afresh and let go.
        """
        per_item = sum(self.info.sample_nbytes.values())
        return 6 * self.spec.batch_size * per_item + self.info.unit * per_item

    @property
    def items(self) -> int:
        """Selected items in the store (samples times patches)."""
        return len(self.selected) * len(self.windows)

    def __len__(self) -> int:
        """Batches per rank and epoch: the same for every rank and every epoch."""
        return batches_per_rank(self.items, self.world_size, self.spec.batch_size, self.spec.uneven)

    @property
    def selection_digest(self) -> str:
        """What the epoch's order is made of, as a sha1 hex digest.

        The selected samples, their cube ids, the patch windows and the chunking.
        """
        if self._digest is None:
            digest = hashlib.sha1(np.ascontiguousarray(self.selected, np.int64).tobytes())
            digest.update("\n".join(map(str, self.info.cube_id[self.selected])).encode())
            digest.update(repr((self.windows, self.info.unit)).encode())
            self._digest = digest.hexdigest()
        return self._digest

    def resume(self, epoch: int, todo: Intervals | None) -> None:
        """Deliver only the positions ``todo`` of ``epoch``'s order (all of it when None).

        See :func:`~cubestream.stream.shards.remaining`; other epochs are whole.
        """
        kept = None if todo is None else tuple((int(a), int(b)) for a, b in todo)
        self._todo = None if kept is None else (epoch, kept)
        self._plan = None

    def todo(self, epoch: int) -> Intervals:
        """The positions of ``epoch``'s order this dataset's ranks deliver in it."""
        if self._todo is not None and self._todo[0] == epoch:
            return self._todo[1]
        return phase_todo(None, self.items, self.world_size, self.spec)

    def batches(self, epoch: int) -> int:
        """Batches per rank in ``epoch``: :meth:`__len__`, or fewer or more after a resume."""
        if self._todo is not None and self._todo[0] == epoch:
            return phase_batches(self._todo[1], self.world_size, self.spec.batch_size)
        return len(self)

    def publish(self, epoch: int, start: int = 0) -> None:
        """Set the epoch and first batch of the next iteration, for this process and workers.

        Also refreshes the rank and world size from :func:`world` unless they were given.
        """
        rank, size = world(self._rank, self._world_size)
        if not 0 <= rank < size:
            raise LoaderConfigError(f"rank {rank} is not in 0..{size - 1} (world_size)")
        values = (epoch, start, rank, size)
        self._state.copy_(torch.tensor(values, dtype=torch.int64))

    def set_epoch(self, epoch: int) -> None:
        """Play ``epoch`` from its first batch in the next iteration."""
        self.publish(epoch, 0)

    def plan(self, epoch: int | None = None) -> RankPlan:
        """The plan of this rank for ``epoch`` (the published epoch by default)."""
        epoch = self.epoch if epoch is None else epoch
        cached = self._plan
        if cached is not None and (cached.epoch, cached.rank, cached.world_size) == (
            epoch,
            self.rank,
            self.world_size,
        ):
            return cached
        resumed = self._todo is not None and self._todo[0] == epoch
        self._plan = plan_epoch(
            self.selected,
            unit=self.info.unit,
            patches=len(self.windows),
            spec=self.spec,
            epoch=epoch,
            rank=self.rank,
            world_size=self.world_size,
            todo=self.todo(epoch) if resumed else None,
        )
        return self._plan

    def __iter__(self) -> Iterator[Any]:
        """Yield this worker's batches of the published epoch from the published start batch.

        Outside DataLoader workers, or in workers of a plain DataLoader, the batches come as
        dicts; an :class:`~cubestream.stream.L2Loader` asks for ``(index, batch, lease)``
        triples and puts the batches back in order.
        """
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        epoch, start = int(self._state[_EPOCH]), int(self._state[_START])
        slots = self._slot_pool(worker) if info is not None else None
        for index, batch in self._produce(self.plan(epoch), worker, workers, start):
            if slots is not None:
                yield (index, *slots.put(batch))
            elif self._tagged:
                yield index, batch, None
            else:
                yield batch

    def _slot_pool(self, worker: int) -> SlotPool | None:
        """The slots of worker ``worker``, if its loader hands them back."""
        if not self._tagged or self._returns is None:
            return None
        if self._slots is None:
            self._slots = SlotPool(worker, self._returns[worker], self._slot_capacity)
        return self._slots

    def _produce(
        self, plan: RankPlan, worker: int, workers: int, start: int
    ) -> Iterator[tuple[int, Batch]]:
        """Read this worker's buffers, about two batches ahead, and cut them into batches."""
        if self._reader is None:
            # in a worker without slots, batches travel in the buffers' shared memory
            shared = get_worker_info() is not None and self._returns is None
            self._reader = SampleReader(
                self.info,
                self.storage_options,
                self.threads,
                shared=shared,
                keep_bytes=self.keep_bytes,
                object_store=self.object_store,
            )
        reader, size = self._reader, plan.batch_size
        whole = len(self.windows) == 1
        runs = [(max(a, start), b) for a, b in plan.runs_of(worker, workers) if b > start]
        reads = deque(_buffer_spans(plan, runs))
        pending: deque[tuple[int, int, int, np.ndarray, Future[Decoded]]] = deque()
        decoded: dict[int, tuple[int, int, Decoded, dict[int, int]]] = {}

        def fill() -> None:
            """Start reads until about two batches of items are on their way."""
            while reads and (not pending or sum(p[2] - p[1] for p in pending) < 2 * size):
                buffer, lo, hi = reads.popleft()
                samples = plan.items[lo:hi, 0] if whole else np.unique(plan.items[lo:hi, 0])
                pending.append((buffer, lo, hi, samples, reader.submit(samples)))

        fill()
        try:
            for first, end in runs:
                for index in range(first, end):
                    low, high = index * size, (index + 1) * size
                    needed = list(dict.fromkeys(plan.buffers[low:high].tolist()))
                    while not all(b in decoded for b in needed):
                        buffer, lo, hi, samples, future = pending.popleft()
                        rows = {} if whole else {int(s): r for r, s in enumerate(samples.tolist())}
                        decoded[buffer] = (lo, hi, future.result(), rows)
                        fill()
                    yield index, self._batch(plan, index, [decoded[b] for b in needed])
                    for buffer in [b for b, (_, hi, _, _) in decoded.items() if hi <= high]:
                        del decoded[buffer]
        finally:
            # a pass left early: let running reads finish, so no read is cut off at exit
            for *_, future in pending:
                if not future.cancel():
                    with contextlib.suppress(Exception):
                        future.result()

    def _batch(
        self, plan: RankPlan, index: int, parts: list[tuple[int, int, Decoded, dict[int, int]]]
    ) -> Batch:
        """Batch ``index`` from the decoded buffers it lies in."""
        assert self._reader is not None
        low, high = index * plan.batch_size, (index + 1) * plan.batch_size
        items = plan.items[low:high]
        options: dict[str, Any] = {
            "variables": self.variables,
            "cube_id": self.info.cube_id,
            "empty": self._reader.empty,
            "dtypes": self.batch_dtypes,
            "scales": self.info.scales,
        }
        if len(self.windows) == 1:
            rows = [(d, slice(max(lo, low) - lo, min(hi, high) - lo)) for lo, hi, d, _ in parts]
            return rows_batch(rows, items[:, 0], **options)
        where = {s: (d, r) for _, _, d, rows in parts for s, r in rows.items()}
        return patch_batch(items, where, windows=self.windows, **options)

    def _for_loader(self, returns: list[Any] | None, capacity: int) -> L2Dataset:
        """A shallow copy (same shared state) for an :class:`~cubestream.stream.L2Loader`.

        It yields ``(index, batch, lease)``: in workers with ``returns`` (one queue per
        worker) batches come in reused slots (:mod:`cubestream.stream._slots`).
        """
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone._tagged = True
        clone._returns = returns
        clone._slot_capacity = capacity
        clone._reader = None
        clone._slots = None
        return clone

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_reader": None, "_plan": None, "_slots": None}
