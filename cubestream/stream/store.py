"""Reading the L2 store: what the loader checks and the one reader that touches chunks.

:func:`describe` opens a store (a path or an ``s3://`` URL with fsspec ``storage_options``),
checks what the loader needs of :mod:`cubestream.l2.schema` (each requested variable, its
dimension names, consistent sizes, the per-sample ``cube_id``, ``split`` and ``valid_fraction``
when used) and returns a small picklable :class:`StoreInfo`. :class:`SampleReader` reads
samples, in a given order, into tensors: every chunk they touch is fetched and decoded once,
concurrently, with zarr's asynchronous API. A variable with a ``time`` dimension can be read
for its leading steps only (``steps``, e.g. ``{"s2": 9}``): in a store chunked along ``time``
(``s2`` in chunks of 9 steps, :data:`cubestream.l2.schema.TIME_CHUNKS`) only the chunks of
those steps are fetched and decoded; in a store of whole-sample chunks the chunk is decoded and
the steps copied out, the same values either way.
An ``s3://`` store is read through fsspec / s3fs or through obstore (zarr's ``ObjectStore``),
as ``object_store`` says (:data:`ObjectStoreKind`); both take their endpoint and credentials
from the same ``storage_options`` (:meth:`cubestream.storage.S3Settings.storage_options`).
A reader opens its store on first use, in the process that reads: DataLoader workers open
their own.
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch
import zarr
import zarr.api.asynchronous as zarr_async
from zarr.abc.store import Store
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.types import AnyArray

from cubestream.errors import LoaderConfigError, LoaderStoreError, LoaderStoreNotFoundError
from cubestream.storage import S3Settings, zarr_store

__all__ = [
    "DEFAULT_OBJECT_STORE",
    "Decoded",
    "Empty",
    "ObjectStoreKind",
    "SampleReader",
    "StoreInfo",
    "describe",
    "empty",
    "open_store",
    "torch_dtype",
]

Decoded = dict[str, torch.Tensor]
"""Decoded samples: variable -> tensor whose first dimension runs over the samples read."""
_Scatter = tuple[str, np.ndarray, np.ndarray, torch.Tensor]
"""Rows still to copy from a decoded chunk: variable, output rows, rows in the chunk, chunk."""
_READS = 4
"""Buffer reads a reader runs at once (each waits on zarr's event loop; zarr's pool decodes)."""


ObjectStoreKind = Literal["fsspec", "obstore"]
"""How ``s3://`` stores are read: fsspec / s3fs, or obstore through zarr's ``ObjectStore``."""
DEFAULT_OBJECT_STORE: ObjectStoreKind = "obstore"
"""The default, chosen by ``python -m benchmarks.object_store`` (obstore 1.2x the MB/s of
fsspec on the replica's S3 server, 1.17x the samples per CPU second; see the README)."""


def _check_kind(object_store: str) -> None:
    if object_store not in get_args(ObjectStoreKind):
        raise LoaderConfigError(
            f"object_store={object_store!r} is not one of {get_args(ObjectStoreKind)}"
        )


_OBSTORE_OPTIONS = {"key", "secret", "token", "anon", "endpoint_url", "client_kwargs"}
"""fsspec ``storage_options`` the obstore path reads (see ``S3Settings.from_storage_options``)."""
_OBSTORE_CLIENT = {"endpoint_url", "region_name"}


def _obstore(url: str, storage_options: dict[str, Any] | None) -> Store:
    """Zarr's ``ObjectStore`` over obstore's ``S3Store`` for ``s3://bucket/prefix``."""
    from obstore.store import S3Store
    from zarr.storage import ObjectStore

    options = storage_options or {}
    unknown = sorted(set(options) - _OBSTORE_OPTIONS)
    unknown += sorted(set(options.get("client_kwargs") or {}) - _OBSTORE_CLIENT)
    if unknown:
        raise LoaderConfigError(
            f"storage_options {unknown} of {url} have no obstore equivalent (it takes "
            f"{sorted(_OBSTORE_OPTIONS)}, client_kwargs {sorted(_OBSTORE_CLIENT)}); "
            'use object_store="fsspec"'
        )
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    settings = S3Settings.from_storage_options(storage_options)
    store = S3Store(bucket, prefix=prefix.strip("/") or None, **settings.obstore_config())
    return ObjectStore(store, read_only=True)


def _target(url: str, storage_options: dict[str, Any] | None, object_store: str) -> Store:
    """The read-only zarr store of ``url``.

    ``storage_options`` go to fsspec for URLs (:func:`cubestream.storage.zarr_store`); with
    ``object_store="obstore"`` an ``s3://`` URL becomes an obstore-backed store.
    """
    _check_kind(object_store)
    if object_store == "obstore" and url.startswith("s3://"):
        return _obstore(url, storage_options)
    return zarr_store(url, storage_options)


def open_store(
    url: str,
    storage_options: dict[str, Any] | None = None,
    object_store: ObjectStoreKind = DEFAULT_OBJECT_STORE,
) -> zarr.Group:
    """Open an L2 store read-only (a local path or an fsspec URL such as ``s3://``).

    ``object_store`` picks the client of ``s3://`` URLs (:data:`ObjectStoreKind`).

    Raises
    ------
    LoaderStoreNotFoundError
        If there is no Zarr group at ``url``.
    """
    try:
        return zarr.open_group(_target(url, storage_options, object_store), mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError, KeyError) as exc:
        raise LoaderStoreNotFoundError(
            f"no L2 store (Zarr group) at {url!r}: {exc}; check the path or URL and, for "
            "s3://, the storage_options (endpoint_url, key, secret)"
        ) from exc


@dataclass(frozen=True, eq=False)
class StoreInfo:
    """What the loader needs to know of a store; small, and the same in every process.

    Attributes
    ----------
    url : str
        Where the store is.
    variables : tuple of str
        The variables the loader reads.
    samples : int
        Length of the ``sample`` dimension.
    unit : int
        Samples per unit: the least common multiple of the requested variables' chunk
        lengths along ``sample``.
    height, width : int
        Sample size in pixels.
    cube_id, split : numpy.ndarray
        Per sample (``split`` is empty when the store has none and none was asked for).
    valid_fraction : numpy.ndarray or None
        Per sample, when the store has it.
    shapes, dtypes : dict
        Shape of one sample and stored dtype of each requested variable.
    scales : dict
        ``scale_factor`` of each requested variable stored as integer codes
        (:mod:`cubestream.l2.encoding`); float32 variables (old stores too) are absent.
    steps : dict
        Leading ``time`` steps read of the variables read in part (their ``shapes`` say so
        too); the variables absent are read whole.
    """

    url: str
    variables: tuple[str, ...]
    samples: int
    unit: int
    height: int
    width: int
    cube_id: np.ndarray
    split: np.ndarray
    valid_fraction: np.ndarray | None
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]
    scales: dict[str, float] = field(default_factory=dict)
    steps: dict[str, int] = field(default_factory=dict)

    def region(self, name: str, rows: slice) -> tuple[slice, ...]:
        """The zarr selection of ``rows`` (along ``sample``) of ``name``, its steps only."""
        steps = self.steps.get(name)
        return (rows,) if steps is None else (rows, slice(0, steps))

    @property
    def sample_nbytes(self) -> dict[str, int]:
        """Decoded bytes of one sample of each requested variable."""
        return {
            name: int(np.prod(shape)) * np.dtype(self.dtypes[name]).itemsize
            for name, shape in self.shapes.items()
        }

    def selection(self, split: str | None, min_valid_fraction: float) -> np.ndarray:
        """Indices of the samples of ``split`` (all if None) with enough valid data."""
        keep = np.ones(self.samples, bool)
        if split is not None:
            keep &= self.split == split
        if min_valid_fraction > 0:
            if self.valid_fraction is None:
                raise LoaderStoreError(
                    f"{self.url} has no variable 'valid_fraction' (sample,), needed for "
                    f"min_valid_fraction={min_valid_fraction}; set it to 0 or rebuild the store"
                )
            keep &= self.valid_fraction >= min_valid_fraction
        return np.flatnonzero(keep)


def _dims(name: str) -> tuple[str, ...]:
    """Dimensions of ``name`` in the L2 schema (imported here: workers need not load it)."""
    from cubestream.l2.schema import VARIABLES

    return VARIABLES[name].dims


def _check_array(group: zarr.Group, name: str, url: str) -> AnyArray:
    if name not in group.array_keys():
        raise LoaderStoreError(
            f"the L2 store {url} has no variable {name!r} (it has {sorted(group.array_keys())}); "
            "ask for other variables or rebuild the store with `cubestream l2`"
        )
    array = group[name]
    assert isinstance(array, zarr.Array)
    expected = _dims(name)
    found = tuple(getattr(array.metadata, "dimension_names", None) or ())
    if found != expected:
        raise LoaderStoreError(
            f"variable {name!r} of {url} has dimensions {found or 'without names'}, "
            f"the L2 schema says {expected}"
        )
    return array


def _read_all(group: zarr.Group, name: str) -> np.ndarray:
    array = group[name]
    assert isinstance(array, zarr.Array)
    return np.asarray(array[...])


def _read_strings(group: zarr.Group, name: str) -> np.ndarray:
    """A string variable as a fixed-width unicode array (zarr 3 returns numpy StringDType)."""
    values = _read_all(group, name)
    if values.dtype.kind == "T":  # StringDType: one cast at the longest length, no Python loop
        width = int(np.strings.str_len(values).max()) if values.size else 1
        return values.astype(f"U{max(width, 1)}")
    return np.array([str(v) for v in values.tolist()], dtype=str)


def _check_steps(
    steps: Mapping[str, int], variables: Sequence[str], sizes: dict[str, int], url: str
) -> dict[str, int]:
    """``steps`` as a dict, once every entry names a requested variable over ``time``."""
    out = {}
    for name, count in steps.items():
        if name not in variables or "time" not in _dims(name)[1:2]:
            over_time = [v for v in variables if "time" in _dims(v)[1:2]]
            raise LoaderConfigError(
                f"steps={dict(steps)}: {name!r} is not a requested variable with 'time' after "
                f"'sample'; give steps of {over_time}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise LoaderConfigError(f"steps of {name!r} must be a positive int, not {count!r}")
        if count > sizes["time"]:
            raise LoaderConfigError(
                f"steps of {name!r} is {count}, but {url} has {sizes['time']} time steps; "
                f"ask for at most {sizes['time']}"
            )
        out[name] = count
    return out


def describe(
    url: str,
    variables: Sequence[str],
    storage_options: dict[str, Any] | None = None,
    *,
    need_split: bool = False,
    object_store: ObjectStoreKind = DEFAULT_OBJECT_STORE,
    steps: Mapping[str, int] | None = None,
) -> StoreInfo:
    """Open and check a store for the loader; return its :class:`StoreInfo`.

    ``steps`` reads the variables it names for their leading ``time`` steps only.

    Raises
    ------
    LoaderStoreNotFoundError
        If there is no store at ``url``.
    LoaderStoreError
        If a variable is missing or its dimensions or sizes disagree with the schema.
    LoaderConfigError
        If ``steps`` names a variable not requested, without ``time``, or more steps than the
        store has.
    """
    group = open_store(url, storage_options, object_store)
    arrays = {name: _check_array(group, name, url) for name in variables}
    _check_array(group, "cube_id", url)
    sizes: dict[str, int] = {}
    for name, array in arrays.items():
        for dim, size in zip(_dims(name), array.shape, strict=True):
            if sizes.setdefault(dim, size) != size:
                raise LoaderStoreError(
                    f"variable {name!r} of {url} has {dim}={size}, other variables {sizes[dim]}"
                )
    cube_id = _read_strings(group, "cube_id")
    samples = sizes.get("sample", len(cube_id))
    if len(cube_id) != samples:
        raise LoaderStoreError(f"{url}: cube_id has {len(cube_id)} samples, variables {samples}")
    split = np.array([], str)
    if need_split:
        _check_array(group, "split", url)
        split = _read_strings(group, "split")
    valid = None
    if "valid_fraction" in group.array_keys():
        valid = _read_all(group, "valid_fraction").astype(np.float32)
    partial = _check_steps(steps or {}, variables, sizes, url)
    shapes = {name: tuple(array.shape[1:]) for name, array in arrays.items()}
    for name, count in partial.items():
        shapes[name] = (count, *shapes[name][1:])
    unit = math.lcm(*(array.chunks[0] for array in arrays.values())) if arrays else 1
    height, width = sizes.get("y", 0), sizes.get("x", 0)
    return StoreInfo(
        url=url,
        variables=tuple(variables),
        samples=samples,
        unit=unit,
        height=height,
        width=width,
        cube_id=cube_id,
        split=split,
        valid_fraction=valid,
        shapes=shapes,
        dtypes={name: str(array.dtype) for name, array in arrays.items()},
        scales=_scales(arrays, url),
        steps=partial,
    )


def _scales(arrays: dict[str, AnyArray], url: str) -> dict[str, float]:
    """``scale_factor`` of the integer-coded variables (see :mod:`cubestream.l2.encoding`)."""
    from cubestream.l2.encoding import scale_of

    out = {}
    for name, array in arrays.items():
        if np.dtype(array.dtype).kind == "f":
            continue
        try:
            scale = scale_of(array.attrs)
        except ValueError as exc:
            raise LoaderStoreError(f"variable {name!r} of {url}: {exc}") from None
        if scale is not None:
            out[name] = scale
    return out


Empty = Callable[[tuple[int, ...], torch.dtype], torch.Tensor]
"""Makes an uninitialised tensor of a shape and dtype (see :func:`empty`)."""


def torch_dtype(dtype: str | np.dtype[Any]) -> torch.dtype:
    """The torch dtype of a numpy dtype."""
    return torch.from_numpy(np.empty(0, dtype)).dtype


def empty(shape: tuple[int, ...], dtype: torch.dtype, *, shared: bool = False) -> torch.Tensor:
    """An uninitialised CPU tensor, in shared memory when ``shared``.

    Not shared: numpy's allocation (numpy asks for transparent huge pages on Linux, which makes
    writing a fresh large array several times faster than ``torch.empty`` on some machines).
    Shared: a tensor born in shared memory, so that a DataLoader worker sends it to the main
    process without the copy ``share_memory_`` would make.
    """
    if not shared:
        itemsize = torch.empty(0, dtype=dtype).element_size()
        raw = np.empty(int(np.prod(shape)) * itemsize, np.uint8)
        return torch.from_numpy(raw).view(dtype).view(shape)
    nbytes = int(np.prod(shape)) * torch.empty(0, dtype=dtype).element_size()
    storage: torch.UntypedStorage = torch.UntypedStorage._new_shared(nbytes)
    return torch.empty(0, dtype=dtype).set_(storage, 0, shape, _strides(shape))


def _strides(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Strides (in elements) of a C-contiguous array of ``shape``."""
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


class Recycler:
    """Hands out memory for tensors, and takes back what no tensor uses any more (one process).

    A tensor made by :meth:`empty` is a view of a numpy byte array the recycler keeps. Every
    tensor over that memory (batches are views of decoded buffers) holds a reference to the
    array through its storage; once the last one is gone the array's reference count falls to
    the recycler's own, and the memory is handed out again: no new pages to fault in, which on
    some machines costs more than decoding. Free arrays beyond ``limit_bytes`` are let go.

    Parameters
    ----------
    limit_bytes : int
        The most memory kept while unused.
    """

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        self._arrays: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def __reduce__(self) -> tuple[type[Recycler], tuple[int]]:
        return type(self), (self.limit_bytes,)  # a new process starts with nothing kept

    def _free(self, key: int) -> bool:
        # references: the dict's value and getrefcount's argument; any more is a live tensor
        return sys.getrefcount(self._arrays[key]) <= 2

    def take(self, nbytes: int) -> np.ndarray:
        """A byte array of at least ``nbytes`` that no tensor uses."""
        with self._lock:
            free = [k for k in self._arrays if self._free(k)]
            fits = [k for k in free if self._arrays[k].nbytes >= nbytes]
            if fits:
                return self._arrays[min(fits, key=lambda k: self._arrays[k].nbytes)]
            kept = sum(self._arrays[k].nbytes for k in free)
            for key in sorted(free, key=lambda k: self._arrays[k].nbytes):
                if kept + nbytes <= self.limit_bytes:
                    break
                kept -= self._arrays.pop(key).nbytes
            raw = np.empty(nbytes, np.uint8)
            if kept + nbytes <= self.limit_bytes:
                self._arrays[id(raw)] = raw
            return raw

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An uninitialised tensor over recycled memory."""
        count = int(np.prod(shape))
        nbytes = count * torch.empty(0, dtype=dtype).element_size()
        raw = self.take(nbytes)
        return torch.from_numpy(raw[:nbytes]).view(dtype).view(shape)


class SampleReader:
    """Read samples of an L2 store into tensors; open the store on first use in the process.

    One read fetches and decodes every chunk the samples touch once (of a variable read for its
    leading steps, the chunks of those steps), all chunks and variables concurrently on zarr's
    thread pool. A chunk that gives one sample is decoded straight into its row of the output
    (zarr's own copy); a chunk that gives several is decoded whole and its rows copied into
    place.

    Parameters
    ----------
    info : StoreInfo
        The store and the variables to read.
    storage_options : dict, optional
        fsspec options for URLs.
    threads : int, optional
        zarr's decoding threads in this process (``threading.max_workers``); zarr's default
        when None. It only takes effect before zarr's thread pool first starts in the process.
    shared : bool
        Put the output tensors in shared memory (DataLoader workers); otherwise they come
        from a :class:`Recycler` keeping up to ``keep_bytes``.
    keep_bytes : int
        Memory the recycler may keep while unused.
    object_store : {"fsspec", "obstore"}
        The client of ``s3://`` URLs (see :func:`open_store`).
    """

    def __init__(
        self,
        info: StoreInfo,
        storage_options: dict[str, Any] | None = None,
        threads: int | None = None,
        *,
        shared: bool = False,
        keep_bytes: int = 2**30,
        object_store: ObjectStoreKind = DEFAULT_OBJECT_STORE,
    ) -> None:
        _check_kind(object_store)
        self.info = info
        self.object_store = object_store
        self.storage_options = storage_options
        self.threads = threads
        self.shared = shared
        self.recycler = Recycler(keep_bytes)
        self._arrays: dict[str, Any] | None = None
        self._pool: ThreadPoolExecutor | None = None

    def empty(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """An output tensor of this reader: shared memory, or recycled memory."""
        if self.shared:
            return empty(shape, dtype, shared=True)
        return self.recycler.empty(shape, dtype)

    def _open(self) -> dict[str, Any]:
        if self._arrays is None:
            if self.threads is not None:
                zarr.config.set({"threading.max_workers": self.threads})
            target = _target(self.info.url, self.storage_options, self.object_store)
            group = sync(zarr_async.open_group(target, mode="r"))
            self._arrays = {name: sync(group.getitem(name)) for name in self.info.variables}
        return self._arrays

    async def _read(self, samples: np.ndarray, out: Decoded) -> list[_Scatter]:
        """Decode the chunks of ``samples`` into ``out``; return the rows still to copy."""
        arrays = self._open()
        prototype = default_buffer_prototype()
        size, total = self.info.unit, self.info.samples
        units = samples // size
        order = np.argsort(units, kind="stable")
        groups = np.split(order, np.flatnonzero(np.diff(units[order])) + 1)

        async def one(name: str, rows: np.ndarray) -> _Scatter | None:
            array = arrays[name]
            if len(rows) == 1:  # one sample of the chunk: zarr copies it into place
                row, sample = int(rows[0]), int(samples[rows[0]])
                view = prototype.nd_buffer.from_numpy_array(out[name][row : row + 1].numpy())
                region = self.info.region(name, slice(sample, sample + 1))
                await array.get_orthogonal_selection(region, out=view)
                return None
            unit = int(units[rows[0]])
            chunk = slice(unit * size, min((unit + 1) * size, total))
            block = self.recycler.empty(
                (chunk.stop - chunk.start, *self.info.shapes[name]), torch_dtype(array.dtype)
            )
            view = prototype.nd_buffer.from_numpy_array(block.numpy())
            await array.get_orthogonal_selection(self.info.region(name, chunk), out=view)
            return name, rows, samples[rows] - unit * size, block

        done = await asyncio.gather(
            *(one(name, rows) for rows in groups for name in self.info.variables)
        )
        return [scatter for scatter in done if scatter is not None]

    def read(self, samples: np.ndarray) -> Decoded:
        """Read ``samples`` (any order, repeats allowed) of every variable, in that order."""
        samples = np.asarray(samples, np.int64)
        out = {
            name: self.empty((len(samples), *self.info.shapes[name]), torch_dtype(dtype))
            for name, dtype in self.info.dtypes.items()
        }
        self._open()
        # rows of chunks that give several samples are copied here, not on zarr's event loop
        for name, rows, offsets, block in sync(self._read(samples, out)):
            for row, offset in zip(rows.tolist(), offsets.tolist(), strict=True):
                out[name][row].copy_(block[offset])
        return out

    def submit(self, samples: np.ndarray) -> Future[Decoded]:
        """Start :meth:`read` in the background; the future holds its result."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(_READS, thread_name_prefix="cubestream-read")
        return self._pool.submit(self.read, samples)

    def close(self) -> None:
        """Stop the background reads (a running read completes and is dropped)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_arrays": None, "_pool": None}
