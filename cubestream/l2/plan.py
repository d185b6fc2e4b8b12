"""Plan the level-2 build: from the L1 store's metadata and the locations table to samples.

Nothing here reads a pixel. :func:`plan_samples` checks every tile group of the L1 store,
matches its cubes with the locations table (which holds the ``split`` of each cube: the L1
store keeps the cubes' coordinates but not their split), draws each cube's windows
(:mod:`cubestream.l2.windows`) and returns one :class:`SampleSpec` per window, in the order of
the store (tile, cube id, start), with everything left out and why.

What is checked, and what happens
    =============================================  =========================================
    case                                           outcome
    =============================================  =========================================
    no L1 store, or no tile group in it            :class:`~cubestream.errors.L2InputError`
    locations table without ``cube_id``/``split``  L2InputError
    or with splits other than train/val/test
    a tile group not marked ``complete``           the tile is skipped and reported (finish
                                                   it with ``cubestream l1``)
    a complete group missing a variable (``s2``,   L2InputError naming the tile, the
    ``scl``, ``dem``, ``landcover``,               variable and the ``cubestream l1`` option
    ``geomorphons``, ``era5``/``smap`` for the     that makes it
    weather asked for), or a band
    ``--start`` after ``--end``                    L2InputError (empty time range)
    a tile whose record holds no full year         its cubes are skipped and reported
    long enough for a window
    a cube of L1 absent from the locations table   skipped and reported
    a cube of the table absent from L1             reported
    no window at all to build                      L2InputError, with the reasons counted
    =============================================  =========================================

Test tracks: each sample carries the ``track`` of GreenEarthNet's protocol. The locations table
gives the spatial part (``iid`` or ``ood_space`` for test cubes, :mod:`cubestream.sample.splits`;
a table without a ``track`` column makes every test cube ``iid``). With ``ood_time_from``, train
and val cubes draw their windows only among the starts before that day, and a test window
starting on or after it moves to the time track: ``iid`` -> ``ood_time``, ``ood_space`` ->
``ood_space_time``. Train and val samples have the track ``""``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import zarr

from cubestream.errors import L2InputError
from cubestream.l2.schema import BANDS
from cubestream.l2.windows import candidate_starts, draw_starts, from_days, to_days
from cubestream.storage import open_group

__all__ = [
    "SPLITS",
    "WEATHER_SOURCES",
    "L2Plan",
    "SampleSpec",
    "open_l1",
    "plan_samples",
    "read_locations",
    "strings",
]

SPLITS = ("train", "val", "test")
_PIXEL_VARIABLES = {
    "s2": "it is the core of L1: rebuild the tile with `cubestream l1`",
    "scl": "it is the core of L1: rebuild the tile with `cubestream l1`",
    "dem": "rebuild L1 with `cubestream l1 ... --srtm PREFIX`",
    "landcover": "rebuild L1 with `cubestream l1 ... --landcover URL`",
    "geomorphons": "rebuild L1 with `cubestream l1 ... --geomorphons URL`",
}
WEATHER_SOURCES = {
    "era5": ("era5", "era5_variable", "era5_time", "--era5 STORE"),
    "smap": ("smap", "smap_variable", "day", "--smap PREFIX"),
}
"""Per weather source: L1 variable, its names coordinate, its day coordinate, the L1 option."""


@dataclass(frozen=True, kw_only=True)
class SampleSpec:
    """One sample: a window of one cube, with what a task needs to read and place it.

    Attributes
    ----------
    tile : str
        Tile group of the L1 store.
    cube : int
        Index of the cube in the tile group.
    cube_id, split : str
        From L1 and the locations table.
    window : int
        Index of the window among the cube's windows (in time order).
    start : int
        First step day ``d_0`` (days since 1970).
    record : tuple of int
        First and last day of the tile's record (days since 1970): nothing outside is read.
    epsg : int
        The tile's CRS.
    x_min, y_max, lon, lat : float
        The cube's upper-left corner (tile CRS, m) and centre (WGS84).
    """

    tile: str
    cube: int
    cube_id: str
    split: str
    window: int
    start: int
    record: tuple[int, int]
    epsg: int
    x_min: float
    y_max: float
    lon: float
    lat: float
    track: str = ""

    @property
    def key(self) -> tuple[str, int]:
        """``(cube_id, start)``: names the sample in the store and the report."""
        return self.cube_id, self.start

    def describe(self) -> dict[str, Any]:
        """JSON-ready naming of the sample for the build report."""
        return {
            "cube_id": self.cube_id,
            "tile": self.tile,
            "window": self.window,
            "start": from_days(self.start).isoformat(),
        }


@dataclass(frozen=True, kw_only=True)
class L2Plan:
    """The samples to build and everything left out.

    Attributes
    ----------
    samples : list of SampleSpec
        In store order.
    skipped : list of dict
        Cubes, windows and tiles left out, each with ``reason``.
    tiles : dict
        Per tile group: status, record, cubes, windows.
    weather : dict of str to str
        Weather variable name -> its L1 source (``era5`` or ``smap``), in store order.
    size : int
        Cube side in pixels.
    digest : str
        Digest of the L1 tiles' build attributes and of the locations' cube ids and splits.
    """

    samples: list[SampleSpec]
    skipped: list[dict[str, Any]]
    tiles: dict[str, dict[str, Any]]
    weather: dict[str, str]
    size: int
    digest: str = field(default="")


def strings(values: Any) -> np.ndarray:
    """The values of a zarr string array as a fixed-width numpy ``str`` array."""
    return np.array(np.asarray(values).tolist(), dtype=str)


def open_l1(url: str, storage_options: dict[str, Any] | None = None) -> Any:
    """Open the L1 store's root group read-only; a clear error if there is none."""
    try:
        root = open_group(url, storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError) as exc:
        raise L2InputError(
            f"no L1 store at {url}: build it first with `cubestream l1 --out {url} ...`"
        ) from exc
    if not [name for name, _ in root.groups()]:
        raise L2InputError(
            f"the L1 store {url} holds no tile group: build it with `cubestream l1 --out {url}`"
        )
    return root


def read_locations(path: str) -> pd.DataFrame:
    """The ``cube_id``, ``split`` and ``track`` columns of the locations table, by cube id.

    A table without ``track`` (made before the tracks) puts every test cube on ``iid``.
    """
    try:
        table = pd.read_parquet(path, columns=None)
    except (FileNotFoundError, OSError) as exc:
        raise L2InputError(f"cannot read the locations table {path}: {exc}") from exc
    missing = [c for c in ("cube_id", "split") if c not in table.columns]
    if missing:
        raise L2InputError(
            f"the locations table {path} lacks the columns {missing}; make it with "
            "`cubestream sample` (it assigns the train/val/test splits)"
        )
    bad = sorted(set(table["split"].astype(str)) - set(SPLITS))
    if bad:
        raise L2InputError(f"the locations table {path} has splits {bad}; allowed: {SPLITS}")
    if "track" not in table.columns:
        table = table.assign(track=np.where(table["split"].astype(str) == "test", "iid", ""))
    bad = sorted(set(table["track"].astype(str)) - {"", "iid", "ood_space"})
    if bad:
        raise L2InputError(
            f"the locations table {path} has tracks {bad}; allowed: '', iid, ood_space"
        )
    return table[["cube_id", "split", "track"]].astype(str).set_index("cube_id")


def _record(group: Any, start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The tile's record: the range its L1 group was built for, cut to ``start``/``end``."""
    build = group.attrs.get("build") or {}
    if "start" in build and "end" in build:
        first, last = dt.date.fromisoformat(build["start"]), dt.date.fromisoformat(build["end"])
    else:
        days = np.asarray(group["time"][...], np.int64)
        first, last = from_days(int(days[0])), from_days(int(days[-1]))
    return max(first, start or first), min(last, end or last)


def _check_variables(tile: str, group: Any, weather: dict[str, str]) -> None:
    names = set(group.array_keys())
    for name, remedy in _PIXEL_VARIABLES.items():
        if name not in names:
            raise L2InputError(f"L1 tile group {tile} has no variable {name!r}: {remedy}")
    bands = [str(b) for b in strings(group["band"][...])]
    if missing := [b for b in BANDS if b not in bands]:
        raise L2InputError(f"L1 tile group {tile} lacks the bands {missing}; rebuild it")
    for source in sorted(set(weather.values())):
        variable, _, _, option = WEATHER_SOURCES[source]
        if variable not in names:
            raise L2InputError(
                f"L1 tile group {tile} has no variable {variable!r}, needed for the weather "
                f"variables {[w for w, s in weather.items() if s == source]}: rebuild L1 with "
                f"`cubestream l1 ... {option}`, or choose other weather variables"
            )
    available = _weather_names(group)
    if missing := [w for w in weather if available.get(w) != weather[w]]:
        raise L2InputError(
            f"L1 tile group {tile} lacks the weather variables {missing} (it has "
            f"{sorted(available)}); choose variables every tile has"
        )


def _weather_names(group: Any) -> dict[str, str]:
    """Daily weather variables of a tile group -> their source, ERA5 first."""
    names = set(group.array_keys())
    out: dict[str, str] = {}
    for source, (variable, coord, _, _) in WEATHER_SOURCES.items():
        if variable in names and coord in names:
            for name in strings(group[coord][...]):
                if str(name) in out:
                    raise L2InputError(
                        f"weather variable {name!r} is in both {out[str(name)]} and {source}"
                    )
                out[str(name)] = source
    return out


def _resolve_weather(groups: dict[str, Any], wanted: tuple[str, ...] | None) -> dict[str, str]:
    first = next(iter(groups.values()))
    available = _weather_names(first)
    if wanted is None:
        if not available:
            tile = next(iter(groups))
            raise L2InputError(
                f"L1 tile group {tile} has neither 'era5' nor 'smap': rebuild L1 with "
                "`cubestream l1 ... --era5 STORE --smap PREFIX`"
            )
        return available
    unknown = [w for w in wanted if w not in available]
    if unknown:
        raise L2InputError(
            f"weather variables {unknown} are not in L1 tile group {next(iter(groups))} "
            f"(it has {sorted(available)})"
        )
    return {w: available[w] for w in wanted}


def _digest(groups: dict[str, Any], locations: pd.DataFrame) -> str:
    h = hashlib.sha256()
    builds = {tile: group.attrs.get("build") for tile, group in groups.items()}
    h.update(json.dumps(builds, sort_keys=True, default=str).encode())
    h.update("\n".join(f"{c},{s}" for c, s in locations["split"].sort_index().items()).encode())
    if "track" in locations and (locations["track"] == "ood_space").any():
        h.update(
            ",".join(locations.index[locations["track"] == "ood_space"].sort_values()).encode()
        )
    return h.hexdigest()[:16]


def _track(split: str, space: str, start: dt.date, ood_time_from: dt.date | None) -> str:
    if split != "test":
        return ""
    if ood_time_from is None or start < ood_time_from:
        return space or "iid"
    return "ood_space_time" if space == "ood_space" else "ood_time"


def plan_samples(
    root: Any,
    locations: pd.DataFrame,
    *,
    windows_per_cube: int = 1,
    seed: int = 0,
    start: dt.date | None = None,
    end: dt.date | None = None,
    tiles: tuple[str, ...] | None = None,
    weather: tuple[str, ...] | None = None,
    ood_time_from: dt.date | None = None,
) -> L2Plan:
    """Plan the samples of the L2 store (see the module docstring).

    Parameters
    ----------
    root : zarr.Group
        The L1 store (:func:`open_l1`).
    locations : pandas.DataFrame
        :func:`read_locations`.
    windows_per_cube : int
        Windows drawn per cube.
    seed : int
        Seed of the draws.
    start, end : datetime.date, optional
        Limit the record of every tile to this range.
    tiles : tuple of str, optional
        Use only these tile groups.
    weather : tuple of str, optional
        Weather variables (default: all the first tile has, ERA5 then SMAP).
    ood_time_from : datetime.date, optional
        First start day of the later period (the ``ood_time`` tracks; see the module docstring).
    """
    if start and end and end < start:
        raise L2InputError(f"empty time range: --start {start} is after --end {end}")
    names = sorted(name for name, _ in root.groups())
    if tiles:
        if unknown := sorted(set(tiles) - set(names)):
            raise L2InputError(f"tiles {unknown} are not in the L1 store (it has {names})")
        names = [n for n in names if n in tiles]
    skipped: list[dict[str, Any]] = []
    report: dict[str, dict[str, Any]] = {}
    groups: dict[str, Any] = {}
    for tile in names:
        group = root[tile]
        if group.attrs.get("complete") is not True:
            reason = "L1 tile group is not complete: finish it by rerunning `cubestream l1`"
            report[tile] = {"status": "skipped", "reason": reason}
            skipped.append({"tile": tile, "reason": reason})
            continue
        groups[tile] = group
    if not groups:
        raise L2InputError(f"no complete tile group in the L1 store ({skipped[:3]})")
    chosen = _resolve_weather(groups, weather)
    samples: list[SampleSpec] = []
    seen: set[str] = set()
    sizes = set()
    for tile, group in groups.items():
        _check_variables(tile, group, chosen)
        sizes.add(int(group["scl"].shape[-1]))
        first, last = _record(group, start, end)
        candidates = candidate_starts(first, last)
        ids = [str(c) for c in strings(group["cube"][...])]
        seen.update(ids)
        entry = report[tile] = {
            "status": "used",
            "record": [first.isoformat(), last.isoformat()],
            "cubes": len(ids),
            "candidate_starts": [c.isoformat() for c in candidates],
        }
        if not candidates:
            reason = (
                f"the record {first}..{last} holds no 450-day window inside full calendar years "
                "(a window needs two full years, Jan-Dec, in the record: widen the L1 time range)"
            )
            entry.update(status="skipped", reason=reason)
            skipped += [{"cube_id": c, "tile": tile, "reason": reason} for c in ids]
            continue
        coords = {k: np.asarray(group[k][...]) for k in ("x_min", "y_max", "lon", "lat")}
        epsg = int(group.attrs["epsg"])
        record = (to_days(first), to_days(last))
        for c, cube_id in enumerate(ids):
            if cube_id not in locations.index:
                skipped.append(
                    {"cube_id": cube_id, "tile": tile, "reason": "not in the locations table"}
                )
                continue
            split = str(locations.at[cube_id, "split"])
            allowed = candidates
            if ood_time_from is not None and split != "test":
                allowed = [c for c in candidates if c < ood_time_from]
            starts = draw_starts(cube_id, allowed, windows_per_cube, seed)
            if len(starts) < windows_per_cube:
                before = (
                    f" before the OOD-time day {ood_time_from}" if allowed != candidates else ""
                )
                skipped.append(
                    {
                        "cube_id": cube_id,
                        "tile": tile,
                        "reason": f"only {len(starts)} candidate starts{before} for "
                        f"{windows_per_cube} windows per cube: all of them are used",
                    }
                )
            for w, day in enumerate(starts):
                samples.append(
                    SampleSpec(
                        tile=tile,
                        cube=c,
                        cube_id=cube_id,
                        split=split,
                        track=_track(
                            split, str(locations.at[cube_id, "track"]), day, ood_time_from
                        ),
                        window=w,
                        start=to_days(day),
                        record=record,
                        epsg=epsg,
                        x_min=float(coords["x_min"][c]),
                        y_max=float(coords["y_max"][c]),
                        lon=float(coords["lon"][c]),
                        lat=float(coords["lat"][c]),
                    )
                )
        entry["windows"] = sum(1 for s in samples if s.tile == tile)
    absent = sorted(set(locations.index) - seen)
    skipped += [{"cube_id": c, "reason": "not in the L1 store (tile not built?)"} for c in absent]
    if len(sizes) > 1:
        raise L2InputError(f"the L1 tile groups have cubes of different sizes {sorted(sizes)}")
    if not samples:
        reasons = Counter(s["reason"] for s in skipped)
        raise L2InputError(f"no window to build; left out: {dict(reasons)}")
    samples.sort(key=lambda s: (s.tile, s.cube_id, s.start))
    return L2Plan(
        samples=samples,
        skipped=skipped,
        tiles=report,
        weather=chosen,
        size=sizes.pop(),
        digest=_digest(groups, locations),
    )
