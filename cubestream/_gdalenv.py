"""One way to open a ``rasterio.Env`` from a dict of GDAL options that may hold AWS credentials.

rasterio refuses ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` as plain options; they go into
an ``AWSSession`` with the region and endpoint of the same dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import rasterio
from rasterio.session import AWSSession

__all__ = ["rasterio_env"]


def rasterio_env(options: Mapping[str, Any]) -> rasterio.Env:
    """A ``rasterio.Env`` with ``options``, credentials moved into an ``AWSSession``.

    Digit strings become integers (rasterio hands ``GDAL_CACHEMAX`` to ``GDALSetCacheMax64``).
    """
    merged = {k: int(v) if isinstance(v, str) and v.isdigit() else v for k, v in options.items()}
    key = merged.pop("AWS_ACCESS_KEY_ID", None)
    secret = merged.pop("AWS_SECRET_ACCESS_KEY", None)
    token = merged.pop("AWS_SESSION_TOKEN", None)
    if key is None and secret is None:
        return rasterio.Env(**merged)
    session = AWSSession(
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        region_name=merged.get("AWS_REGION") or merged.get("AWS_DEFAULT_REGION"),
        endpoint_url=merged.get("AWS_S3_ENDPOINT"),
    )
    return rasterio.Env(session=session, **merged)
