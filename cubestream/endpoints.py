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

    def gdal_env(self) -> dict[str, str]:
        """GDAL configuration for ``/vsis3/`` paths, as environment variables.

        Set them in ``os.environ`` (or a worker's environment): ``rasterio.Env`` refuses AWS
        credentials as options, so use :meth:`rasterio_env` with rasterio.
        """
        url = urllib.parse.urlsplit(self.s3_endpoint)
        return {
            "AWS_S3_ENDPOINT": url.netloc,
            "AWS_HTTPS": "YES" if url.scheme == "https" else "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_NO_SIGN_REQUEST": "NO",
            "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
        }

    def rasterio_env(self) -> Any:
        """Return a ``rasterio.Env`` reading ``/vsis3/`` paths from the served bucket."""
        import rasterio
        from rasterio.session import AWSSession

        options = self.gdal_env()
        session = AWSSession(
            aws_access_key_id=options.pop("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=options.pop("AWS_SECRET_ACCESS_KEY"),
            region_name=self.region,
            endpoint_url=options["AWS_S3_ENDPOINT"],
        )
        return rasterio.Env(session=session, **options)

    def storage_options(self) -> dict[str, Any]:
        """Return fsspec / s3fs ``storage_options`` for ``s3://`` URLs."""
        return {
            "key": self.aws_access_key_id,
            "secret": self.aws_secret_access_key,
            "client_kwargs": {"endpoint_url": self.s3_endpoint, "region_name": self.region},
        }

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments of ``boto3.client("s3", ...)``."""
        return {
            "endpoint_url": self.s3_endpoint,
            "region_name": self.region,
            "aws_access_key_id": self.aws_access_key_id,
            "aws_secret_access_key": self.aws_secret_access_key,
        }
