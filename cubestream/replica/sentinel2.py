"""Sentinel-2 L2A surface reflectance and scene classification of the replica world.

Rendering rules, per pixel (``g`` the greenness of the pixel's land-cover class from the daily
drivers, interpolated bilinearly in space, times a per-pixel vigour and an alpine decline):

- reflectance ``rho_b = g veg_b + (1 - g) b soil_b`` with the vegetation and soil spectra below and
  a per-pixel soil brightness ``b``; water, built-up and snow have their own spectra;
- clouds come from a seeded noise field per day whose covered fraction follows the day's
  cloudiness; thick cores are high-probability clouds (SCL 9, reflectance 90 % cloud), the rest
  medium-probability (SCL 8, 60 %); a ring around them is "unclassified" (SCL 7); some days add
  thin cirrus (SCL 10, 25 %); shadows (SCL 3, reflectance x 0.35) are the clouds shifted by the sun;
- scene classes of clear pixels: vegetation (4) where NDVI > 0.3, not vegetated (5), water (6),
  snow (11) above 4550 m; a few saturated or defective pixels (1) on split-datatake days;
  no-data (0) outside the imaged area, beyond a swath edge, and outside the part a split
  datatake covers;
- DN = round(10000 rho) + 1000 from processing baseline 04.00 on (the BOA_ADD_OFFSET of -1000),
  clipped to [1, 65535]; 0 is no-data.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from numpy.typing import NDArray
from pyproj import Transformer
from rasterio.transform import Affine
from scipy import ndimage

from cubestream.replica.drivers import GREENNESS_PARAMS
from cubestream.replica.noise import fbm
from cubestream.replica.spec import BAND_RESOLUTION, BANDS, Window
from cubestream.replica.world import Acquisition, World

__all__ = ["Rendered", "render", "write_cog"]

VEGETATION = np.array([0.03, 0.06, 0.03, 0.10, 0.30, 0.38, 0.42, 0.20, 0.09], dtype=np.float32)
SOIL = np.array([0.10, 0.14, 0.19, 0.22, 0.25, 0.27, 0.29, 0.36, 0.30], dtype=np.float32)
WATER = np.array([0.06, 0.07, 0.05, 0.04, 0.03, 0.02, 0.02, 0.01, 0.01], dtype=np.float32)
BUILT = np.array([0.12, 0.13, 0.14, 0.15, 0.16, 0.17, 0.18, 0.20, 0.19], dtype=np.float32)
SNOW = np.array([0.85, 0.84, 0.82, 0.80, 0.78, 0.76, 0.72, 0.12, 0.08], dtype=np.float32)
CLOUD = np.array([0.45, 0.45, 0.46, 0.46, 0.47, 0.47, 0.48, 0.35, 0.25], dtype=np.float32)
_CLASSES = np.array(sorted(GREENNESS_PARAMS))
_Counts = NDArray[np.unsignedinteger]
"""Digital numbers or scene classes of one asset (``uint16`` or ``uint8``)."""


@dataclass(frozen=True, kw_only=True)
class Rendered:
    """One acquisition rendered on a pixel window.

    Attributes
    ----------
    dn : ndarray of uint16, shape (band, y, x)
        Digital numbers of the nine reflectance bands (0 = no-data).
    scl : ndarray of uint8, shape (y, x)
        Scene classification.
    covered : ndarray of bool, shape (y, x)
        Pixels the item covers (False beyond a swath edge or outside a split datatake's part).
    window : Window
        Where the arrays sit on the tile's grid at ``resolution``.
    resolution : int
        Pixel size in metres.
    """

    dn: NDArray[np.uint16]
    scl: NDArray[np.uint8]
    covered: NDArray[np.bool_]
    window: Window
    resolution: int


@dataclass(frozen=True, kw_only=True)
class _PixelStatics:
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    landcover: NDArray[np.uint8]
    elevation: NDArray[np.float32]
    brightness: NDArray[np.float32]
    vigour: NDArray[np.float32]
    class_index: NDArray[np.uint8]
    rows: NDArray[np.float32]
    cols: NDArray[np.float32]


def _scaled(window: Window, resolution: int) -> Window:
    factor = 30 // resolution
    return (
        Window(
            row=window.row * factor,
            col=window.col * factor,
            height=window.height * factor,
            width=window.width * factor,
        )
        if factor > 1
        else window
    )


def _pixel_lonlat(
    world: World, tile_id: str, window: Window, resolution: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Longitude and latitude of pixel centres: exact on a 16-px lattice, bilinear in between.

    Interpolated in row strips (:func:`_strips`): the same values, without gigabyte grids of
    coordinates on a 10 m tile.
    """
    tile = world.tiles[tile_id]
    step = 16
    rows = np.arange(window.row, window.row + window.height + step, step) + 0.5
    cols = np.arange(window.col, window.col + window.width + step, step) + 0.5
    xx, yy = np.meshgrid(tile.x0 + cols * resolution, tile.y0 - rows * resolution)
    lon_c, lat_c = Transformer.from_crs(tile.epsg, 4326, always_xy=True).transform(xx, yy)
    fx = np.arange(window.width) / step
    lon = np.empty((window.height, window.width))
    lat = np.empty((window.height, window.width))
    for strip in _strips(window.height, window.width):
        fy = np.arange(strip.start, strip.stop) / step
        gy, gx = np.meshgrid(fy, fx, indexing="ij")
        lon[strip] = ndimage.map_coordinates(np.asarray(lon_c), [gy, gx], order=1)
        lat[strip] = ndimage.map_coordinates(np.asarray(lat_c), [gy, gx], order=1)
    return lon, lat


@functools.lru_cache(maxsize=4)
def _statics(world: World, tile_id: str, resolution: int) -> _PixelStatics:
    window = _scaled(world.window(tile_id), resolution)
    lon, lat = _pixel_lonlat(world, tile_id, window, resolution)
    statics = world.statics
    landcover = statics.landcover(lon, lat)
    seed = world.spec.seed
    brightness = 1.0 + 0.25 * fbm(lon, lat, (3, 0.5, 0.09), (1, 0.6, 0.4), seed + 20)
    vigour = 1.0 + 0.12 * fbm(lon, lat, (1.5, 0.2, 0.06), (1, 0.7, 0.5), seed + 21)
    grid_lon, grid_lat = world.driver_grid
    step_lon = grid_lon[1] - grid_lon[0]
    step_lat = grid_lat[1] - grid_lat[0]
    return _PixelStatics(
        lon=lon,
        lat=lat,
        landcover=landcover,
        elevation=statics.elevation(lon, lat),
        brightness=brightness.astype(np.float32),
        vigour=vigour.astype(np.float32),
        class_index=np.searchsorted(_CLASSES, landcover).astype(np.uint8),
        rows=((lat - grid_lat[0]) / step_lat).astype(np.float32),
        cols=((lon - grid_lon[0]) / step_lon).astype(np.float32),
    )


def _greenness(world: World, px: _PixelStatics, day: dt.date) -> NDArray[np.float32]:
    """Per-pixel green cover: the class's daily greenness at the pixel, vigour, alpine decline."""
    daily = world.drivers["greenness"].sel(day=np.datetime64(day)).values
    green = np.zeros(px.lon.shape, dtype=np.float32)
    for k in np.unique(px.class_index):
        sel = px.class_index == k
        green[sel] = ndimage.map_coordinates(
            daily[k], [px.rows[sel], px.cols[sel]], order=1, mode="nearest"
        )
    alpine = np.exp(-np.maximum(px.elevation - 3200, 0) / 600)
    cover: NDArray[np.floating] = np.clip(green * px.vigour * alpine, 0, 0.97)
    return cover.astype(np.float32)


def _cloudiness(world: World, px: _PixelStatics, day: dt.date) -> float:
    cloud = world.drivers["cloudiness"].sel(day=np.datetime64(day))
    mean = cloud.interp(lat=float(px.lat.mean()), lon=float(px.lon.mean())).item()
    return float(np.clip((mean - 0.25) * 1.2, 0.0, 0.95))


def _clouds(
    world: World, px: _PixelStatics, day: dt.date, resolution: int
) -> tuple[NDArray[np.uint8], NDArray[np.bool_]]:
    """Cloud classes (0 clear, 7 ring, 8 medium, 9 high, 10 cirrus) and the shadow mask."""
    salt = world.spec.seed * 7919 + day.toordinal()
    field = fbm(px.lon, px.lat, (5, 1.5, 0.4), (1, 0.5, 0.2), salt)
    fraction = _cloudiness(world, px, day)
    out = np.zeros(field.shape, dtype=np.uint8)
    if fraction > 0.005:
        level = np.quantile(field[::8, ::8], 1 - fraction)
        core = np.quantile(field[::8, ::8], 1 - 0.4 * fraction)
        out[field > level - 0.04] = 7
        out[field > level] = 8
        out[field > core] = 9
    rng = np.random.default_rng(salt)
    if rng.random() < 0.3:
        cirrus = fbm(px.lon, px.lat, (8, 2), (1, 0.4), salt + 1)
        out[(cirrus > 0.35) & (out == 0)] = 10
    shift = max(1, 600 // resolution)
    thick = np.isin(out, (8, 9))
    shadow = np.zeros_like(thick)
    shadow[shift:, : -shift or None] = thick[:-shift, shift:]
    return out, shadow & (out == 0)


def _coverage(acq: Acquisition, window: Window) -> NDArray[np.bool_]:
    """Pixels of the window this item covers (split datatakes and swath edges).

    The cut lines are placed relative to the imaged window (the whole tile unless the spec
    narrows it), so that every world, however small, shows them.
    """
    rows = ((np.arange(window.height) + 0.5) / window.height)[:, None]
    cols = ((np.arange(window.width) + 0.5) / window.width)[None, :]
    covered = np.ones((window.height, window.width), dtype=bool)
    cut = rows + 0.3 * cols - 0.6
    if acq.part == "upper":
        covered &= cut < 0
    elif acq.part == "lower":
        covered &= cut >= 0
    if acq.swath_edge:
        covered &= cols - 0.3 * rows < acq.swath_edge
    return covered


@dataclass(frozen=True)
class _Scene:
    """The per-pixel fields one acquisition's reflectance is made of."""

    green: NDArray[np.float32]
    brightness: NDArray[np.float32]
    landcover: NDArray[np.uint8]
    snowy: NDArray[np.bool_]
    shadow: NDArray[np.bool_]
    clouds: NDArray[np.uint8]


_STRIP_PIXELS = 1 << 21
"""Pixels of the row strips a band is computed in (temporaries of 16 MB, not gigabytes)."""


def _strips(height: int, width: int) -> list[slice]:
    """Row strips of about :data:`_STRIP_PIXELS` pixels covering ``height`` rows."""
    rows = max(1, _STRIP_PIXELS // max(width, 1))
    return [slice(r, min(r + rows, height)) for r in range(0, height, rows)]


def _band_dn(
    scene: _Scene, rows: slice, b: int, rng: np.random.Generator, offset: int
) -> NDArray[np.uint16]:
    """Digital numbers of band ``b`` on a strip of ``rows``.

    The noise is drawn strip after strip, band after band, so the generator's stream (and so
    every pixel) is the same whatever the strip height.
    """
    green, lc = scene.green[rows], scene.landcover[rows]
    clouds = scene.clouds[rows]
    rho = green * VEGETATION[b] + (1 - green) * scene.brightness[rows] * SOIL[b]
    rho = np.where(lc == 50, (1 - green) * BUILT[b] + green * VEGETATION[b], rho)
    rho = np.where(lc == 80, WATER[b], rho)
    rho = np.where(scene.snowy[rows], SNOW[b], rho)
    rho = np.where(scene.shadow[rows], 0.35 * rho, rho)
    alpha = np.select([clouds == 9, clouds == 8, clouds == 7, clouds == 10], [0.9, 0.6, 0.3, 0.25])
    rho = (1 - alpha) * rho + alpha * CLOUD[b]
    rho = rho + rng.normal(0, 0.0015, size=rho.shape)
    dn: NDArray[np.uint16] = np.clip(np.round(rho * 10000) + offset, 1, 65535).astype(np.uint16)
    return dn


def render(world: World, acq: Acquisition, resolution: int = 30) -> Rendered:
    """Render one acquisition on the tile's imaged window at ``resolution`` (10, 20 or 30 m)."""
    px = _statics(world, acq.tile_id, resolution)
    window = _scaled(world.window(acq.tile_id), resolution)
    green = _greenness(world, px, acq.day)
    clouds, shadow = _clouds(world, px, acq.day, resolution)
    lc = px.landcover
    snowy = (lc == 70) | (px.elevation > 4550)
    rng = np.random.default_rng([world.spec.seed, acq.day.toordinal(), resolution])
    dn = np.zeros((len(BANDS), *lc.shape), dtype=np.uint16)
    scene = _Scene(green, px.brightness, lc, snowy, shadow, clouds)
    for b in range(len(BANDS)):
        for rows in _strips(lc.shape[0], lc.shape[1]):
            dn[b, rows] = _band_dn(scene, rows, b, rng, acq.offset)
    ndvi = (dn[6].astype(np.float32) - dn[2]) / np.maximum(dn[6].astype(np.float32) + dn[2], 1)
    scl = np.where(ndvi > 0.3, 4, 5).astype(np.uint8)
    scl[lc == 80] = 6
    scl[snowy] = 11
    scl[shadow] = 3
    scl[clouds > 0] = clouds[clouds > 0]
    if acq.part != "full":
        defect = (np.arange(lc.shape[0]) % 97 == 13)[:, None] & (rng.random(lc.shape) < 0.2)
        scl[defect] = 1
        dn[:, defect] = 65535
    covered = _coverage(acq, window)
    scl[~covered] = 0
    dn[:, ~covered] = 0
    return Rendered(dn=dn, scl=scl, covered=covered, window=window, resolution=resolution)


def _aggregate(values: _Counts, factor: int, mean: bool) -> _Counts:
    """Block-aggregate a 2-D array by ``factor`` (mean of valid pixels, or nearest)."""
    if factor == 1:
        return values
    if not mean:
        return values[::factor, ::factor]
    h, w = values.shape[0] // factor, values.shape[1] // factor
    blocks = values[: h * factor, : w * factor].reshape(h, factor, w, factor).astype(np.float32)
    valid = blocks > 0
    total = (blocks * valid).sum(axis=(1, 3))
    count = valid.sum(axis=(1, 3))
    means: NDArray[np.floating] = np.where(count > 0, np.round(total / np.maximum(count, 1)), 0)
    return means.astype(values.dtype)


def write_cog(
    path: Path,
    values: _Counts,
    window: Window,
    *,
    tile_shape: tuple[int, int],
    transform: Affine,
    epsg: int,
    blocksize: int,
    tags: dict[str, str] | None = None,
) -> None:
    """Write a whole-tile single-band COG whose pixels outside ``window`` are no-data (0).

    Blocks that hold only no-data are left out of the file (GDAL ``SPARSE_OK``); every reader
    sees them as no-data, and small worlds stay small and fast to write.
    """
    full = np.zeros(tile_shape, dtype=values.dtype)
    full[window.row : window.row + window.height, window.col : window.col + window.width] = values
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    resampling = "nearest" if values.dtype == np.uint8 else "average"
    with rasterio.open(
        tmp,
        "w",
        driver="COG",
        width=tile_shape[1],
        height=tile_shape[0],
        count=1,
        dtype=values.dtype.name,
        crs=f"EPSG:{epsg}",
        transform=transform,
        nodata=0,
        compress="DEFLATE",
        predictor=2,
        blocksize=blocksize,
        overview_resampling=resampling,
        sparse_ok=True,
    ) as dst:
        dst.write(full, 1)
        if tags:
            dst.update_tags(**tags)
    tmp.replace(path)


def asset_arrays(rendered: Rendered, native: bool) -> dict[str, tuple[_Counts, Window, int]]:
    """Arrays per asset (ESA name) with their window and resolution.

    At 30 m every asset is the rendered array; in the native layout the 20 m assets are 2 x 2 means
    of the 10 m render (SCL: nearest).
    """
    out: dict[str, tuple[_Counts, Window, int]] = {}
    for b, name in enumerate((*BANDS, "SCL")):
        values = rendered.scl if name == "SCL" else rendered.dn[b]
        if not native:
            out[name] = (values, rendered.window, rendered.resolution)
            continue
        factor = BAND_RESOLUTION[name] // rendered.resolution
        win = rendered.window
        scaled = Window(
            row=win.row // factor,
            col=win.col // factor,
            height=win.height // factor,
            width=win.width // factor,
        )
        out[name] = (_aggregate(values, factor, mean=name != "SCL"), scaled, BAND_RESOLUTION[name])
    return out
