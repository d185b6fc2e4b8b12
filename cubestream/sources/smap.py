"""SMAP L4 SPL4SMGP granules as users have them: found by their real NSIDC names.

A granule is named ``SMAP_L4_SM_gph_<yyyymmddThhmmss>_Vv<vvvv>_<nnn>.h5``: the centre of its
3-hour averaging period (01:30 ... 22:30 UTC), the science version (``Vv7030``/``Vv7031``/
``Vv7032`` in product version 7, ``SPL4SMGP.007``; ``Vv8010`` in version 8, ``SPL4SMGP.008``) and a
processing counter (``001``; a reprocessed granule of the same period comes as ``002``).

Two layouts are found, local or behind an fsspec URL (``s3://...``):

- ``days``: NSIDC's tree, one folder per UTC day, ``<prefix>/YYYY.MM.DD/<granule>``;
- ``flat``: every granule directly under ``<prefix>``.

The choice is made from what ``<prefix>`` holds (day folders or granules; both is an error). In
``[start, end]``:

- granules of several product versions (``Vv7xxx`` and ``Vv8xxx``) are an error unless one is
  named (``version="8"`` or ``"Vv8010"``); within one product version the science id may change
  along the record (NSIDC's V7 holds both ``Vv7031`` and ``Vv7032``), but one period present under
  two science ids is an error until one is named;
- of a period present with two counters, the highest counter wins and the choice is reported
  (:class:`~cubestream.errors.ReplacedGranuleWarning`);
- a ``SMAP_L4_SM_gph_*.h5`` file whose name does not parse is an error naming it; other files
  (NSIDC's ``.xml``/``.qa`` side files, other products) are not granules and are left alone.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cubestream.errors import (
    AssetNotFoundError,
    AssetReadError,
    ReplacedGranuleWarning,
    SourceKindError,
)
from cubestream.storage import filesystem

__all__ = [
    "GRANULE_PATTERN",
    "Granule",
    "GranuleListing",
    "find_granules",
    "parse_granule_name",
    "select_version",
]

GRANULE_PATTERN = re.compile(
    r"SMAP_L4_SM_gph_(?P<time>\d{8}T\d{6})_(?P<version>Vv\d{4})_(?P<counter>\d{3})\.h5"
)
"""A real SPL4SMGP granule name (the whole file name)."""
_CANDIDATE = re.compile(r"SMAP_L4_SM_gph_.*\.h5")
_DAY_FOLDER = re.compile(r"\d{4}\.\d{2}\.\d{2}")
Layout = Literal["days", "flat"]


@dataclass(frozen=True, kw_only=True)
class Granule:
    """One SPL4SMGP granule, from its file name.

    Attributes
    ----------
    url : str
        Path or URL of the file.
    time : datetime.datetime
        Centre of the 3-hour averaging period (UTC).
    version : str
        Science version id, e.g. ``Vv8010``.
    counter : int
        Processing counter (1 normally; higher for a replacement).
    """

    url: str
    time: dt.datetime
    version: str
    counter: int

    @property
    def product_version(self) -> int:
        """The product version: 7 for ``Vv7032`` (``SPL4SMGP.007``), 8 for ``Vv8010``."""
        return int(self.version[2])


def parse_granule_name(url: str) -> Granule:
    """The time, science version and counter in a granule's file name.

    Parameters
    ----------
    url : str
        Path or URL ending in ``SMAP_L4_SM_gph_<yyyymmddThhmmss>_Vv<vvvv>_<nnn>.h5``.

    Returns
    -------
    Granule

    Raises
    ------
    AssetReadError
        If the file name is not a real SPL4SMGP granule name (it is named).
    """
    name = url.rstrip("/").rsplit("/", 1)[-1]
    match = GRANULE_PATTERN.fullmatch(name)
    if match is None:
        raise AssetReadError(
            "not an SMAP L4 granule name"
            f" (SMAP_L4_SM_gph_<yyyymmddThhmmss>_Vv<nnnn>_<nnn>.h5): {url}"
        )
    try:
        time = dt.datetime.strptime(match["time"], "%Y%m%dT%H%M%S")
    except ValueError as exc:
        raise AssetReadError(f"the SMAP granule name {url} holds no valid time: {exc}") from exc
    return Granule(url=url, time=time, version=match["version"], counter=int(match["counter"]))


@dataclass(frozen=True, kw_only=True)
class GranuleListing:
    """The granules chosen in a time range, and what was decided on the way.

    Attributes
    ----------
    granules : list of Granule
        One granule per period, sorted by time.
    layout : {"days", "flat"}
        How the granules were laid out.
    versions : tuple of str
        Science version ids of the chosen granules.
    replaced : list of tuple of str
        ``(left out, kept)`` URLs of periods present with several counters.
    """

    granules: list[Granule]
    layout: Layout
    versions: tuple[str, ...]
    replaced: list[tuple[str, str]]


# --- version and counter choices ----------------------------------------------------------------


def _wanted(granule: Granule, version: str | None) -> bool:
    if version is None:
        return True
    if re.fullmatch(r"Vv\d{4}", version):
        return granule.version == version
    return granule.product_version == int(version)


def select_version(
    granules: Iterable[Granule], prefix: str, version: str | None = None
) -> tuple[list[Granule], list[tuple[str, str]]]:
    """One granule per period: of one product version, the highest counter.

    Parameters
    ----------
    granules : iterable of Granule
        Everything found.
    prefix : str
        Where they were found (for messages).
    version : str, optional
        A product version (``"7"``, ``"008"``) or a science version id (``"Vv8010"``); needed
        when several product versions are present.

    Returns
    -------
    list of Granule
        Sorted by time.
    list of tuple of str
        ``(left out, kept)`` URLs where a higher counter replaced a granule.

    Raises
    ------
    SourceKindError
        If ``version`` is malformed, if several product versions are present and none is named,
        or if one period is present under two science ids.
    """
    if version is not None and not re.fullmatch(r"Vv\d{4}|0{0,2}\d", version):
        raise SourceKindError(
            f"SMAP version {version!r} is neither a product version (7, 8, 008) nor a science"
            " version id (Vv8010)"
        )
    chosen = [g for g in granules if _wanted(g, version)]
    products = sorted({g.product_version for g in chosen})
    if len(products) > 1:
        ids = sorted({g.version for g in chosen})
        raise SourceKindError(
            f"SMAP granules of several product versions under {prefix}: {ids}; name one with"
            " --smap-version (e.g. 8 for SPL4SMGP.008)"
        )
    best: dict[dt.datetime, Granule] = {}
    replaced = []
    for granule in sorted(chosen, key=lambda g: (g.time, g.counter)):
        kept = best.get(granule.time)
        if kept is not None and kept.version != granule.version:
            raise SourceKindError(
                f"the SMAP period {granule.time:%Y-%m-%dT%H:%M} is under {prefix} twice, as"
                f" {kept.url} and {granule.url}; name one with --smap-version"
                f" ({kept.version} or {granule.version})"
            )
        if kept is not None:
            replaced.append((kept.url, granule.url))
        best[granule.time] = granule
    return [best[t] for t in sorted(best)], replaced


# --- listing ------------------------------------------------------------------------------------


def _names(fs: Any, path: str) -> list[str]:
    """Entries of one folder (empty if it does not exist)."""
    try:
        return sorted(fs.ls(path, detail=False))
    except FileNotFoundError:
        return []


def _base(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _parsed(paths: Iterable[str], prefix: str) -> list[Granule]:
    """Granules of the ``SMAP_L4_SM_gph_*.h5`` entries; an error naming any that do not parse."""
    candidates = [p for p in paths if _CANDIDATE.fullmatch(_base(p))]
    bad = [p for p in candidates if GRANULE_PATTERN.fullmatch(_base(p)) is None]
    if bad:
        raise AssetReadError(
            f"files under {prefix} look like SMAP L4 granules but their names do not parse"
            f" (SMAP_L4_SM_gph_<yyyymmddThhmmss>_Vv<nnnn>_<nnn>.h5): {bad}; rename or remove them"
        )
    return [parse_granule_name(p) for p in candidates]


def _layout(fs: Any, root: str, prefix: str) -> Layout:
    entries = [_base(p) for p in _names(fs, root)]
    days = any(_DAY_FOLDER.fullmatch(e) for e in entries)
    flat = any(_CANDIDATE.fullmatch(e) for e in entries)
    if days and flat:
        raise SourceKindError(
            f"{prefix} holds both day folders (YYYY.MM.DD/) and granules: point at one layout"
        )
    if not days and not flat:
        raise AssetNotFoundError(
            f"no SMAP L4 granules under {prefix}: looked for day folders YYYY.MM.DD/ holding"
            " SMAP_L4_SM_gph_*.h5 (NSIDC) and for SMAP_L4_SM_gph_*.h5 directly under it"
        )
    return "days" if days else "flat"


def _in_range(paths: Sequence[str], start: dt.date, end: dt.date) -> list[str]:
    """Entries named for a day in ``[start, end]``, and those whose name does not parse."""
    out = []
    for path in paths:
        match = GRANULE_PATTERN.fullmatch(_base(path))
        try:
            day = dt.datetime.strptime(match["time"][:8], "%Y%m%d").date() if match else None
        except ValueError:
            day = None
        if day is None or start <= day <= end:
            out.append(path)
    return out


def find_granules(
    prefix: str,
    start: dt.date,
    end: dt.date,
    storage_options: dict[str, Any] | None = None,
    *,
    version: str | None = None,
) -> GranuleListing:
    """The SPL4SMGP granules of the days ``[start, end]`` under ``prefix`` (module docstring).

    Parameters
    ----------
    prefix : str
        Folder of day folders (``.../SPL4SMGP.008``) or of granules: a path or an fsspec URL.
    start, end : datetime.date
        First and last day (inclusive).
    storage_options : dict, optional
        fsspec options for URLs.
    version : str, optional
        Product version (``"8"``) or science version id (``"Vv8010"``) to keep.

    Returns
    -------
    GranuleListing
        URLs keep the scheme of ``prefix``; replacements are also warned about.

    Raises
    ------
    AssetNotFoundError
        If ``prefix`` holds neither layout.
    AssetReadError
        If a granule-like name does not parse.
    SourceKindError
        If both layouts are present, or versions are mixed (see :func:`select_version`).
    """
    fs, root = filesystem(prefix, storage_options)
    root = root.rstrip("/")
    layout = _layout(fs, root, prefix)
    if layout == "days":
        days = [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]
        paths = [p for day in days for p in _names(fs, f"{root}/{day:%Y.%m.%d}")]
    else:
        paths = _in_range(_names(fs, root), start, end)
    if "://" in prefix:
        paths = [fs.unstrip_protocol(p) for p in paths]
    found = [g for g in _parsed(paths, prefix) if start <= g.time.date() <= end]
    granules, replaced = select_version(found, prefix, version)
    if replaced:
        listed = ", ".join(f"{_base(new)} replaces {_base(old)}" for old, new in replaced)
        warnings.warn(
            f"SMAP granules reprocessed under {prefix}: {listed}",
            ReplacedGranuleWarning,
            stacklevel=2,
        )
    versions = tuple(sorted({g.version for g in granules}))
    return GranuleListing(granules=granules, layout=layout, versions=versions, replaced=replaced)
