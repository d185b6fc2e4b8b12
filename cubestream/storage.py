"""Where the stores and archives of a stage lie, and the settings that reach them.

:class:`S3Settings` holds how to reach an S3 API (endpoint, region, credentials) and gives what
each client needs from it: GDAL options for ``/vsis3/`` (which :mod:`cubestream._gdalenv` turns
into a rasterio session: the one way credentials reach rasterio), fsspec / s3fs
``storage_options`` (for h5py over fsspec files and for zarr stores), obstore's ``S3Store``
configuration (:meth:`S3Settings.obstore_config`) and boto3 keywords. The
replica's :class:`~cubestream.replica.serve.Endpoints` produce their settings with it.
:class:`StorageFlags` declares the storage flags the stage commands share.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

from cubestream.options import option

__all__ = ["S3Settings", "StorageFlags"]


@dataclass(frozen=True, kw_only=True)
class S3Settings:
    """How to reach an S3 API.

    Attributes
    ----------
    endpoint_url : str, optional
        The API's URL (``http://127.0.0.1:9000``); AWS's own by default.
    region : str, optional
        The bucket's region.
    key, secret, token : str, optional
        Credentials (access key id, secret access key, session token); without them requests
        are not signed.
    """

    endpoint_url: str | None = None
    region: str | None = None
    key: str | None = None
    secret: str | None = None
    token: str | None = None

    def gdal_options(self) -> dict[str, str]:
        """GDAL configuration options for ``/vsis3/`` paths.

        The credentials are among them by their GDAL names; open rasterio with
        :func:`cubestream._gdalenv.rasterio_env` (or a ``LayeredEnv`` of
        :func:`cubestream.sources.config.layered_env`), which moves them into a session.
        """
        out: dict[str, str] = {}
        if self.endpoint_url:
            url = urllib.parse.urlsplit(self.endpoint_url)
            out["AWS_S3_ENDPOINT"] = url.netloc
            out["AWS_HTTPS"] = "YES" if url.scheme == "https" else "NO"
            out["AWS_VIRTUAL_HOSTING"] = "FALSE"
        if self.key is not None and self.secret is not None:
            out["AWS_ACCESS_KEY_ID"] = self.key
            out["AWS_SECRET_ACCESS_KEY"] = self.secret
            if self.token:
                out["AWS_SESSION_TOKEN"] = self.token
        if self.region:
            out["AWS_REGION"] = out["AWS_DEFAULT_REGION"] = self.region
        out["AWS_NO_SIGN_REQUEST"] = "NO" if self.key is not None else "YES"
        return out

    def storage_options(self) -> dict[str, Any]:
        """Fsspec / s3fs ``storage_options`` for ``s3://`` URLs (files, h5py, zarr stores)."""
        out: dict[str, Any] = {}
        if self.key is not None and self.secret is not None:
            out.update(key=self.key, secret=self.secret)
            if self.token:
                out["token"] = self.token
        else:
            out["anon"] = True
        client = {"endpoint_url": self.endpoint_url, "region_name": self.region}
        client = {k: v for k, v in client.items() if v}
        if client:
            out["client_kwargs"] = client
        return out

    @classmethod
    def from_storage_options(cls, options: dict[str, Any] | None) -> S3Settings:
        """The settings that :meth:`storage_options` turned into ``options`` (its inverse).

        The loader takes fsspec ``storage_options``; the obstore path reads its endpoint,
        region and credentials back from them, so credentials travel one way for both.
        """
        options = options or {}
        client = options.get("client_kwargs") or {}
        anon = bool(options.get("anon"))
        return cls(
            endpoint_url=client.get("endpoint_url") or options.get("endpoint_url"),
            region=client.get("region_name"),
            key=None if anon else options.get("key"),
            secret=None if anon else options.get("secret"),
            token=None if anon else options.get("token"),
        )

    def obstore_config(self) -> dict[str, Any]:
        """Keyword arguments of ``obstore.store.S3Store(bucket, **kwargs)``.

        Path-style requests at ``endpoint_url`` (plain HTTP allowed when its scheme says so);
        unsigned requests without credentials.
        """
        config: dict[str, Any] = {}
        client: dict[str, Any] = {}
        if self.endpoint_url:
            config["endpoint"] = self.endpoint_url
            config["virtual_hosted_style_request"] = False
            client["allow_http"] = self.endpoint_url.startswith("http://")
        if self.region:
            config["region"] = self.region
        if self.key is not None and self.secret is not None:
            config["access_key_id"] = self.key
            config["secret_access_key"] = self.secret
            if self.token:
                config["session_token"] = self.token
        else:
            config["skip_signature"] = True
        return {"config": config, "client_options": client}

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments of ``boto3.client("s3", ...)``."""
        given = {
            "endpoint_url": self.endpoint_url,
            "region_name": self.region,
            "aws_access_key_id": self.key,
            "aws_secret_access_key": self.secret,
            "aws_session_token": self.token,
        }
        return {k: v for k, v in given.items() if v is not None}


@dataclass(frozen=True, kw_only=True)
class StorageFlags:
    """The storage settings of a stage command.

    Attributes
    ----------
    endpoints : str, optional
        A file holding the JSON line of ``cubestream replica serve``: the S3 endpoint and
        credentials of every ``s3://`` store and source of the stage.
    """

    endpoints: str | None = option(
        None, help="JSON line of `cubestream replica serve` (S3 settings)"
    )
