"""GDAL cloud settings of the readers: the options of every read and how they reach the workers.

The settings themselves (GDAL options, the retry policy) live in :mod:`cubestream.config`, with
their defaults and overrides (``CUBESTREAM_GDAL_<NAME>``, ``CUBESTREAM_RETRY_*``, ``set()``);
this module adds the caller's options and carries them to the Dask workers inside stackstac's
``LayeredEnv``. :class:`RetryPolicy` is :class:`cubestream.config.RetryPolicy`.
"""

from __future__ import annotations

from typing import Any

from cubestream._gdalenv import StaticAWSSession, session_options
from cubestream.config import DEFAULTS, RetryPolicy
from cubestream.config import gdal as gdal_settings

__all__ = ["GDAL_DEFAULTS", "RetryPolicy", "StaticAWSSession", "gdal_options", "layered_env"]

GDAL_DEFAULTS: dict[str, str] = dict(DEFAULTS["gdal"])
"""GDAL options for COG windows on object storage (the ``gdal`` defaults of
:mod:`cubestream.config`; override: ``CUBESTREAM_GDAL_<NAME>``)."""


def gdal_options(extra: dict[str, str] | None = None) -> dict[str, str]:
    """GDAL options: the ``gdal`` settings of :mod:`cubestream.config`, then ``extra``."""
    return {**gdal_settings(), **(extra or {})}


def layered_env(extra: dict[str, str] | None = None) -> Any:
    """Build the stackstac ``LayeredEnv`` that carries :func:`gdal_options` to every read.

    AWS credentials in ``extra`` (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``) travel in a
    :class:`StaticAWSSession` (:func:`cubestream._gdalenv.session_options`), from which rasterio
    hands them to GDAL's ``/vsis3/``.
    """
    import stackstac

    return stackstac.DEFAULT_GDAL_ENV.updated(always=session_options(gdal_options(extra)))
