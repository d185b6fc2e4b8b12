"""Runtime knobs of reading the archives, in one place: GDAL cloud settings and the retry policy.

Every knob has a default tuned for reading COG windows from object storage and can be overridden
from the environment (``CUBESTREAM_GDAL_<NAME>`` for GDAL options, ``CUBESTREAM_RETRY_*`` for the
retry policy). The GDAL settings travel to the Dask workers inside stackstac's ``LayeredEnv``.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from rasterio.session import Session as RasterioSession

__all__ = ["GDAL_DEFAULTS", "RetryPolicy", "StaticAWSSession", "gdal_options", "layered_env"]

GDAL_DEFAULTS: dict[str, str] = {
    # never list a "directory" of a COG's parent prefix on open (one GET instead of many)
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.jp2,.JP2,.hgt,.vrt,.zip",
    # read the header with one request large enough for a COG's IFDs (a Sentinel-2 COG's are a
    # few KB; 32 KB made the headers 11 % of the bytes a level-1 build fetches on `tiny`)
    "GDAL_INGESTED_BYTES_AT_OPEN": "16384",
    # merge neighbouring block reads into one ranged GET, multiplex on HTTP/2
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    # GDAL's process-wide HTTP range cache, shared by every open of a COG in a worker. The build
    # reads each COG block in one task, once, so the cache only has to hold the headers and the
    # reads in flight; the per-file VSI_CACHE (its size counts per open file: stackstac keeps
    # hundreds open) is left off
    "CPL_VSIL_CURL_CACHE_SIZE": str(128 * 1024 * 1024),
    # block cache in bytes (rasterio hands an integer to GDALSetCacheMax64)
    "GDAL_CACHEMAX": str(128 * 1024 * 1024),
    # GDAL's own retries for 429, 5xx and connection errors, with exponential backoff
    "GDAL_HTTP_MAX_RETRY": "6",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    "GDAL_HTTP_RETRY_CODES": "403,429,500,502,503,504",
    "GDAL_HTTP_TIMEOUT": "60",
}
"""GDAL options for COG windows on object storage (override: ``CUBESTREAM_GDAL_<NAME>``)."""

T = TypeVar("T")


def gdal_options(extra: dict[str, str] | None = None) -> dict[str, str]:
    """GDAL options: the defaults, then ``CUBESTREAM_GDAL_*`` variables, then ``extra``."""
    options = dict(GDAL_DEFAULTS)
    for name, value in os.environ.items():
        if name.startswith("CUBESTREAM_GDAL_"):
            options[name.removeprefix("CUBESTREAM_GDAL_")] = value
    options.update(extra or {})
    return options


def _typed(options: dict[str, str]) -> dict[str, Any]:
    """Convert digit strings to integers: rasterio wants them for ``GDAL_CACHEMAX``."""
    return {k: int(v) if v.isdigit() else v for k, v in options.items()}


_CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class StaticAWSSession(RasterioSession):
    """A picklable rasterio session holding fixed AWS credentials.

    rasterio refuses credentials as plain GDAL options and its own ``AWSSession`` holds a boto3
    session that cannot travel to Dask workers; this one carries only strings.
    """

    def __init__(self, options: dict[str, str]) -> None:
        self.options = {k: v for k, v in options.items() if k in _CREDENTIALS}

    @classmethod
    def hascreds(cls, config: dict[str, Any]) -> bool:
        """Whether ``config`` holds credentials."""
        return "AWS_ACCESS_KEY_ID" in config

    @property
    def credentials(self) -> dict[str, str]:
        """The credentials, by their GDAL names."""
        return dict(self.options)

    def get_credential_options(self) -> dict[str, str]:
        """GDAL configuration options for the credentials (what rasterio asks a session)."""
        return dict(self.options)


def layered_env(extra: dict[str, str] | None = None) -> Any:
    """Build the stackstac ``LayeredEnv`` that carries :func:`gdal_options` to every read.

    AWS credentials in ``extra`` (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``) travel in a
    :class:`StaticAWSSession`, from which rasterio hands them to GDAL's ``/vsis3/``.
    """
    import stackstac

    options: dict[str, Any] = _typed(gdal_options(extra))
    if any(key in options for key in _CREDENTIALS):
        options["session"] = StaticAWSSession(options)
        for key in _CREDENTIALS:
            options.pop(key, None)
    return stackstac.DEFAULT_GDAL_ENV.updated(always=options)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries with exponential backoff and full jitter, for STAC and object-store calls.

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
    def from_env(cls) -> RetryPolicy:
        """The policy with ``CUBESTREAM_RETRY_ATTEMPTS`` / ``_BASE_DELAY`` / ``_MAX_DELAY``."""
        return cls(
            attempts=int(os.environ.get("CUBESTREAM_RETRY_ATTEMPTS", cls.attempts)),
            base_delay=float(os.environ.get("CUBESTREAM_RETRY_BASE_DELAY", cls.base_delay)),
            max_delay=float(os.environ.get("CUBESTREAM_RETRY_MAX_DELAY", cls.max_delay)),
        )

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
