"""Strata of each box: climate zone, land cover, heterogeneity and topography, read lazily.

The data flow of :func:`box_strata`, one Sentinel-2 tile at a time (in a process pool when
``workers > 1``):

1. Plan (pure): the boxes of the tile give a grid in the tile's UTM CRS at
   :attr:`StrataSources.resolution` (120 m: 32 x 32 px per 3840 m box) covering their union.
2. Read: each raster (climate, land cover, geomorphons) is warped onto that grid through a
   rasterio ``WarpedVRT`` with nearest-neighbour resampling (class codes must not be blended),
   so GDAL fetches only the source blocks under the boxes, never the whole raster. Paths may be
   local files or ``http(s)://``, ``s3://`` and ``gs://`` URLs (read through ``/vsicurl/``,
   ``/vsis3/`` and ``/vsigs/`` with :attr:`StrataSources.gdal_env`). Opening, checking and
   warping live in the private :mod:`cubestream.sample._rasters`, the only module that touches
   raster bytes.
3. Count: the warped grid is cut into one pixel block per box and class counts are taken for all
   boxes at once with a single ``np.bincount`` (each box's codes offset by ``box * 256``).
4. Strata from the counts, per box:

   - ``climate``: the majority Koppen-Geiger class among valid pixels, as its symbol ("Aw");
   - ``landcover``: the majority land-cover class among valid non-water pixels, or the majority
     water class when the box holds no land pixel ("permanent water bodies");
   - ``heterogeneity``: the Shannon entropy (natural log) of the shares of the land-cover classes
     among valid pixels (water included as a class), binned by
     :attr:`StrataSources.entropy_bins`: ``low < 0.5 <= medium < 1.0 <= high``;
   - ``topography``: the majority topography group of the geomorphons
     (:data:`~cubestream.sample.legends.TOPOGRAPHY`: flat, convex, slope, concave);
   - ``climate_code``, ``landcover_code``, ``landcover_entropy`` and ``water_fraction`` (the
     share of water and no-data land-cover pixels);
   - ``eligible``: ``water_fraction <= max_water_fraction`` and the box has a valid climate and
     a valid topography.

Ties
    A majority tie goes to the smallest code (``np.argmax`` returns the first maximum); for the
    topography the groups are ranked flat < convex < slope < concave.
No-data
    Code 0 is no-data in every raster, and so is the raster's own no-data value (the warp maps
    it to 0), as are pixels outside the raster. A stratum without any valid pixel is named
    :data:`~cubestream.sample.legends.NO_DATA` (code 0, entropy NaN) and the box is not eligible.
Resolution
    Nearest-neighbour sampling at 120 m takes one source pixel per target pixel: with finer
    sources (ESA WorldCover is 10 m) the 1024 samples of a box estimate its class shares rather
    than count them all. The warp's approximate transformer is held to 0.001 source pixels.
"""

from __future__ import annotations

import collections
import math
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from numpy.typing import NDArray

from cubestream.errors import StrataError
from cubestream.layout import OBJECTS_DIR, strata_key
from cubestream.sample._rasters import open_raster, raster_env, read_warped
from cubestream.sample.legends import LEGENDS, NO_DATA, TOPOGRAPHY, topography_lookup

__all__ = ["BOX_COLUMNS", "STRATA_COLUMNS", "StrataSources", "box_strata", "tile_strata"]

BOX_COLUMNS = ("tile", "epsg", "x_min", "y_min", "x_max", "y_max")
"""Columns of the boxes table that the strata need."""
STRATA_COLUMNS = (
    "climate",
    "landcover",
    "heterogeneity",
    "topography",
    "climate_code",
    "landcover_code",
    "landcover_entropy",
    "water_fraction",
    "eligible",
)
"""Columns added by :func:`tile_strata` and :func:`box_strata`."""
RASTERS = ("climate", "landcover", "geomorphons")
HETEROGENEITY = ("low", "medium", "high")
_CODES = 256
_Counts = NDArray[np.int64]


@dataclass(frozen=True, kw_only=True)
class StrataSources:
    """Where the strata rasters are and how boxes are classified from them.

    Attributes
    ----------
    climate, landcover, geomorphons : str
        Path or URL (``http(s)://``, ``s3://``, ``gs://`` or a GDAL ``/vsi...`` path) of the
        single-band uint8 rasters of Koppen-Geiger codes (Beck et al. 2018), ESA WorldCover
        codes and geomorphons (1..10); 0 is no-data.
    water_classes : tuple of int
        Land-cover codes counted as water.
    max_water_fraction : float
        Boxes whose share of water and no-data land-cover pixels exceeds it are not eligible.
    entropy_bins : tuple of float
        Entropy edges between low, medium and high heterogeneity.
    resolution : float
        Pixel size (metres) of the grid the rasters are read onto; it must divide the box side.
    gdal_env : dict of str to str, optional
        GDAL configuration for remote rasters, for example
        :meth:`Endpoints.gdal_env() <cubestream.endpoints.Endpoints.gdal_env>`; AWS
        credentials in it go to a rasterio ``AWSSession``.

    Raises
    ------
    StrataError
        If an option is out of range (the rasters themselves are checked when opened).
    """

    climate: str
    landcover: str
    geomorphons: str
    water_classes: tuple[int, ...] = (80,)
    max_water_fraction: float = 0.5
    entropy_bins: tuple[float, float] = (0.5, 1.0)
    resolution: float = 120.0
    gdal_env: dict[str, str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name in RASTERS:
            object.__setattr__(self, name, _parse_location(name, getattr(self, name)))
        object.__setattr__(self, "water_classes", _parse_water(self.water_classes))
        _parse_fraction(self.max_water_fraction)
        _parse_bins(self.entropy_bins)
        if not (math.isfinite(self.resolution) and self.resolution > 0):
            raise StrataError(
                f"resolution must be a positive number of metres, not {self.resolution}"
            )

    @classmethod
    def from_replica(cls, root: Path, **options: Any) -> StrataSources:
        """The strata rasters of a local replica (``ROOT/objects/strata/<name>.tif``).

        Parameters
        ----------
        root : Path
            Replica directory.
        **options
            Other fields of :class:`StrataSources`.
        """
        objects = Path(root) / OBJECTS_DIR
        return cls(
            climate=str(objects / strata_key("climate")),
            landcover=str(objects / strata_key("landcover")),
            geomorphons=str(objects / strata_key("geomorphons")),
            **options,
        )

    def locations(self) -> dict[str, str]:
        """Path or URL of each raster, by name (``climate``, ``landcover``, ``geomorphons``)."""
        return {name: str(getattr(self, name)) for name in RASTERS}

    def env(self) -> rasterio.Env:
        """A ``rasterio.Env`` with :attr:`gdal_env` (and retries for remote reads)."""
        return raster_env(self.gdal_env)

    def check(self) -> None:
        """Open every raster and check it (exists, one uint8 band, usable CRS, legend).

        Raises
        ------
        StrataNotFoundError
            If a raster is missing or its URL cannot be reached.
        StrataError
            If a raster has no CRS, an unusable CRS, several bands or another dtype.
        """
        with self.env():
            for name, location in self.locations().items():
                open_raster(name, location).close()


def _parse_location(name: str, value: object) -> str:
    if not isinstance(value, str | os.PathLike) or not os.fspath(value):
        raise StrataError(f"the {name} raster must be a path or URL, not {value!r}")
    return str(os.fspath(value))


def _parse_water(value: Iterable[int]) -> tuple[int, ...]:
    codes = tuple(int(code) for code in value)
    if not all(0 < code < _CODES for code in codes):
        raise StrataError(f"water_classes must be land-cover codes 1..255, not {codes}")
    return codes


def _parse_fraction(value: float) -> None:
    if not 0 <= value <= 1:
        raise StrataError(f"max_water_fraction must be within [0, 1], not {value}")


def _parse_bins(value: tuple[float, float]) -> None:
    if len(value) != 2 or not 0 <= value[0] < value[1]:
        raise StrataError(f"entropy_bins must be two increasing entropies >= 0, not {value}")


# --- planning -------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class _Grid:
    """The tile's UTM grid covering a set of boxes, and where each box lies on it."""

    epsg: int
    transform: Affine
    side: int
    rows: NDArray[np.intp]
    cols: NDArray[np.intp]

    @property
    def shape(self) -> tuple[int, int]:
        """Pixel shape ``(height, width)`` of the grid."""
        return (int(self.rows.max() + 1) * self.side, int(self.cols.max() + 1) * self.side)


def _plan(boxes: pd.DataFrame, resolution: float) -> _Grid:
    """The grid at ``resolution`` holding ``boxes`` (one tile, square boxes on one lattice)."""
    tile = str(boxes["tile"].iloc[0])
    epsgs = boxes["epsg"].unique()
    if len(epsgs) != 1:
        raise StrataError(f"the boxes of tile {tile} are in several CRSs (EPSG {sorted(epsgs)})")
    x_min, y_max = boxes["x_min"].to_numpy(float), boxes["y_max"].to_numpy(float)
    size = _box_size(boxes, tile)
    side = size / resolution
    if not _integral(np.array([side])):
        raise StrataError(
            f"resolution {resolution} m does not divide the {size:g} m boxes of tile {tile}; "
            "choose a divisor (120 m gives 32 px per box)"
        )
    left, top = x_min.min(), y_max.max()
    cols, rows = (x_min - left) / size, (top - y_max) / size
    if not (_integral(cols) and _integral(rows)):
        raise StrataError(f"the boxes of tile {tile} are not on one grid of {size:g} m boxes")
    return _Grid(
        epsg=int(epsgs[0]),
        transform=Affine(resolution, 0.0, left, 0.0, -resolution, top),
        side=round(side),
        rows=np.rint(rows).astype(np.intp),
        cols=np.rint(cols).astype(np.intp),
    )


def _box_size(boxes: pd.DataFrame, tile: str) -> float:
    widths = (boxes["x_max"] - boxes["x_min"]).to_numpy(float)
    heights = (boxes["y_max"] - boxes["y_min"]).to_numpy(float)
    size = float(widths[0])
    if not (size > 0 and np.allclose(widths, size) and np.allclose(heights, size)):
        raise StrataError(f"the boxes of tile {tile} are not squares of one size")
    return size


def _integral(values: NDArray[np.float64]) -> bool:
    return bool(np.allclose(values, np.rint(values), rtol=0, atol=1e-6))


# --- reading and counting ---------------------------------------------------------------


def _read(name: str, location: str, grid: _Grid) -> NDArray[np.uint8]:
    """The raster warped onto the grid (:func:`~cubestream.sample._rasters.read_warped`)."""
    return read_warped(name, location, epsg=grid.epsg, transform=grid.transform, shape=grid.shape)


def _blocks(values: NDArray[np.uint8], grid: _Grid) -> NDArray[np.uint8]:
    """Cut the grid into one ``(side * side)`` block of pixels per box."""
    height, width = values.shape
    side = grid.side
    lattice = values.reshape(height // side, side, width // side, side)
    return lattice[grid.rows, :, grid.cols, :].reshape(len(grid.rows), side * side)


def _counts(blocks: NDArray[np.integer], size: int = _CODES) -> _Counts:
    """Count the codes ``0..size-1`` of each block with one ``bincount`` (codes offset by box)."""
    boxes = blocks.shape[0]
    offset = (np.arange(boxes, dtype=np.int64) * size)[:, None]
    flat = np.bincount((blocks + offset).ravel(), minlength=boxes * size)
    return flat.reshape(boxes, size)


def _check_codes(name: str, location: str, counts: _Counts, tile: str) -> None:
    known = np.zeros(_CODES, dtype=bool)
    known[[0, *LEGENDS[name]]] = True
    unknown = np.flatnonzero(counts[:, ~known].sum(axis=0))
    if unknown.size:
        codes = np.flatnonzero(~known)[unknown].tolist()
        raise StrataError(
            f"the {name} raster {location} holds codes {codes} in tile {tile} that are not in "
            f"the {name} legend (cubestream.sample.legends); is it the {name} raster?"
        )


# --- strata from counts ---------------------------------------------------------------------


def _majority(counts: _Counts, allowed: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Most frequent allowed code per box, the smallest on ties; 0 when none is present."""
    masked = np.where(allowed, counts, 0)
    return np.where(masked.max(axis=1) > 0, masked.argmax(axis=1), 0)


def _names(legend: Mapping[int, str], codes: NDArray[np.intp]) -> NDArray[np.object_]:
    table = np.array([legend.get(code, NO_DATA) for code in range(_CODES)], dtype=object)
    return np.asarray(table[codes], dtype=object)


def _entropy(counts: _Counts) -> NDArray[np.float64]:
    """Shannon entropy (natural log) of the valid classes of each box; NaN without any."""
    valid = counts[:, 1:].astype(np.float64)
    total = valid.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = valid / total
        terms = np.where(share > 0, -share * np.log(share), 0.0)
    return np.where(total[:, 0] > 0, terms.sum(axis=1), np.nan)


def _climate(counts: _Counts) -> dict[str, Any]:
    code = _majority(counts, np.arange(_CODES) > 0)
    return {"climate": _names(LEGENDS["climate"], code), "climate_code": code}


def _landcover(counts: _Counts, sources: StrataSources) -> dict[str, Any]:
    water = np.zeros(_CODES, dtype=bool)
    water[list(sources.water_classes)] = True
    land = ~water & (np.arange(_CODES) > 0)
    code = _majority(counts, land)
    code = np.where(code > 0, code, _majority(counts, water))
    entropy = _entropy(counts)
    level = np.digitize(np.nan_to_num(entropy), sources.entropy_bins)
    return {
        "landcover": _names(LEGENDS["landcover"], code),
        "heterogeneity": np.where(np.isnan(entropy), NO_DATA, np.array(HETEROGENEITY)[level]),
        "landcover_code": code,
        "landcover_entropy": entropy,
        "water_fraction": (counts[:, water].sum(axis=1) + counts[:, 0]) / counts.sum(axis=1),
    }


def _topography(blocks: NDArray[np.uint8]) -> NDArray[np.intp]:
    groups = np.asarray(topography_lookup(), dtype=np.uint8)[blocks]
    counts = _counts(groups, size=len(TOPOGRAPHY) + 1)
    return _majority(counts, np.arange(len(TOPOGRAPHY) + 1) > 0)


# --- entry points ---------------------------------------------------------------------------


def tile_strata(boxes: pd.DataFrame, sources: StrataSources) -> pd.DataFrame:
    """Strata of the boxes of one tile, reading only the part of each raster under them.

    Parameters
    ----------
    boxes : pandas.DataFrame
        Boxes of one tile, with the columns :data:`BOX_COLUMNS` (bounds in the tile's UTM CRS):
        squares of one size on one lattice, for example the box grid of
        :mod:`cubestream.sample.boxes`.
    sources : StrataSources
        The rasters and the classification options.

    Returns
    -------
    pandas.DataFrame
        The columns :data:`STRATA_COLUMNS`, indexed like ``boxes``.

    Raises
    ------
    StrataError
        If a column is missing, the boxes span several CRSs or are not on one lattice that the
        resolution divides, or a raster is unusable (:meth:`StrataSources.check`) or holds codes
        outside its legend.
    """
    _check_columns(boxes)
    if boxes.empty:
        return _empty(boxes.index)
    grid = _plan(boxes, sources.resolution)
    tile = str(boxes["tile"].iloc[0])
    locations = sources.locations()
    with sources.env():
        blocks = {name: _blocks(_read(name, path, grid), grid) for name, path in locations.items()}
    counts = {name: _counts(blocks[name]) for name in ("climate", "landcover")}
    for name, values in {**counts, "geomorphons": _counts(blocks["geomorphons"])}.items():
        _check_codes(name, locations[name], values, tile)
    frame = pd.DataFrame(
        {**_climate(counts["climate"]), **_landcover(counts["landcover"], sources)},
        index=boxes.index,
    )
    group = _topography(blocks["geomorphons"])
    frame["topography"] = np.array([NO_DATA, *TOPOGRAPHY], dtype=object)[group]
    frame["eligible"] = (
        (frame["water_fraction"] <= sources.max_water_fraction)
        & (frame["climate_code"] > 0)
        & (group > 0)
    )
    return frame[list(STRATA_COLUMNS)]


def box_strata(boxes: pd.DataFrame, sources: StrataSources, workers: int = 1) -> pd.DataFrame:
    """The boxes with their strata, one :func:`tile_strata` per tile.

    Parameters
    ----------
    boxes : pandas.DataFrame
        Boxes of any number of tiles, with the columns :data:`BOX_COLUMNS`.
    sources : StrataSources
        The rasters and the classification options; they are checked once before any tile.
    workers : int
        Processes reading tiles at once ('spawn' context); 1 reads in this process. Each worker
        holds one tile's rasters at a time, and at most ``2 * workers`` tiles wait for one.

    Returns
    -------
    pandas.DataFrame
        ``boxes`` (same rows, order and index) with the columns :data:`STRATA_COLUMNS` added
        (replacing any of that name).

    Raises
    ------
    StrataError
        As :func:`tile_strata`, or if ``workers`` is below 1.
    """
    if workers < 1:
        raise StrataError(f"workers must be at least 1, not {workers}")
    _check_columns(boxes)
    sources.check()
    positions = list(boxes.groupby("tile", sort=False, dropna=False).indices.values())
    tiles = (boxes.iloc[where][list(BOX_COLUMNS)] for where in positions)
    results = list(_map_tiles(tiles, sources, workers))
    if results:
        strata = pd.concat(results, ignore_index=True)
        strata = strata.iloc[np.argsort(np.concatenate(positions))]  # back to the input order
    else:
        strata = _empty(boxes.index)
    kept = boxes.drop(columns=list(STRATA_COLUMNS), errors="ignore")
    return kept.assign(**{name: strata[name].to_numpy() for name in STRATA_COLUMNS})


def _map_tiles(
    tiles: Iterator[pd.DataFrame], sources: StrataSources, workers: int
) -> Iterator[pd.DataFrame]:
    """``tile_strata`` of each tile in order, in a pool of ``workers`` processes when > 1."""
    if workers == 1:
        yield from (tile_strata(frame, sources) for frame in tiles)
        return
    context = multiprocessing.get_context("spawn")
    pending: collections.deque[Future[pd.DataFrame]] = collections.deque()
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        try:
            for frame in tiles:
                pending.append(pool.submit(tile_strata, frame, sources))
                if len(pending) >= 2 * workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:  # on an error, the tiles not started yet are dropped
            for future in pending:
                future.cancel()


def _check_columns(boxes: pd.DataFrame) -> None:
    missing = [name for name in BOX_COLUMNS if name not in boxes.columns]
    if missing:
        raise StrataError(
            f"the boxes lack the columns {missing}; they need {list(BOX_COLUMNS)} "
            "(the box grid of cubestream.sample.boxes has them)"
        )


def _empty(index: pd.Index) -> pd.DataFrame:
    dtypes = {"climate_code": "int64", "landcover_code": "int64", "eligible": "bool"}
    dtypes |= {"landcover_entropy": "float64", "water_fraction": "float64"}
    return pd.DataFrame(
        {name: pd.Series(index=index, dtype=dtypes.get(name, "object")) for name in STRATA_COLUMNS}
    )
