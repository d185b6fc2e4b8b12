"""Where the stores and archives of a stage lie, and the settings that reach them.

:class:`S3Settings` holds how to reach an S3 API (endpoint, region, credentials) and gives what
each client needs from it: GDAL options for ``/vsis3/`` (which :mod:`cubestream._gdalenv` turns
into a rasterio session: the one way credentials reach rasterio), fsspec / s3fs
``storage_options`` (for h5py over fsspec files and for zarr stores), obstore's ``S3Store``
configuration (:meth:`S3Settings.obstore_config`) and boto3 keywords. The
replica's :class:`~cubestream.replica.serve.Endpoints` produce their settings with it.
:class:`StorageFlags` declares the storage flags the stage commands share.

The stages open their stores and files here, so that settings reach every client one way: a URL
plus :data:`Settings` (an :class:`S3Settings`, or the fsspec ``storage_options`` the stage
configs carry) give a zarr store (:func:`zarr_store`, :func:`open_group`), an fsspec file system
or file (:func:`filesystem`, :func:`open_file`) or an h5py file (:func:`open_h5`). Local paths
take no settings; fsspec URLs (``s3://``, ``file://``, ``memory://``) take them all.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from cubestream.options import option

if TYPE_CHECKING:
    import h5py
    import zarr
    from fsspec import AbstractFileSystem
    from fsspec.core import OpenFile
    from zarr.storage import FsspecStore, LocalStore

__all__ = [
    "S3Settings",
    "Settings",
    "StorageFlags",
    "ZarrMode",
    "filesystem",
    "is_url",
    "open_file",
    "open_group",
    "open_h5",
    "storage_options",
    "zarr_store",
]

ZarrMode = Literal["r", "r+", "a", "w", "w-"]
"""How a zarr store is opened: read only, read/write existing, read/write or create, overwrite,
create (failing if it exists)."""


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


Settings: TypeAlias = "S3Settings | Mapping[str, Any] | None"
"""How to reach a URL: :class:`S3Settings`, fsspec ``storage_options``, or nothing."""


def storage_options(settings: Settings) -> dict[str, Any]:
    """The fsspec ``storage_options`` of ``settings`` (a copy; empty for None)."""
    if isinstance(settings, S3Settings):
        return settings.storage_options()
    return dict(settings or {})


def _url_options(url: str | Path, settings: Settings) -> dict[str, Any]:
    """The storage options for ``url``: none for a local path."""
    return storage_options(settings) if is_url(url) else {}


def is_url(url: str | Path) -> bool:
    """Whether zarr and fsspec treat ``url`` as an fsspec URL rather than a local path.

    zarr's own rule: a ``://`` (``file://`` included) or a chained ``::`` URL other than
    ``local://``.
    """
    if isinstance(url, Path):
        return False
    return "://" in url or ("::" in url and "local://" not in url)


def zarr_store(
    url: str | Path, settings: Settings = None, *, mode: ZarrMode = "r"
) -> FsspecStore | LocalStore:
    """The zarr v3 store at ``url``: a ``LocalStore`` for a path, an ``FsspecStore`` for a URL.

    The same store ``zarr.open_group(url, mode=mode, storage_options=...)`` builds, with the
    settings applied in one place; pass it to ``zarr.open_group``, ``zarr.open_array`` or
    ``xarray.open_zarr`` with the same ``mode``.

    Parameters
    ----------
    url : str or Path
        A local path or an fsspec URL (``s3://bucket/store.zarr``).
    settings : S3Settings or dict, optional
        How to reach a URL; ignored for a local path.
    mode : {"r", "r+", "a", "w", "w-"}
        ``"r"`` gives a read-only store; the others a writable one.

    Raises
    ------
    FileNotFoundError
        If ``url`` is a local path that does not exist and ``mode`` is ``"r"`` or ``"r+"``.
    """
    from zarr.core.sync import sync
    from zarr.storage import FsspecStore, LocalStore

    read_only = mode == "r"
    if not is_url(url):
        return sync(LocalStore.open(Path(url), mode=mode, read_only=read_only))
    return FsspecStore.from_url(
        str(url), storage_options=storage_options(settings), read_only=read_only
    )


def open_group(
    url: str | Path,
    settings: Settings = None,
    *,
    mode: ZarrMode = "r",
    zarr_format: Literal[2, 3] | None = 3,
    use_consolidated: bool | None = None,
) -> zarr.Group:
    """``zarr.open_group`` of the :func:`zarr_store` at ``url`` (a zarr v3 group by default).

    Parameters
    ----------
    url, settings, mode
        As for :func:`zarr_store`.
    zarr_format : {3, 2, None}
        The format the group must have (None: either, v3 first).
    use_consolidated : bool, optional
        Whether to use the consolidated metadata (None: where there is some).
    """
    import zarr

    return zarr.open_group(
        zarr_store(url, settings, mode=mode),
        mode=mode,
        zarr_format=zarr_format,
        use_consolidated=use_consolidated,
    )


def filesystem(url: str, settings: Settings = None) -> tuple[AbstractFileSystem, str]:
    """The fsspec file system of ``url`` (local for a path) and the path on it."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(url, **_url_options(url, settings))
    return fs, str(path)


def open_file(url: str, settings: Settings = None, mode: str = "rb") -> OpenFile:
    """``fsspec.open(url, mode)`` with the settings: a context manager giving the file object.

    Writing creates the parent directories of a local path, as ``fsspec.open`` does.
    """
    import fsspec

    return fsspec.open(url, mode, **_url_options(url, settings))


@contextmanager
def open_h5(
    url: str,
    settings: Settings = None,
    *,
    block_size: int | None = None,
    cache_type: str | None = None,
) -> Iterator[h5py.File]:
    """Open an HDF5 file for reading: with h5py for a local path, over an fsspec file for a URL.

    Parameters
    ----------
    url : str
        A local path, a ``file://`` URL (opened as its path) or an fsspec URL.
    settings : S3Settings or dict, optional
        How to reach a URL.
    block_size : int, optional
        fsspec read size of a URL (HDF5 reads are small and scattered); the file system's
        default if None.
    cache_type : str, optional
        fsspec cache of a URL (``"blockcache"`` keeps every block read); the file system's
        default (``"readahead"`` for S3) if None.
    """
    import h5py

    if not is_url(url) or url.startswith("file://"):
        with h5py.File(url.removeprefix("file://"), "r") as local:
            yield local
        return
    fs, path = filesystem(url, settings)
    given = {"block_size": block_size, "cache_type": cache_type}
    with (
        fs.open(path, "rb", **{k: v for k, v in given.items() if v is not None}) as raw,
        h5py.File(raw, "r") as remote,
    ):
        yield remote
