"""Stream: L2 store -> xbatcher geometry -> torch batches, sharded by rank x DataLoader worker.

::

    loader = make_loader("l2.zarr", split="train", batch_size=8, num_workers=2)
    for batch in loader:            # dicts of tensors: see cubestream.stream.batches
        ...

For Lightning, :class:`L2DataModule` gives the train / val / test / predict loaders
(:class:`L2Loader`, a torchdata ``StatefulDataLoader``) of one store.

The rules
=========

Items
    An item is a whole sample (128 x 128) or, with ``patch``, one spatial patch of a sample;
    xbatcher's ``BatchSchema`` gives the patch windows (``input_dims``/``input_overlap``;
    patches that do not fit wholly are left out). The items of an epoch are the samples of the
    split with ``valid_fraction >= min_valid_fraction``, times the patches. ``steps`` (declared
    once, e.g. ``{"s2": 9}``) reads a variable for its leading time steps only: with ``s2``
    chunked along ``time`` (the store's layout) only the context chunks are decoded.

Chunk-aware shuffle, depending only on (seed, epoch)
    A *unit* is one chunk of every requested variable (``samples_per_chunk`` samples). Each
    epoch, a generator seeded with ``(seed, epoch)`` permutes the units, groups consecutive
    units into *buffers* of at least ``chunk_buffer`` units (closed where their items fill
    whole batches, at most twice that), and permutes the items within each buffer (a generator
    keyed by ``(seed, epoch)`` and position, so any range is computed alone). That one
    sequence is the epoch's order; nothing about ranks or workers enters it, so the same seed
    and epoch give the same order with 0, 1 or 8 workers, and the next epoch another. Without
    ``shuffle`` (val / test / predict) units and items keep storage order.

Sharding: rank, then worker
    Every rank takes a contiguous range of ``n_batches * batch_size`` items of that sequence:
    rank ``r`` gets the ``r``-th range, and computes only the buffers it overlaps. Within a
    rank, the batches are cut into *runs* at batch boundaries that are also buffer boundaries, so no
    unit is needed by two runs, and each run goes to one DataLoader worker (the least loaded
    so far). A worker reads each unit of its runs exactly once, as one concurrent zarr read
    per buffer, the next buffer in the background while it cuts the current one into
    batches. Workers yield ``(index, batch, lease)`` and the loader hands batches out by index,
    so the order does not depend on the workers. Each chunk is fetched and decoded once per
    epoch; the one exception is a unit that straddles the boundary between two ranks' ranges
    (at most ``world_size - 1`` units per epoch), which both ranks read.

Equal batch counts: pad or drop
    Every rank delivers ``n_batches`` batches in every epoch, all of ``batch_size`` items, so
    DDP never waits on a rank that has run out. With ``T`` items and ``R`` ranks:
    ``uneven="pad"`` (the default) gives ``ceil(T / (R * B))`` batches per rank, the
    ``R * n * B - T`` missing items being repeats of the last buffer's items (on the last rank;
    every item is delivered at least once, and exactly once when ``T`` is a multiple of
    ``R * B``); ``uneven="drop"`` gives ``floor(T / (R * B))`` and leaves out the last
    ``T mod (R * B)`` items of the epoch's order (other items each epoch, when shuffled).
    The count is the same in every epoch, so ``len(loader)`` is exact.

Epochs reach workers, persistent or not
    The epoch, the batch to start from, the rank and the world size live in a small int64
    tensor in shared memory that the dataset carries into its workers. The loader writes it
    at the start of each pass, before the workers begin: from :meth:`L2Loader.set_epoch`,
    which Lightning calls through the loader's sampler before every epoch, or else the next
    epoch after a full pass. Workers read it when their pass begins, so
    ``persistent_workers=True`` sees each new epoch too.

Mid-epoch resume, on any number of ranks and workers
    :meth:`L2Loader.state_dict` is ``{"epoch", "batches", "todo", ...}``: the batches this
    rank delivered so far in the epoch and ``todo``, the ``[start, end)`` intervals of the
    epoch's global order that no rank has delivered yet (at most one per rank and resume: a few
    numbers, no per-sample list). Ranks run in lockstep, so every rank computes the same state
    and the checkpoint rank 0 saves resumes every rank. :meth:`L2Loader.load_state_dict` on
    ``M`` ranks of ``V`` workers, whatever the ``N`` ranks of ``W`` workers that saved it,
    spreads exactly those items over the new ranks as contiguous ranges (the same batches as
    before when ``M == N``) and pads only the final round (with ``"drop"`` too: the resumed part
    drops nothing more, and the items a fresh epoch on ``N`` ranks drops stay dropped). The
    loader's ``len`` counts on from the saved ``batches``, so Lightning's batch count stays
    right; :class:`L2DataModule` also saves the state itself so that Lightning sizes the resumed
    epoch, then the next one, right. A state from a loader with another order (store, split,
    selection, patches, chunking, batch size, seed, shuffle, uneven policy) is refused.

Workers start with spawn or forkserver, never fork
    zarr 3 keeps an event-loop thread and a thread pool, s3fs another event loop, Blosc its
    threads and locks, CUDA its context; a forked child inherits their locks held by threads
    that do not exist in it and can hang on its first read. Workers are started with
    ``spawn`` (default) or ``forkserver`` and open the store themselves on first use.

Memory, copies, pinning, counters
    A whole-sample batch is a view of its decoded buffer: zarr decodes each chunk and copies
    it once into place, nothing more (chunks holding several samples add one copy of each
    row). Decoded memory is reused once no batch refers to it (``Recycler``), and workers send
    batches in shared-memory slots they reuse once the main process no longer holds them
    (``cubestream.stream._slots``), so the steady state faults in no fresh pages. Batches in
    flight are bounded by ``prefetch_factor`` per worker, or by ``prefetch_mb``;
    :meth:`L2Loader.memory_bound_mb` estimates the whole. Batches are pinned when CUDA is
    available. With ``decode="device"`` batches keep the stored dtypes (``s2`` as uint16
    codes: half the bytes to copy and pin) and :func:`~cubestream.stream.batches.decode_batch`
    makes the float32 contract on the GPU (:class:`L2DataModule` does it after each transfer).
    :class:`LoaderStats` (``loader.stats``) counts samples/s, MB/s and the time each step
    waited for its batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cubestream._extras import require_extra

# ruff: noqa: E402 (the extra is checked before the modules that need it are imported)
require_extra("train", "the streaming loader (cubestream.stream)", "torch", "torchdata")

from cubestream.stream.batches import BATCH_DTYPES, BATCH_VARIABLES, Batch
from cubestream.stream.dataset import L2Dataset, world
from cubestream.stream.loader import START_METHODS, L2Loader, StartMethod, make_loader
from cubestream.stream.patches import patch_windows
from cubestream.stream.shards import RankPlan, ShardSpec, Uneven, batches_per_rank, plan_epoch
from cubestream.stream.stats import LoaderStats

if TYPE_CHECKING:
    from cubestream.stream.datamodule import L2DataModule

__all__ = [
    "BATCH_DTYPES",
    "BATCH_VARIABLES",
    "START_METHODS",
    "Batch",
    "L2DataModule",
    "L2Dataset",
    "L2Loader",
    "LoaderStats",
    "RankPlan",
    "ShardSpec",
    "StartMethod",
    "Uneven",
    "batches_per_rank",
    "make_loader",
    "patch_windows",
    "plan_epoch",
    "world",
]


def __getattr__(name: str) -> Any:
    """Import :class:`L2DataModule` (and Lightning) on first use: DataLoader workers never do."""
    if name == "L2DataModule":
        from cubestream.stream.datamodule import L2DataModule

        return L2DataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
