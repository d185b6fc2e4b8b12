"""HDF5 files opened for reading: local paths with h5py, URLs over fsspec, fetched ahead.

h5py serialises all HDF5 work in one lock, so threads cannot decode granules side by side; what
they can do is the network round trips. :func:`prefetched` opens the next remote files in a
small thread pool (each fetches its first block, the HDF5 header, or the whole of a small file)
while the caller decodes the current one with :func:`open_hdf5`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import h5py

from cubestream.config import RetryPolicy, transient
from cubestream.errors import AssetNotFoundError, AssetReadError
from cubestream.storage import filesystem

__all__ = ["BLOCK_SIZE", "named_errors", "open_hdf5", "prefetched"]

BLOCK_SIZE = 128 * 1024
"""fsspec block size for remote files: HDF5 reads are small and scattered."""


@contextmanager
def named_errors(url: str, what: str = "HDF5 file") -> Iterator[None]:
    """Turn the errors of reading ``url`` into errors naming it (``what`` says what it is)."""
    try:
        yield
    except AssetReadError:
        raise
    except FileNotFoundError as exc:
        raise AssetNotFoundError(f"{what} not found: {url}") from exc
    except OSError as exc:
        raise AssetReadError(f"cannot read the {what} {url}: {exc}") from exc


def _is_local(url: str) -> bool:
    return "://" not in url or url.startswith("file://")


def _fetch(url: str, storage_options: dict[str, Any] | None, retry: RetryPolicy) -> Any:
    """Open a remote file with fsspec and fetch its first block (runs in a thread), retried."""

    def fetch() -> Any:
        fs, path = filesystem(url, storage_options)
        raw = fs.open(path, "rb", block_size=BLOCK_SIZE, cache_type="blockcache")
        raw.read(1)
        raw.seek(0)
        return raw

    return retry.call(fetch, transient, url)


def prefetched(
    urls: Sequence[str],
    storage_options: dict[str, Any] | None,
    ahead: int,
    retry: RetryPolicy | None = None,
) -> Iterator[tuple[str, Future[Any] | None]]:
    """Yield each url with the future of its opened remote file, fetching ``ahead`` at a time.

    Parameters
    ----------
    urls : sequence of str
        Local paths (yielded with ``None``) or fsspec URLs.
    storage_options : dict, optional
        fsspec options for the URLs.
    ahead : int
        Files opened ahead, in as many threads; 0 opens each when it is yielded.
    retry : RetryPolicy, optional
        Retries of an open that fails on throttling, a 5xx or a dropped connection (default:
        :meth:`RetryPolicy.from_config`).

    Yields
    ------
    tuple of str and Future or None
        The url and, for URLs, the future of its open fsspec file (pass it to
        :func:`open_hdf5`); files not consumed are closed when the generator closes.
    """
    if all(_is_local(u) for u in urls):
        yield from ((u, None) for u in urls)
        return
    policy = retry or RetryPolicy.from_config()
    if ahead < 1:
        yield from ((u, _done(_fetch, u, storage_options, policy)) for u in urls)
        return
    with ThreadPoolExecutor(ahead, thread_name_prefix="smap-prefetch") as pool:
        pending: deque[tuple[str, Future[Any]]] = deque()
        try:
            for url in urls:
                pending.append((url, pool.submit(_fetch, url, storage_options, policy)))
                if len(pending) > ahead:
                    yield pending.popleft()
            while pending:
                yield pending.popleft()
        finally:
            for _, future in pending:
                future.add_done_callback(_close_result)


def _done(fn: Callable[..., Any], *args: Any) -> Future[Any]:
    """A future of ``fn(*args)`` computed now, in this thread."""
    future: Future[Any] = Future()
    try:
        future.set_result(fn(*args))
    except Exception as exc:
        future.set_exception(exc)
    return future


def _close_result(future: Future[Any]) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


@contextmanager
def open_hdf5(
    url: str, fetched: Future[Any] | None, what: str = "HDF5 file"
) -> Iterator[h5py.File]:
    """Open a file with h5py: directly for a local path, over its fetched fsspec file for a URL."""
    with named_errors(url, what):
        if fetched is None:
            with h5py.File(url.removeprefix("file://"), "r") as f:
                yield f
            return
        with fetched.result() as raw, h5py.File(raw, "r") as f:
            yield f
