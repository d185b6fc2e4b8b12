"""Checks of the command line's inputs, made where they enter, before any work starts.

Option values (dates, bboxes) are argparse types: a bad one is a usage error. Files and services
(locations tables, stores, URLs, outputs) raise :class:`~cubestream.errors.InputError`,
:class:`~cubestream.errors.InputNotFoundError` or
:class:`~cubestream.errors.RemoteServiceError`, each naming the item and what to do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import socket
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from cubestream._check_locations import check_locations
from cubestream.errors import InputError, InputNotFoundError, RemoteServiceError, UsageError
from cubestream.storage import open_group

__all__ = [
    "StoreKind",
    "check_dates",
    "check_locations",
    "check_output_store",
    "check_reachable",
    "check_source",
    "check_store",
    "parse_bbox",
    "parse_date",
    "read_json_line",
    "store_kind",
]

StoreKind = Literal["l1", "l2", "empty", "other"]
"""What a Zarr store holds: tile groups of ``cubestream l1``, samples of ``l2``, nothing, else."""

_MADE_BY = {"l1": "`cubestream l1`", "l2": "`cubestream l2`"}


def parse_date(text: str) -> dt.date:
    """An argparse type: a ``YYYY-MM-DD`` day."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a day YYYY-MM-DD: {text!r}") from None


def check_dates(start: dt.date | None, end: dt.date | None) -> None:
    """Raise :class:`UsageError` if ``--start`` comes after ``--end``."""
    if start is not None and end is not None and start > end:
        raise UsageError(f"--start {start} comes after --end {end}; swap them")


def parse_bbox(text: str) -> tuple[float, float, float, float]:
    """An argparse type: ``min_lon,min_lat,max_lon,max_lat`` in degrees, not empty."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"{text!r} is not min_lon,min_lat,max_lon,max_lat")
    min_lon, min_lat, max_lon, max_lat = values
    if not (-180 <= min_lon < max_lon <= 180 and -90 <= min_lat < max_lat <= 90):
        raise argparse.ArgumentTypeError(
            f"{text!r} is empty or off the globe: need -180 <= min_lon < max_lon <= 180 and "
            "-90 <= min_lat < max_lat <= 90"
        )
    return min_lon, min_lat, max_lon, max_lat


def _remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def _proxied(scheme: str) -> bool:
    names = (f"{scheme}_proxy", "all_proxy")
    return any(os.environ.get(n) or os.environ.get(n.upper()) for n in names)


def check_reachable(url: str, what: str, timeout: float = 5.0) -> None:
    """Raise :class:`RemoteServiceError` if nothing answers a TCP connect to an http(s) URL.

    Skipped behind a proxy (the proxy, not this machine, reaches the host).
    """
    parts = urlsplit(url)
    if not parts.hostname:
        raise UsageError(f"{what} {url!r} is not a URL: it names no host")
    if _proxied(parts.scheme):
        return
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        raise RemoteServiceError(
            f"cannot reach the {what} at {url} ({exc.strerror or exc}): is the service "
            "running and the URL right?"
        ) from None


def check_source(source: str, what: str) -> None:
    """A URL or a local file: an http(s) URL must answer, a path must exist."""
    scheme = urlsplit(source).scheme
    if scheme in ("http", "https"):
        check_reachable(source, what)
    elif not _remote(source) and not Path(source).exists():
        raise InputNotFoundError(f"the {what} {source} does not exist: give a URL or a file")


def read_json_line(path: str, what: str) -> dict[str, Any]:
    """The first line of a file as a JSON object (the ``--endpoints`` line of the replica)."""
    file = Path(path)
    if not file.is_file():
        raise InputNotFoundError(f"the {what} file {path} does not exist")
    lines = file.read_text().strip().splitlines()
    try:
        value = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InputError(f"the {what} file {path} does not start with a JSON object line")
    return value


def _zarr_dir(path: Path, url: str) -> None:
    if not path.exists():
        raise InputNotFoundError(f"no store at {url}: check the path")
    if not path.is_dir():
        raise InputError(f"{url} is a file, not a Zarr store (a directory)")
    if (path / ".zgroup").exists():
        raise InputError(f"{url} is a Zarr v2 store; cubestream reads the Zarr v3 it writes")
    if not (path / "zarr.json").is_file():
        raise InputError(f"{url} is not a Zarr store (it has no zarr.json): give a store's path")


def store_kind(url: str, storage_options: dict[str, Any] | None = None) -> StoreKind:
    """Open a store read-only and tell what it holds; errors if it is not a readable Zarr store."""
    import zarr

    if not _remote(url):
        _zarr_dir(Path(url), url)
    try:
        root: Any = open_group(url, storage_options)
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        raise InputNotFoundError(f"no Zarr store at {url}: check the path") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{url} is not a readable Zarr store: {exc}") from None
    if "kndvi" in root and "cube_id" in root:
        return "l2"
    groups = [group for _, group in root.groups()]
    if any("s2" in g or "scl" in g or "tile" in g.attrs for g in groups):
        return "l1"
    return "empty" if not groups and not list(root.array_keys()) else "other"


def check_store(
    url: str, kind: Literal["l1", "l2"], storage_options: dict[str, Any] | None = None
) -> None:
    """Raise unless ``url`` is a readable Zarr store of ``kind`` (``l1`` or ``l2``)."""
    try:
        found = store_kind(url, storage_options)
    except InputNotFoundError:
        raise InputNotFoundError(
            f"no {kind.upper()} store at {url}: build it with {_MADE_BY[kind]} --out {url}"
        ) from None
    if found == kind:
        return
    what = {"l1": "an L1 store", "l2": "an L2 store", "empty": "an empty store"}.get(
        found, "a Zarr store of another kind"
    )
    raise InputError(
        f"{url} is {what}, not an {kind.upper()} store: give a store made by {_MADE_BY[kind]}"
    )


def check_output_store(
    url: str, kind: Literal["l1", "l2"], storage_options: dict[str, Any] | None = None
) -> None:
    """Raise if the output ``url`` exists and is not a store of ``kind`` (a rerun resumes one)."""
    if _remote(url):
        return
    path = Path(url)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return
    if not (path / "zarr.json").is_file():
        raise InputError(
            f"the output {url} exists and is not a Zarr store: choose another --out or remove it"
        )
    found = store_kind(url, storage_options)
    if found not in (kind, "empty"):
        raise InputError(
            f"the output {url} exists and is not an {kind.upper()} store made by "
            f"{_MADE_BY[kind]} ({found}); a build would mix into it: choose another --out "
            "or remove it"
        )
