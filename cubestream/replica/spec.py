"""What a replica world holds: tiles, dates, resolution and the awkward cases of the archive."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from cubestream.errors import ReplicaError, ReplicaNotFoundError
from cubestream.layout import BUCKET
from cubestream.sources.providers import PROVIDERS

__all__ = [
    "BANDS",
    "BUCKET",
    "CATALOGUES",
    "PRESETS",
    "PresetName",
    "ReplicaSpec",
    "Window",
    "load_spec",
    "preset",
]

BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12")
"""Reflectance bands of the replica, in ESA names (SCL is written beside them)."""
BAND_RESOLUTION = {
    "B02": 10,
    "B03": 10,
    "B04": 10,
    "B05": 20,
    "B06": 20,
    "B07": 20,
    "B8A": 20,
    "B11": 20,
    "B12": 20,
    "SCL": 20,
}
"""Native resolution of each asset in the AWS archive (metres)."""
SPEC_FILE = "replica.json"
CATALOGUES = tuple(name for name, catalogue in PROVIDERS.items() if catalogue.replica is not None)
"""The real catalogues whose STAC item schema the replica writes: those naming a replica writer."""


@dataclass(frozen=True, kw_only=True)
class Window:
    """A pixel window ``(row, col, height, width)`` on a tile's 30 m grid."""

    row: int
    col: int
    height: int
    width: int

    def __post_init__(self) -> None:
        if min(self.row, self.col) < 0 or min(self.height, self.width) <= 0:
            raise ReplicaError(f"invalid window {self}: offsets >= 0 and sizes > 0 are required")


@dataclass(frozen=True, kw_only=True)
class ReplicaSpec:
    """Everything that defines a replica world; the same spec and seed give the same bytes.

    Attributes
    ----------
    tiles : tuple of str
        Sentinel-2 tile ids (official grid).
    start, end : datetime.date
        First and last day of the archive (inclusive).
    revisit_days : int
        Days between Sentinel-2 acquisitions of a tile (5 for S2A + S2B).
    resolution : {"30m", "native"}
        ``"30m"``: every band at 30 m (3660 px), like the 12 TB on-disk dataset; ``"native"``:
        10 m / 20 m bands as in the AWS archive.
    data_windows : dict of str to Window
        Per tile, the part of the tile the satellite imaged; pixels outside are no-data, as in tiles
        at a swath edge. Tiles not listed are imaged in full. Small worlds use this to stay cheap.
    missing_dates : int
        Number of acquisition dates dropped per tile (different dates per tile).
    split_datatakes : int
        Number of dates per tile delivered as two items that each cover part of the tile.
    baseline_change : datetime.date
        Day processing baseline 04.00 starts: from then on DN = 10000 * reflectance + 1000.
    mislabelled_offsets : int
        Number of acquisition dates per tile (of baseline 04.00 or later) whose STAC items carry
        a wrong offset label, the way the real catalogues get it wrong (see
        :mod:`cubestream.replica.catalogues`); both items of a split datatake day alike.
    catalogue : {"earth-search", "earth-search-c1", "planetary-computer", "cdse"}
        Item schema of ``stac/items.ndjson`` (every schema is also written under
        ``stac/catalogues/``).
    blocksize : int
        COG internal tile size in pixels.
    smap_margin_cells, era5_margin_deg : int, float
        How far the SMAP and ERA5 crops reach beyond the tiles.
    era5_step_hours : int
        ERA5 time step (1 = hourly, 3 = three-hourly).
    era5_resolution : float
        ERA5 grid spacing in degrees.
    seed : int
        Seed of every random field of the world.
    """

    tiles: tuple[str, ...] = ("37MBU",)
    start: dt.date = dt.date(2021, 11, 1)
    end: dt.date = dt.date(2022, 3, 31)
    revisit_days: int = 5
    resolution: Literal["30m", "native"] = "30m"
    data_windows: dict[str, Window] = field(default_factory=dict)
    missing_dates: int = 1
    split_datatakes: int = 1
    baseline_change: dt.date = dt.date(2022, 1, 25)
    mislabelled_offsets: int = 1
    catalogue: str = "earth-search"
    blocksize: int = 1024
    smap_margin_cells: int = 2
    era5_margin_deg: float = 0.5
    era5_step_hours: int = 1
    era5_resolution: float = 0.1
    seed: int = 42

    def __post_init__(self) -> None:
        if not self.tiles:
            raise ReplicaError("a replica needs at least one tile")
        if self.end < self.start:
            raise ReplicaError(f"end {self.end} is before start {self.start}")
        if self.resolution not in ("30m", "native"):
            raise ReplicaError(f"resolution must be '30m' or 'native', not {self.resolution!r}")
        if self.revisit_days < 1:
            raise ReplicaError("revisit_days must be at least 1")
        if self.mislabelled_offsets < 0:
            raise ReplicaError("mislabelled_offsets must be 0 or more")
        if self.catalogue not in CATALOGUES:
            raise ReplicaError(
                f"unknown catalogue {self.catalogue!r}; choose one of {', '.join(CATALOGUES)}"
            )
        if self.era5_step_hours not in (1, 3):
            raise ReplicaError("era5_step_hours must be 1 (hourly) or 3 (three-hourly)")
        unknown = set(self.data_windows) - set(self.tiles)
        if unknown:
            raise ReplicaError(f"data_windows name tiles that are not in the world: {unknown}")
        for tile_id, win in self.data_windows.items():
            if win.row + win.height > 3660 or win.col + win.width > 3660:
                raise ReplicaError(f"window {win} of {tile_id} reaches past the 3660 px tile")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form of the spec."""
        out = asdict(self)
        for key in ("start", "end", "baseline_change"):
            out[key] = getattr(self, key).isoformat()
        out["tiles"] = list(self.tiles)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReplicaSpec:
        """Inverse of :meth:`to_dict`."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ReplicaError(f"unknown replica spec fields: {sorted(unknown)}")
        kwargs = dict(data)
        for key in ("start", "end", "baseline_change"):
            if key in kwargs:
                kwargs[key] = dt.date.fromisoformat(kwargs[key])
        if "tiles" in kwargs:
            kwargs["tiles"] = tuple(kwargs["tiles"])
        if "data_windows" in kwargs:
            kwargs["data_windows"] = {t: Window(**w) for t, w in kwargs["data_windows"].items()}
        return cls(**kwargs)


def _box_window(row: int, col: int, rows: int, cols: int) -> Window:
    """Window covering ``rows x cols`` minicube boxes (128 px) from box ``(row, col)``."""
    return Window(row=row * 128, col=col * 128, height=rows * 128, width=cols * 128)


PresetName = Literal["tiny", "small", "pipeline", "tile"]
"""The names of :data:`PRESETS`, as a type (a ``--preset`` flag's choices)."""

PRESETS: dict[str, ReplicaSpec] = {
    # tests: one tile imaged over 4 x 4 boxes, five months
    "tiny": ReplicaSpec(
        tiles=("37MBU",),
        start=dt.date(2021, 12, 1),
        end=dt.date(2022, 2, 28),
        data_windows={"37MBU": _box_window(12, 12, 4, 4)},
        smap_margin_cells=1,
        era5_margin_deg=0.3,
    ),
    # the demo: two neighbouring tiles (they overlap by 9.8 km) over two full years
    "small": ReplicaSpec(
        tiles=("37MBU", "37MCU"),
        start=dt.date(2020, 1, 1),
        end=dt.date(2021, 12, 31),
        revisit_days=10,
        missing_dates=2,
        split_datatakes=2,
        data_windows={
            "37MBU": _box_window(10, 18, 6, 10),
            "37MCU": _box_window(10, 0, 6, 8),
        },
    ),
    # `cubestream run cluster/recipes/replica.yaml` and its test: the fewest bytes every stage
    # can use (one tile, 4 x 4 boxes, two full years for L2, a sparse revisit)
    "pipeline": ReplicaSpec(
        tiles=("37MBU",),
        start=dt.date(2020, 1, 1),
        end=dt.date(2021, 12, 31),
        revisit_days=20,
        missing_dates=0,
        split_datatakes=1,
        data_windows={"37MBU": _box_window(12, 12, 4, 4)},
        smap_margin_cells=1,
        era5_margin_deg=0.3,
        era5_step_hours=3,
    ),
    # one tile fully imaged: the size of one tile of the 12 TB workload, for benchmarks
    "tile": ReplicaSpec(
        tiles=("37MBU",),
        start=dt.date(2021, 1, 1),
        end=dt.date(2021, 3, 31),
    ),
}


def preset(name: str) -> ReplicaSpec:
    """Return the named preset spec (``tiny``, ``small``, ``pipeline`` or ``tile``)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ReplicaError(
            f"unknown replica preset {name!r}; choose one of {sorted(PRESETS)}"
        ) from None


def load_spec(root: Path) -> ReplicaSpec:
    """Read the spec a replica directory was created with.

    Raises
    ------
    ReplicaNotFoundError
        If ``root`` is missing, empty or holds no complete replica.
    """
    root = Path(root)
    if not root.is_dir():
        raise ReplicaNotFoundError(
            f"replica directory {root} does not exist; create one with "
            f"`cubestream replica create {root}`"
        )
    path = root / SPEC_FILE
    if not path.exists():
        what = "is empty" if not any(root.iterdir()) else f"has no {SPEC_FILE}"
        raise ReplicaNotFoundError(
            f"replica directory {root} {what}: it is not a complete replica; "
            f"(re)create it with `cubestream replica create {root}`"
        )
    try:
        manifest = json.loads(path.read_text())
        return ReplicaSpec.from_dict(manifest["spec"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ReplicaNotFoundError(f"{path} is corrupt ({exc}); recreate the replica") from exc
