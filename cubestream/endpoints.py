"""Where a served world answers: its S3 API and STAC API, and the settings clients need.

:class:`Endpoints` is what ``cubestream replica serve`` prints (one JSON line) and what the
``--endpoints`` option of ``cubestream l1`` / ``l2`` reads. It lives outside
:mod:`cubestream.replica` so that the commands reading a served world do not import the replica
(the server itself, moto and rustac, are the ``[replica]`` extra).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import asdict, dataclass, fields
from typing import Any

from cubestream.errors import ReplicaError
from cubestream.layout import BUCKET, COLLECTION
from cubestream.storage import S3Settings

__all__ = ["REGION", "Endpoints"]

REGION = "us-west-2"
"""Region of the served bucket (Earth-search's ``sentinel-cogs`` is in us-west-2)."""
_KEY = "testing"


@dataclass(frozen=True, kw_only=True)
class Endpoints:
    """Where a served replica answers, and the settings clients need to reach it.

    Attributes
    ----------
    s3_endpoint : str
        URL of the S3 API, for example ``http://127.0.0.1:40123``.
    stac_api : str
        URL of the STAC API root.
    access_log : str
        Path of the JSON-lines log of S3 requests.
    bucket, region : str
        The bucket holding the objects and its region.
    aws_access_key_id, aws_secret_access_key : str
        Credentials accepted by the S3 API (objects are also readable anonymously).
    collection : str
        The served Sentinel-2 collection id (``sentinel-2-l2a``, or ``sentinel-2-c1-l2a`` for
        Earth Search Collection 1).
    """

    s3_endpoint: str
    stac_api: str
    access_log: str
    bucket: str = BUCKET
    region: str = REGION
    aws_access_key_id: str = _KEY
    aws_secret_access_key: str = _KEY
    collection: str = COLLECTION

    def to_json(self) -> str:
        """One-line JSON form (what ``cubestream replica serve`` prints)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, line: str) -> Endpoints:
        """Inverse of :meth:`to_json`."""
        try:
            data = json.loads(line)
            known = {f.name for f in fields(cls)}
            if not isinstance(data, dict) or set(data) - known:
                raise TypeError(f"expected an object with the fields {sorted(known)}")
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as exc:
            raise ReplicaError(
                f"not a line of `cubestream replica serve`: {line!r} ({exc})"
            ) from exc

    def http_url(self, key: str) -> str:
        """Plain HTTP URL of the object ``key`` (readable without credentials)."""
        return f"{self.s3_endpoint}/{self.bucket}/{urllib.parse.quote(key)}"

    def s3_url(self, key: str) -> str:
        """``s3://`` URL of the object ``key``."""
        return f"s3://{self.bucket}/{key}"

    def s3(self) -> S3Settings:
        """The storage settings of the served S3 API (:class:`cubestream.storage.S3Settings`)."""
        return S3Settings(
            endpoint_url=self.s3_endpoint,
            region=self.region,
            key=self.aws_access_key_id,
            secret=self.aws_secret_access_key,
        )

    def gdal_env(self) -> dict[str, str]:
        """GDAL configuration for ``/vsis3/`` paths (:meth:`S3Settings.gdal_options`).

        ``rasterio.Env`` refuses AWS credentials as options: use :meth:`rasterio_env`, or
        :func:`cubestream._gdalenv.rasterio_env` with these options.
        """
        return {**self.s3().gdal_options(), "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR"}

    def rasterio_env(self) -> Any:
        """A ``rasterio.Env`` that reads ``/vsis3/`` paths of this endpoint."""
        from cubestream._gdalenv import rasterio_env

        return rasterio_env(self.gdal_env())

    def storage_options(self) -> dict[str, Any]:
        """fsspec/s3fs ``storage_options`` for ``s3://`` URLs of this endpoint."""
        return self.s3().storage_options()

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments of ``boto3.client("s3", ...)`` for this endpoint."""
        return self.s3().boto3_kwargs()
