"""The runtime configuration of cubestream: GDAL options and the retry policy of remote reads.

One `donfig <https://donfig.readthedocs.io>`_ configuration, as dask and zarr have: defaults
here, overridden by YAML files (``~/.config/cubestream/*.yaml``), by the environment, and in code
by :func:`set` (a context manager, or a lasting change)::

    import cubestream.config

    with cubestream.config.set({"retry.attempts": 10, "gdal.GDAL_HTTP_TIMEOUT": "120"}):
        ...

``gdal``
    GDAL configuration options for every raster read (Sentinel-2 COGs, DEM tiles, the
    sampler's strata rasters), tuned for COG windows on object storage
    (:func:`cubestream.sources.config.gdal_options` adds the caller's own on top).
``retry``
    ``attempts``, ``base-delay``, ``max-delay`` of :class:`RetryPolicy`: the STAC search, the
    SMAP granules and the ERA5 stores are retried with it.

Environment: ``CUBESTREAM_GDAL_<NAME>=value`` sets the GDAL option ``NAME``
(``CUBESTREAM_GDAL_GDAL_HTTP_MAX_RETRY=10``), ``CUBESTREAM_RETRY_ATTEMPTS`` /
``_BASE_DELAY`` / ``_MAX_DELAY`` the retry policy; donfig's own spelling
(``CUBESTREAM_RETRY__ATTEMPTS``) works too. The environment is read when this module is imported
and again by :func:`refresh`, which every ``cubestream`` command calls first (a refresh drops
what :func:`set` changed). Dask workers read their own environment: the builds resolve the
settings in the calling process and hand them to their tasks.
"""

from __future__ import annotations

import ast
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from donfig import Config

__all__ = ["DEFAULTS", "RetryPolicy", "config", "gdal", "get", "refresh", "set", "transient"]

DEFAULTS: dict[str, Any] = {
    "gdal": {
        # never list a "directory" of a COG's parent prefix on open (one GET instead of many)
        "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.jp2,.JP2,.hgt,.vrt,.zip",
        # read the header with one request large enough for a COG's IFDs (a Sentinel-2 COG's are
        # a few KB; 32 KB made the headers 11 % of the bytes a level-1 build fetches on `tiny`)
        "GDAL_INGESTED_BYTES_AT_OPEN": "16384",
        # merge neighbouring block reads into one ranged GET, multiplex on HTTP/2
        "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
        "GDAL_HTTP_MULTIPLEX": "YES",
        "GDAL_HTTP_VERSION": "2",
        # GDAL's process-wide HTTP range cache, shared by every open of a COG in a worker. The
        # build reads each COG block in one task, once, so the cache only has to hold the
        # headers and the reads in flight; the per-file VSI_CACHE (its size counts per open
        # file: stackstac keeps hundreds open) is left off
        "CPL_VSIL_CURL_CACHE_SIZE": str(128 * 1024 * 1024),
        # block cache in bytes (rasterio hands an integer to GDALSetCacheMax64)
        "GDAL_CACHEMAX": str(128 * 1024 * 1024),
        # GDAL's own retries for 429, 5xx and connection errors, with exponential backoff
        "GDAL_HTTP_MAX_RETRY": "6",
        "GDAL_HTTP_RETRY_DELAY": "0.5",
        "GDAL_HTTP_RETRY_CODES": "403,429,500,502,503,504",
        "GDAL_HTTP_TIMEOUT": "60",
    },
    "retry": {"attempts": 6, "base-delay": 0.5, "max-delay": 20.0},
}
"""The defaults of every setting."""

config = Config("cubestream", defaults=[DEFAULTS])
"""The configuration object (``donfig.Config``)."""

_GDAL_ENV = "CUBESTREAM_GDAL_"
_RETRY_ENV = {"ATTEMPTS": "attempts", "BASE_DELAY": "base-delay", "MAX_DELAY": "max-delay"}


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return text


def _environment(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings of the ``CUBESTREAM_GDAL_<NAME>`` and ``CUBESTREAM_RETRY_<NAME>`` variables."""
    out: dict[str, Any] = {}
    for name, value in env.items():
        if name.startswith(_GDAL_ENV) and not name.startswith(f"{_GDAL_ENV}_"):
            out[f"gdal.{name.removeprefix(_GDAL_ENV)}"] = value
        elif name.startswith("CUBESTREAM_RETRY_") and not name.startswith("CUBESTREAM_RETRY__"):
            key = _RETRY_ENV.get(name.removeprefix("CUBESTREAM_RETRY_"))
            if key:
                out[f"retry.{key}"] = _literal(value)
    return out


def refresh() -> None:
    """Read the configuration again: defaults, YAML files, then the environment."""
    config.refresh()
    given = _environment(os.environ)
    if given:
        config.set(given)


def get(key: str, default: Any = None) -> Any:
    """The setting ``key`` (``"retry.attempts"``), or ``default`` where there is none."""
    return config.get(key, default)


def set(arg: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
    """Change settings: for a ``with`` block (the context manager returned), or for good.

    Keys are dotted paths (``{"gdal.GDAL_HTTP_TIMEOUT": "120"}``); see :func:`donfig.Config.set`.
    """
    return config.set(arg, **kwargs)


def gdal() -> dict[str, str]:
    """The GDAL options now in force, by their (upper-case) GDAL names, as strings.

    Names from donfig's environment spelling come lower-cased; GDAL's names are upper-case.
    """
    return {str(k).upper(): str(v) for k, v in (get("gdal") or {}).items()}


T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries with exponential backoff and full jitter, for STAC and object-store calls.

    A policy is a plain value: the builds take it from :func:`RetryPolicy.from_config` in the
    calling process and hand it to their Dask tasks.

    Attributes
    ----------
    attempts : int
        Tries in all (1 = no retry).
    base_delay, max_delay : float
        The ``k``-th retry waits ``uniform(0, min(max_delay, base_delay * 2**k))`` seconds.
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 20.0

    @classmethod
    def from_config(cls) -> RetryPolicy:
        """The policy of the ``retry`` settings (``CUBESTREAM_RETRY_ATTEMPTS`` ...)."""
        return cls(
            attempts=int(get("retry.attempts", cls.attempts)),
            base_delay=float(get("retry.base-delay", cls.base_delay)),
            max_delay=float(get("retry.max-delay", cls.max_delay)),
        )

    from_env = from_config  # the name of earlier releases

    def call(self, fn: Callable[[], T], retry_on: Callable[[BaseException], bool], what: str) -> T:
        """Call ``fn``; retry the errors ``retry_on`` accepts; re-raise the last one."""
        for attempt in range(self.attempts):
            try:
                return fn()
            except Exception as exc:
                if attempt == self.attempts - 1 or not retry_on(exc):
                    raise
                delay = random.uniform(0, min(self.max_delay, self.base_delay * 2**attempt))
                time.sleep(delay)
        raise AssertionError(f"unreachable: {what}")


def transient(exc: BaseException) -> bool:
    """Whether an error of a remote read is worth retrying (throttling, 5xx, a dropped link).

    Missing files and refused credentials are not: they fail the same way again.
    """
    if isinstance(exc, FileNotFoundError | PermissionError):
        return False
    text = str(exc)
    codes = ("429", "500", "502", "503", "504", "SlowDown", "Throttl", "timed out", "reset")
    return any(code in text for code in codes) or isinstance(exc, ConnectionError | TimeoutError)


refresh()
