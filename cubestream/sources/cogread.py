"""Windows of many single-band COGs on one target grid, read straight into one array.

:func:`read_windows` is the level-1 build's hot path: every ``(item, asset)`` href of a
:class:`WindowRead` is opened once, its window (or only its parts) read with plain rasterio into
its slice of one preallocated array, and closed. The reads run on a thread pool (GDAL
decodes with the GIL released), so one read chunk keeps every core decoding. How an asset is
read depends on how its pixels lie on the target grid:

- on the grid itself (same CRS, transform and size): its blocks under the regions, each decoded
  once (:mod:`cubestream.sources.blockread`), copied into place;
- nested in it (the 10 m / 20 m assets of a Sentinel-2 tile on its 30 m grid): the same native
  blocks, each region averaged (or, for classes, sampled at the centre) in integer arithmetic
  (:mod:`cubestream.sources.aggregate`);
- anything else, or with ``warp=True``: the whole window through a
  :class:`~rasterio.vrt.WarpedVRT` of the target grid, the warp stackstac applies.

Reading only the regions (the boxes of a level-1 task) leaves the blocks under no box unread,
and aggregating each region on its own keeps the arithmetic in the CPU cache. On the 35 blocks
under 64 boxes of one 10 m asset of the native tile replica: 0.206 s of CPU to read the boxes
this way against 0.204 s to decode the blocks alone; 0.22 s with the averaging of each box,
against 0.38 s averaging the span of the boxes at once.

The GDAL options (:func:`cubestream.sources.config.gdal_options`) are set once per reading
thread, which takes the next window until none is left inside one ``rasterio.Env``; hrefs that
need a token are signed at open (:mod:`cubestream.sources.signing`). A failed open or read raises
:class:`~cubestream.errors.AssetReadError` naming the href, and the other threads stop.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from cubestream.errors import AssetNotFoundError, AssetReadError
from cubestream.sources.aggregate import Aggregation, aggregate, plan_aggregation
from cubestream.sources.blockread import read_blockwise
from cubestream.sources.config import StaticAWSSession, gdal_options
from cubestream.sources.signing import needs_signing, sign_href

__all__ = [
    "READ_THREADS_ENV",
    "ReadBuffer",
    "TargetGrid",
    "WindowRead",
    "read_threads",
    "read_windows",
]

READ_THREADS_ENV = "CUBESTREAM_READ_THREADS"
"""Environment variable overriding the reading threads of one read chunk."""

_MISSING = "No such file or directory"
"""What GDAL says of a missing file (local, or an object store's 404)."""

PostRead = Callable[[int, int, np.ndarray], None]
"""Called in the reading thread after each read: ``(item, asset, values)``; may edit in place."""


@dataclass(frozen=True, kw_only=True)
class TargetGrid:
    """The grid the windows are read on.

    Attributes
    ----------
    epsg : int
        Its CRS.
    transform : tuple of float
        Its affine transform ``(a, b, c, d, e, f)``.
    width, height : int
        Its size in pixels.
    """

    epsg: int
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int

    def affine(self) -> Affine:
        """The transform as an :class:`~rasterio.transform.Affine`."""
        return Affine(*self.transform)


@dataclass(frozen=True, kw_only=True)
class WindowRead:
    """One window of many single-band assets on a :class:`TargetGrid`.

    Attributes
    ----------
    hrefs : tuple of tuple of str
        ``hrefs[item][asset]``: the COG of each item and asset.
    grid : TargetGrid
        The grid the window lies on.
    window : tuple of int
        ``(row, col, height, width)`` on the grid.
    resampling : str
        :class:`~rasterio.enums.Resampling` name for assets off the grid (``average``,
        ``nearest``).
    dtype : str
        Dtype of the result.
    warp : bool
        Read every asset off the grid through GDAL's warper, also those whose pixels nest in
        the grid's (which are otherwise read plainly and averaged:
        :mod:`cubestream.sources.aggregate`); the pixels then equal stackstac's to the bit.
    parts : tuple of tuple of int
        ``(row, col, height, width)`` inside the window, all of one size: read only these (the
        boxes a level-1 task writes), each COG block under them once
        (:mod:`cubestream.sources.blockread`), into a result of one ``(height, width)`` array
        per part, in their order. Empty (the default): the whole window.
    """

    hrefs: tuple[tuple[str, ...], ...]
    grid: TargetGrid
    window: tuple[int, int, int, int]
    resampling: str
    dtype: str
    warp: bool = False
    parts: tuple[tuple[int, int, int, int], ...] = ()

    def __post_init__(self) -> None:
        sizes = {(height, width) for _, _, height, width in self.parts}
        if len(sizes) > 1:
            raise ValueError(f"the parts of a window read are of one size, not {sorted(sizes)}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the result: ``(item, asset, [part,] height, width)``."""
        assets = len(self.hrefs[0]) if self.hrefs else 0
        return (len(self.hrefs), assets, *self._layout())

    def _layout(self) -> tuple[int, ...]:
        if not self.parts:
            return self.window[2], self.window[3]
        return len(self.parts), self.parts[0][2], self.parts[0][3]

    def regions(self) -> tuple[tuple[int, int, int, int], ...]:
        """What is read, ``(row, col, height, width)`` inside the window, in reading order.

        The :attr:`parts` sorted by row, or the whole window when there are none.
        """
        return tuple(sorted(self.parts)) or ((0, 0, self.window[2], self.window[3]),)

    @property
    def pixels(self) -> int:
        """Pixels read of each asset of each item (on the grid)."""
        return sum(height * width for _, _, height, width in self.regions())


@dataclass
class ReadBuffer:
    """Memory a thread reads its chunks into, grown to the largest chunk so far and reused.

    Building 676 cubes of the native tile replica, the read chunks of a task are up to 330 MB,
    and each fresh one was faulted in and zeroed by the kernel page by page (``clear_page``:
    7.7 % of the build's CPU samples, 2 worker processes, ``perf``).
    """

    memory: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint8))

    def take(self, shape: tuple[int, ...], dtype: str) -> np.ndarray:
        """A C-contiguous array of ``shape`` and ``dtype`` over the buffer; its values are stale.

        The array is valid until the next call: one chunk at a time per buffer.
        """
        kind = np.dtype(dtype)
        size = int(np.prod(shape)) * kind.itemsize
        if self.memory.size < size:
            self.memory = np.empty(0, dtype=np.uint8)  # the old one freed before the new one
            self.memory = np.empty(size, dtype=np.uint8)
        return self.memory[:size].view(kind).reshape(shape)


def read_threads(default: int | None = None) -> int:
    """Threads reading one chunk: ``CUBESTREAM_READ_THREADS``, else ``default``, else the cores."""
    value = os.environ.get(READ_THREADS_ENV)
    if value:
        return max(1, int(value))
    return max(1, default or os.cpu_count() or 1)


def _env(options: dict[str, str]) -> rasterio.Env:
    typed: dict[str, Any] = {k: int(v) if v.isdigit() else v for k, v in options.items()}
    if StaticAWSSession.hascreds(typed):
        session = StaticAWSSession(options)
        for key in session.credentials:
            typed.pop(key, None)
        return rasterio.Env(session=session, **typed)
    return rasterio.Env(**typed)


def _on_grid(src: Any, grid: TargetGrid) -> bool:
    return bool(
        src.crs is not None
        and src.crs.to_epsg() == grid.epsg
        and src.transform == grid.affine()
        and (src.width, src.height) == (grid.width, grid.height)
    )


def _aggregation(src: Any, read: WindowRead) -> Aggregation | None:
    """How ``src`` nests in the target grid, if a plain read and a block mean replace the warp.

    Only for the same CRS, a grid that nests (:func:`plan_aggregation`), a no-data value (the
    warp otherwise masks with an alpha band) and a resampling the aggregation computes.
    """
    if read.warp or src.nodata is None or src.crs is None:
        return None
    if read.resampling not in ("average", "nearest") or src.crs.to_epsg() != read.grid.epsg:
        return None
    plan = plan_aggregation(src.transform, read.grid.affine())
    if plan is None or (read.resampling == "nearest" and plan.block % 2 == 0):
        return None
    return plan


def _read_one(src: Any, read: WindowRead, out: np.ndarray) -> None:
    """Read ``read``'s regions of the open ``src`` into ``out`` (one asset's result)."""
    if _on_grid(src, read.grid):
        _read_regions(src, read, out, None)
        return
    plan = _aggregation(src, read)
    if plan is not None:
        _read_regions(src, read, out, plan)
        return
    _read_warped(src, read, out)


def _destinations(read: WindowRead, out: np.ndarray) -> list[np.ndarray]:
    """Where each of ``read.regions()`` goes in ``out`` (one asset's result)."""
    if not read.parts:
        return [out]
    order = sorted(range(len(read.parts)), key=read.parts.__getitem__)  # as regions()
    return [out[k] for k in order]


def _read_regions(src: Any, read: WindowRead, out: np.ndarray, plan: Aggregation | None) -> None:
    """Read ``read.regions()`` block by block into ``out``; aggregated by ``plan`` when given."""
    row, col, _, _ = read.window
    regions = read.regions()
    targets = [(row + r, col + c, h, w) for r, c, h, w in regions]
    sources = [
        Window(c, r, w, h) if plan is None else plan.source_window(r, c, h, w)
        for r, c, h, w in targets
    ]
    nodata = 0 if src.nodata is None else src.nodata
    values = read_blockwise(src, sources)
    for dest, target, source in zip(_destinations(read, out), targets, sources, strict=True):
        native = next(values)
        if plan is not None:
            offset = plan.offset(target[0], target[1], source)
            native = aggregate(native, plan, offset, target[2:], read.resampling, nodata)
        dest[...] = native


def _read_warped(src: Any, read: WindowRead, out: np.ndarray) -> None:
    """Read the whole window of ``src`` through GDAL's warper onto the grid; cut the parts."""
    row, col, height, width = read.window
    window = Window(col, row, width, height)
    alpha = src.nodata is None
    with WarpedVRT(
        src,
        crs=f"EPSG:{read.grid.epsg}",
        transform=read.grid.affine(),
        width=read.grid.width,
        height=read.grid.height,
        resampling=Resampling[read.resampling],
        add_alpha=alpha,
    ) as vrt:
        if alpha:
            values = vrt.read((1, 2), window=window, out_dtype=out.dtype)
            warped = np.where(values[1] == 0, 0, values[0])
        else:
            warped = vrt.read(1, window=window, out_dtype=out.dtype)
    for dest, (r, c, h, w) in zip(_destinations(read, out), read.regions(), strict=True):
        dest[...] = warped[r : r + h, c : c + w]


def _read_asset(href: str, read: WindowRead, out: np.ndarray) -> None:
    """Read ``href``'s window into ``out``, inside the calling thread's GDAL environment."""
    url = sign_href(href) if needs_signing(href) else href
    try:
        with rasterio.open(url, sharing=False) as src:
            _read_one(src, read, out)
    except (FileNotFoundError, rasterio.errors.RasterioError) as exc:
        if isinstance(exc, FileNotFoundError) or _MISSING in str(exc):
            raise AssetNotFoundError(
                f"the COG {href} does not exist ({exc}); check the item's href and rerun the build"
            ) from exc
        raise AssetReadError(
            f"reading window {read.window} of the COG {href} failed: {exc}; check that the "
            "object is a readable GeoTIFF (rerun the build to retry the tile)"
        ) from exc


def read_windows(
    read: WindowRead,
    options: dict[str, str] | None = None,
    *,
    threads: int | None = None,
    post: PostRead | None = None,
    pool: ThreadPoolExecutor | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Read every asset's window of ``read`` into one ``(item, asset, y, x)`` array.

    Parameters
    ----------
    read : WindowRead
        What to read.
    options : dict, optional
        Extra GDAL options on top of :func:`~cubestream.sources.config.gdal_options`.
    threads : int, optional
        Reading threads (:func:`read_threads` by default), on ``pool`` when it is given (then
        at most its size).
    post : callable, optional
        ``post(item, asset, values)`` run in the reading thread after each read.
    pool : ThreadPoolExecutor, optional
        A pool to read on (the caller's, to reuse it for its own work).
    out : ndarray, optional
        Where to read: C-contiguous, of :attr:`WindowRead.shape` and ``read.dtype`` (a buffer
        reused from read to read; every element is written). A new array by default.

    Returns
    -------
    ndarray
        :attr:`WindowRead.shape`: the window of every item and asset, or each of its parts;
        0 where an asset has no data.
    """
    resolved = gdal_options(options)
    out = _output(read, out)
    jobs = iter([(i, a) for i in range(out.shape[0]) for a in range(out.shape[1])])
    lock, failed = threading.Lock(), threading.Event()

    def reader() -> None:
        """Take the next ``(item, asset)`` until none is left, all in one GDAL environment."""
        with _env(resolved):
            while not failed.is_set():
                with lock:
                    index = next(jobs, None)
                if index is None:
                    return
                item, asset = index
                try:
                    _read_asset(read.hrefs[item][asset], read, out[item, asset])
                    if post is not None:
                        post(item, asset, out[item, asset])
                except BaseException:
                    failed.set()  # the other readers stop at their next window
                    raise

    workers = read_threads(threads)
    if pool is not None:
        _run(pool, reader, workers)
        return out
    with ThreadPoolExecutor(workers, thread_name_prefix="cogread") as own:
        _run(own, reader, workers)
    return out


def _output(read: WindowRead, out: np.ndarray | None) -> np.ndarray:
    """``out`` if it fits ``read`` (else a ValueError), or a new array."""
    dtype = np.dtype(read.dtype)
    if out is None:
        return np.empty(read.shape, dtype=dtype)
    if out.shape != read.shape or out.dtype != dtype or not out.flags.c_contiguous:
        raise ValueError(
            f"the output of a window read is a C-contiguous {read.shape} {dtype} array, "
            f"not a {out.shape} {out.dtype} one"
        )
    return out


def _run(pool: ThreadPoolExecutor, reader: Callable[[], None], workers: int) -> None:
    """Run ``workers`` copies of ``reader`` on ``pool``; raise the first error once all ended."""
    for future in [pool.submit(reader) for _ in range(workers)]:
        future.result()
