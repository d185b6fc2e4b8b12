"""The one way credentials reach rasterio and GDAL: GDAL options whose AWS keys form a session.

Storage settings (:class:`cubestream.storage.S3Settings`, or the caller's own options) become a
dict of GDAL options; ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``,
which rasterio refuses as plain options, go into a :class:`StaticAWSSession` (picklable, so the
same session travels to Dask workers in stackstac's ``LayeredEnv``), the endpoint and region stay
GDAL options (``AWS_S3_ENDPOINT``, ``AWS_REGION``). :func:`rasterio_env` opens a ``rasterio.Env``
this way; :func:`session_options` gives the options with the session for a ``LayeredEnv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rasterio
from rasterio.session import Session as RasterioSession

__all__ = ["CREDENTIALS", "StaticAWSSession", "rasterio_env", "session_options"]

CREDENTIALS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
"""The GDAL option names of AWS credentials."""


class StaticAWSSession(RasterioSession):  # type: ignore[misc]  # rasterio is untyped
    """A picklable rasterio session holding fixed AWS credentials.

    rasterio refuses credentials as plain GDAL options and its own ``AWSSession`` holds a boto3
    session that cannot travel to Dask workers; this one carries only strings.
    """

    def __init__(self, options: Mapping[str, Any]) -> None:
        self.options = {k: str(v) for k, v in options.items() if k in CREDENTIALS}

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


def session_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """GDAL ``options`` with their AWS credentials moved into ``"session"``.

    Digit strings become integers (rasterio hands ``GDAL_CACHEMAX`` to ``GDALSetCacheMax64``).
    """
    out = {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in options.items()}
    if any(key in out for key in CREDENTIALS):
        out["session"] = StaticAWSSession(options)
        for key in CREDENTIALS:
            out.pop(key, None)
    return out


def rasterio_env(options: Mapping[str, Any]) -> rasterio.Env:
    """A ``rasterio.Env`` with ``options``, credentials in a :class:`StaticAWSSession`."""
    return rasterio.Env(**session_options(options))
