"""``L2Loader``: the StatefulDataLoader that delivers an :class:`L2Dataset` in plan order.

What it adds to torchdata's :class:`~torchdata.stateful_dataloader.StatefulDataLoader`:

- **Order.** Workers yield ``(index, batch, lease)`` for their runs; the loader hands batches
  out by index, holding the few that arrive early, so the order is the plan's whatever the
  number of workers.
- **Slots.** Workers send batches in shared-memory slots they reuse (:mod:`cubestream.stream.
  _slots`); the loader hands a slot back once nothing holds its batch any more (at once
  when pinning, whose copy holds the batch instead).
- **Epochs.** :meth:`L2Loader.set_epoch` (Lightning calls it through the loader's sampler at
  every epoch) and the end of a full pass (the next pass plays the next epoch) set the epoch;
  it is written to the dataset's shared state before the workers start the pass, persistent
  or not.
- **State.** :meth:`L2Loader.state_dict` is ``{"epoch", "batches", "todo", ...}``: the
  batches delivered so far in the epoch and the few intervals of the epoch's order not yet
  delivered by any rank (:func:`~cubestream.stream.shards.remaining`). Every rank computes the
  same state from what all ranks share (the phase's intervals, the world size, the batches
  each rank delivered, equal in lockstep), so the one checkpoint Lightning saves on rank 0
  resumes every rank, on any number of ranks and workers; :meth:`L2Loader.load_state_dict`
  makes the next pass deliver exactly the items not yet delivered.
- **Start method.** Workers start with ``spawn`` (or ``forkserver``), never ``fork``: zarr 3
  runs an event-loop thread and a thread pool, s3fs/aiohttp another loop, Blosc its own
  threads and locks, and CUDA its context; a forked child inherits their locks in whatever
  state another thread left them and can hang forever on the first read. Workers open the
  store themselves on first use.
- **Memory cap.** ``prefetch_mb`` sets ``prefetch_factor`` so that the batches in flight stay
  under it; :meth:`L2Loader.memory_bound_mb` adds what workers hold while reading.
- **Counters.** :attr:`L2Loader.stats` (:class:`~cubestream.stream.stats.LoaderStats`).
"""

from __future__ import annotations

import atexit
import sys
import warnings
import weakref
from collections.abc import Iterator
from multiprocessing.context import BaseContext
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Sampler
from torchdata.stateful_dataloader import StatefulDataLoader

from cubestream.errors import LoaderConfigError, LoaderError
from cubestream.stream._slots import Held, Lease
from cubestream.stream.batches import SPATIAL, Batch, batch_nbytes
from cubestream.stream.dataset import L2Dataset
from cubestream.stream.shards import Intervals, remaining
from cubestream.stream.stats import LoaderStats

__all__ = ["START_METHODS", "L2Loader", "StartMethod", "make_loader"]

StartMethod = Literal["spawn", "forkserver"]
START_METHODS: tuple[StartMethod, ...] = ("spawn", "forkserver")
"""Start methods the loader accepts for its workers (see the module's description)."""
_STATE_VERSION = 2
_PLAN_KEYS = (
    "version", "batch_size", "seed", "shuffle", "chunk_buffer", "uneven", "items", "selection"
)  # fmt: skip
_LIVE: weakref.WeakSet[L2Loader] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """Stop the workers of loaders still alive at exit (persistent ones would leak queues)."""
    for loader in list(_LIVE):
        loader.shutdown()


class _EpochSampler(Sampler[None]):
    """An iterable-style loader's sampler (endless ``None``) with the ``set_epoch`` of Lightning."""

    def __init__(self, loader: L2Loader) -> None:
        self._loader = weakref.ref(loader)

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None

    def set_epoch(self, epoch: int) -> None:
        """Forward to :meth:`L2Loader.set_epoch`."""
        loader = self._loader()
        if loader is not None:
            loader.set_epoch(epoch)


def _item_nbytes(dataset: L2Dataset) -> int:
    """Bytes of one item in a batch (all requested variables, in their batch dtypes)."""
    ys, xs = dataset.windows[0]
    total = 0
    for name in dataset.variables:
        shape = dataset.info.shapes[name]
        if name in SPATIAL:
            shape = (*shape[:-2], ys.stop - ys.start, xs.stop - xs.start)
        total += int(np.prod(shape)) * dataset.batch_dtypes[name].itemsize
    return total


class L2Loader(StatefulDataLoader):  # type: ignore[misc]  # torchdata is untyped
    """Deliver the batches of an :class:`L2Dataset` in plan order, resumable mid-epoch.

    Parameters
    ----------
    dataset : L2Dataset
        The batches to deliver.
    num_workers : int
        DataLoader worker processes (0: read in this process, in background threads).
    pin_memory : bool, optional
        Copy batches into page-locked memory; by default when CUDA is available.
    prefetch_factor : int, optional
        Batches each worker may have ready in advance (2 by default).
    prefetch_mb : float, optional
        Cap on the megabytes of batches in flight; sets ``prefetch_factor`` (at least 1).
    persistent_workers : bool
        Keep the workers between passes (the epoch still reaches them).
    multiprocessing_context : {"spawn", "forkserver"}
        How workers start; ``fork`` is refused (see the module's description).
    timeout : float
        Seconds to wait for a batch from the workers before failing (0: no limit).
    stats : LoaderStats, optional
        Counters to add to; a new one by default.
    sampler, batch_sampler : None
        Only for Lightning, which rebuilds loaders with them set to None (prediction).
    """

    def __init__(
        self,
        dataset: L2Dataset,
        *,
        num_workers: int = 0,
        pin_memory: bool | None = None,
        prefetch_factor: int | None = None,
        prefetch_mb: float | None = None,
        persistent_workers: bool = False,
        multiprocessing_context: StartMethod | BaseContext = "spawn",
        timeout: float = 0,
        stats: LoaderStats | None = None,
        sampler: None = None,
        batch_sampler: None = None,
    ) -> None:
        if not isinstance(dataset, L2Dataset):
            raise LoaderConfigError(f"L2Loader needs an L2Dataset, not {type(dataset).__name__}")
        if sampler is not None or batch_sampler is not None:
            raise LoaderConfigError("L2Loader makes its own order: give no sampler")
        method = (  # a context, when Lightning rebuilds the loader
            multiprocessing_context
            if isinstance(multiprocessing_context, str)
            else multiprocessing_context.get_start_method()
        )
        if method not in START_METHODS:
            raise LoaderConfigError(
                f"multiprocessing_context must be one of {START_METHODS}, not {method!r}: "
                "forked workers can deadlock on the threads of zarr, s3fs and Blosc"
            )
        self.batch_nbytes = _item_nbytes(dataset) * dataset.spec.batch_size
        workers = num_workers > 0
        if workers:
            prefetch_factor = self._prefetch(num_workers, prefetch_factor, prefetch_mb)
            if method == "forkserver":
                torch.multiprocessing.get_context("forkserver").set_forkserver_preload(
                    ["cubestream.stream"]
                )
        context = torch.multiprocessing.get_context(method)
        self._returns = [context.SimpleQueue() for _ in range(num_workers)]
        capacity = (prefetch_factor or 2) + 4  # in flight, held by the consumer, being filled
        self.slots_per_worker = capacity
        with warnings.catch_warnings():  # torchdata calls a deprecated torch function
            warnings.filterwarnings("ignore", message=".*set_vital.*", category=UserWarning)
            super().__init__(
                dataset._for_loader(self._returns, capacity) if workers else dataset,
                batch_size=None,
                num_workers=num_workers,
                pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
                timeout=timeout,
                multiprocessing_context=method if workers else None,
                prefetch_factor=prefetch_factor if workers else None,
                persistent_workers=persistent_workers and workers,
                in_order=True,
            )
        # iterable-style loaders take no sampler argument; Lightning looks for set_epoch here
        object.__setattr__(self, "sampler", _EpochSampler(self))
        self.stats = stats if stats is not None else LoaderStats()
        self._mapped: dict[tuple[int, int], Batch] = {}
        self._leased: list[tuple[Lease, list[np.ndarray]]] = []
        self._epoch = dataset.epoch
        self._offset = 0  # batches of the epoch counted before an elastic resume
        self._delivered = 0
        self._complete = False
        _LIVE.add(self)

    def _prefetch(self, workers: int, factor: int | None, cap_mb: float | None) -> int:
        if cap_mb is None:
            return 2 if factor is None else factor
        fits = int(cap_mb * 1e6 // (workers * max(self.batch_nbytes, 1)))
        return max(1, min(fits, factor or fits))

    @property
    def l2(self) -> L2Dataset:
        """The dataset (typed)."""
        assert isinstance(self.dataset, L2Dataset)
        return self.dataset

    @property
    def epoch(self) -> int:
        """The epoch of the current (or next) pass."""
        return self._epoch + (1 if self._complete else 0)

    def set_epoch(self, epoch: int) -> None:
        """Play ``epoch`` in the next pass; a state loaded for this epoch is kept."""
        if epoch != self._epoch or self._complete:
            self._forget()
        self._epoch = epoch
        self._complete = False

    def _forget(self) -> None:
        """Play the next epochs whole: drop what a loaded state left of an epoch."""
        self._offset = 0
        self.l2.resume(self._epoch, None)

    def __len__(self) -> int:
        """Batches of the current (or next) epoch, counting those delivered before a resume."""
        if self._complete:
            return len(self.l2)
        return self._offset + self.l2.batches(self._epoch)

    def __iter__(self) -> Iterator[Batch]:
        """Start a pass: the current epoch from the first batch not yet delivered."""
        if self._complete:
            self._forget()
            self._epoch += 1
            self._complete = False
        self._delivered = 0
        self._sweep()
        if self.persistent_workers and getattr(self, "_iterator", None) is not None:
            for worker, returns in enumerate(self._returns):  # before the workers resume
                mine = frozenset(lease for lease, _ in self._leased if lease.worker == worker)
                returns.put(Held(mine))
        else:
            self._mapped.clear()  # new workers, new slots
        self.l2.publish(self._epoch, 0)
        inner = super().__iter__()
        total = self.l2.batches(self._epoch)
        return _Stream(self, inner, 0, total, tagged=self.num_workers > 0)

    def state_dict(self) -> dict[str, Any]:
        """Where the loader is (the same on every rank): see the module's description.

        ``batches`` counts this rank's batches of the epoch so far, ``n_batches`` the epoch's,
        both in this loader's count (an elastic resume keeps counting from the saved
        ``batches``); ``todo`` is what no rank has delivered yet: ``[start, end)`` intervals of
        the epoch's order, None before the first batch, empty once the epoch is done. The
        other keys identify the order, to refuse a state of another one.
        """
        data = self.l2
        delivered = self._delivered
        todo: Intervals | None = None
        if delivered or self._offset:
            phase = data.todo(self._epoch)
            todo = remaining(phase, data.world_size, data.spec.batch_size, delivered)
        return {
            "version": _STATE_VERSION,
            "epoch": self._epoch,
            "batches": self._offset + delivered,
            "n_batches": self._offset + data.batches(self._epoch),
            "world_size": data.world_size,
            "todo": None if todo is None else [list(interval) for interval in todo],
            "batch_size": data.spec.batch_size,
            "seed": data.spec.seed,
            "shuffle": data.spec.shuffle,
            "chunk_buffer": data.spec.chunk_buffer,
            "uneven": data.spec.uneven,
            "items": data.items,
            "selection": data.selection_digest,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Make the next pass deliver exactly the items ``state_dict`` says are left.

        The state may come from any number of ranks and workers: the rest of its epoch is
        spread over this loader's ranks (:func:`~cubestream.stream.shards.plan_epoch` with
        ``todo``), its final round padded if needed; loading the same state twice is harmless.

        Raises
        ------
        LoaderConfigError
            If the state comes from a loader with another order (store, split, selection,
            patches, chunking, batch size, seed, shuffle or uneven policy): its remainder would
            not be this loader's items.
        """
        if not state_dict:
            return
        mine = self.state_dict()
        differ = {
            k: (state_dict.get(k), mine[k]) for k in _PLAN_KEYS if state_dict.get(k) != mine[k]
        }
        if differ:
            raise LoaderConfigError(
                "cannot resume this loader from the saved state, the plans differ "
                f"(saved, now): {differ}; resume with the same settings or start the epoch anew"
            )
        if self.persistent_workers and getattr(self, "_iterator", None) is not None:
            self.shutdown()  # their copy of the dataset has the old intervals
        epoch, todo = int(state_dict["epoch"]), state_dict["todo"]
        self._complete = False
        self._delivered = 0
        self._epoch = epoch + 1 if todo is not None and not todo else epoch
        self._forget()
        if todo:
            self._offset = int(state_dict["batches"])
            self.l2.resume(epoch, tuple((int(a), int(b)) for a, b in todo))

    def memory_bound_mb(self) -> float:
        """Megabytes the loader keeps in use besides what the consumer holds (an estimate).

        Per reading process (each worker, or this one): the decoded memory it keeps for reuse
        (:attr:`L2Dataset.keep_bytes`, about six batches) plus a buffer being read. Per worker:
        its shared-memory slots (``prefetch_factor + 4`` batches, mapped by both processes).
        In this process: the batches a worker's run delivers ahead of order (at most one run,
        ``2 * chunk_buffer`` chunks, per other worker).
        """
        data = self.l2
        per_item = sum(data.info.sample_nbytes.values())
        buffer = 2 * data.spec.chunk_buffer * data.info.unit * per_item
        readers = max(self.num_workers, 1) * (data.keep_bytes + buffer)
        slots = self.num_workers * self.slots_per_worker * self.batch_nbytes
        run = 2 * data.spec.chunk_buffer * data.info.unit * len(data.windows)
        early = max(self.num_workers - 1, 0) * -(-run // data.spec.batch_size)
        return round(float(readers + slots + early * self.batch_nbytes) / 1e6, 1)

    def shutdown(self) -> None:
        """Stop the workers now (persistent ones too); a later pass starts new ones."""
        iterator = getattr(self, "_iterator", None)
        if iterator is not None and hasattr(iterator, "_shutdown_workers"):
            iterator._shutdown_workers()
        self._iterator = None
        self._mapped.clear()

    def _own(self, batch: Batch, lease: Lease | None) -> Batch:
        """Take a batch out of its worker's slot; the slot goes back once the batch is gone.

        Pinned batches are copies already: the slot goes back at once. Otherwise the batch's
        tensors are handed out over numpy views of the slot; a tensor, or any view of one,
        keeps its numpy view alive, so when all the views are down to this loader's own
        reference nothing uses the slot any more (checked at every ``next``).
        """
        if lease is None:
            return batch
        self._mapped[(lease.pid, lease.key)] = batch  # keeps the slot mapped: no page faults
        tensors = [v for v in batch.values() if torch.is_tensor(v)]
        if self.pin_memory and all(v.is_pinned() for v in tensors):  # copies, slot unused
            self._returns[lease.worker].put(lease)
            return batch
        views = {k: v.numpy() for k, v in batch.items() if torch.is_tensor(v)}
        self._leased.append((lease, list(views.values())))
        return {k: torch.from_numpy(views[k]) if k in views else v for k, v in batch.items()}

    def _sweep(self) -> None:
        """Hand back the slots whose batches nobody holds any more."""
        kept = []
        for lease, views in self._leased:
            # references: the list's and getrefcount's argument; more is a live tensor
            if all(sys.getrefcount(views[i]) <= 2 for i in range(len(views))):
                self._returns[lease.worker].put(lease)
            else:
                kept.append((lease, views))
        self._leased = kept


class _Stream(Iterator[Batch]):
    """One pass of an :class:`L2Loader`: batches by index, counted, workers stopped if left."""

    def __init__(
        self, loader: L2Loader, inner: Iterator[Any], start: int, total: int, *, tagged: bool
    ) -> None:
        self._loader = loader
        self._inner = inner
        self._next = start
        self._total = total
        self._tagged = tagged
        self._early: dict[int, Batch] = {}
        self._finished = False

    def __iter__(self) -> _Stream:
        return self

    def __len__(self) -> int:
        return self._total - self._next

    def _pull(self) -> Batch:
        if not self._tagged:
            return next(self._inner)
        self._loader._sweep()
        while self._next not in self._early:
            index, batch, lease = next(self._inner)
            self._early[index] = self._loader._own(batch, lease)
        return self._early.pop(self._next)

    def __next__(self) -> Batch:
        if self._next >= self._total:
            self._finish()
            raise StopIteration
        stats = self._loader.stats
        started = stats.begin()
        try:
            batch = self._pull()
        except StopIteration:
            raise LoaderError(
                f"the loader's workers stopped before batch {self._next} of {self._total}"
            ) from None
        self._next += 1
        self._loader._delivered = self._next
        stats.record(started, len(batch["sample"]), batch_nbytes(batch))
        return batch

    def _finish(self) -> None:
        """Let the workers see the end of the pass (they stop unless persistent)."""
        if self._finished:
            return
        self._finished = True
        for _ in self._inner:
            raise LoaderError(f"the loader's workers yielded more than {self._total} batches")
        self._loader._complete = True

    def close(self) -> None:
        """Stop a pass left unfinished: non-persistent workers exit now."""
        if self._finished:
            return
        self._finished = True
        loader = self._loader
        if loader.num_workers > 0 and not loader.persistent_workers:
            shutdown = getattr(self._inner, "_shutdown_workers", None)
            if shutdown is not None:
                shutdown()
            if getattr(loader, "_iterator", None) is self._inner:
                loader._iterator = None

    def __del__(self) -> None:
        self.close()


def make_loader(
    store: str,
    *,
    batch_size: int = 8,
    num_workers: int = 0,
    pin_memory: bool | None = None,
    prefetch_factor: int | None = None,
    prefetch_mb: float | None = None,
    persistent_workers: bool = False,
    multiprocessing_context: StartMethod = "spawn",
    threads: int | None = None,
    **dataset: Any,
) -> L2Loader:
    """An :class:`L2Loader` over a new :class:`L2Dataset` of ``store``.

    ``threads`` is the zarr decoding threads of the whole loader, shared among the workers
    (each gets ``max(1, threads // num_workers)``). Other keyword arguments go to
    :class:`L2Dataset`.
    """
    per_process = None if threads is None else max(1, threads // max(num_workers, 1))
    data = L2Dataset(store, batch_size=batch_size, threads=per_process, **dataset)
    return L2Loader(
        data,
        num_workers=num_workers,
        pin_memory=pin_memory,
        prefetch_factor=prefetch_factor,
        prefetch_mb=prefetch_mb,
        persistent_workers=persistent_workers,
        multiprocessing_context=multiprocessing_context,
    )
