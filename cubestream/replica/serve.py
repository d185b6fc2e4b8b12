"""Serve a replica on loopback: an S3 API holding its objects and a STAC API holding its items.

``serve(root)`` (``cubestream replica serve DIR``) does, in order:

1. Check the replica: its spec (:func:`~cubestream.replica.spec.load_spec`), the collection and
   every line of the items file (JSON, ``type``, ``id``, ``collection``, ``geometry``, ``bbox``,
   ``properties.datetime``, and each asset href an existing file below ``objects/``). Nothing
   starts when something is wrong.
2. Check the ports asked for (0 picks a free one).
3. Start moto's S3 server in-process (werkzeug, threaded), create the bucket ``cubestream-replica``
   in ``us-west-2`` readable anonymously (GDAL ``/vsicurl/`` of the plain HTTP URL works as well as
   signed ``/vsis3/``, boto3 and s3fs), and put every file below ``objects/`` in it with its
   relative path as key (straight into moto's backend: a request per file would take minutes
   for the ERA5 Zarr store), then list the bucket through the API to check every object.
4. Start ``rustac serve`` (while step 3 runs) with the items whose asset hrefs are rewritten
   Earth-search style: ``href`` is the plain HTTP URL ``{s3_endpoint}/{bucket}/{key}`` and
   ``alternate.s3.href`` is ``s3://{bucket}/{key}``; check that the API serves as many items as
   the items file holds.
5. Print one JSON line (:meth:`Endpoints.to_json`) and block until SIGINT or SIGTERM, then stop
   rustac, the S3 server and remove the temporary files; the same happens if anything fails.

Fault injection
    With ``fail_rate > 0`` (``--fail-rate``) the S3 API answers that share of the GET and HEAD
    requests of objects with an S3 error document instead of the object: status ``fail_status``
    (503 ``SlowDown`` by default; 500 ``InternalError``, 502, 504, 429 ``TooManyRequests`` or a
    403 ``Throttling``), so tests can prove that clients retry. The choice is seeded
    (``fail_seed``) and depends only on the request and how often it was made before, not on the
    order of concurrent requests: a run is repeatable, and a retried request fails again with
    probability ``fail_rate``. Bucket requests (creation, listing) and the loading of the objects
    at start never fail. Failed requests are logged with their status, ``fault: true`` and
    ``bytes: 0``.

The access log
    One JSON line per S3 request made after the server is ready (the upload is not logged):
    ``time``, ``method``, ``path`` (``/bucket/key``), ``bucket``, ``key``, ``query``, ``range``
    (the ``Range`` header), ``status``, ``bytes`` (body bytes of the response), ``seconds`` and
    ``fault`` (an injected failure, logged with 0 bytes).
    Each line is written and flushed just before the last chunk of its response is sent, so a
    client that has read a response finds its line in the file. A given ``access_log`` file is
    truncated at start. The server closes the connection after each response (werkzeug has no
    keep-alive), moto reads a whole object to answer a range request of it, and the one process
    answers a few hundred requests a second at most (the GIL).

What the STAC API (``rustac serve``, in-memory backend, rustac 0.9 / CLI 0.2.18) answers
    Item search by ``collections``, ``ids``, ``bbox``, ``intersects`` and ``datetime``, paged
    with ``limit`` and ``next`` links: ``pystac_client.Client.open(stac_api).search(
    collections=[...], bbox=..., datetime=...)`` works. It does not implement the Query, Filter
    (CQL2), Sort or Fields extensions and does not report ``numberMatched``:
    ``query={"eo:cloud_cover": {"lt": 50}}`` or a ``filter`` together with ``collections``
    return *no* items (pystac-client warns "Server does not conform to QUERY/FILTER"), and
    without ``collections`` they are ignored. Filter on ``eo:cloud_cover`` on the client side.
    ``GET /search`` with both ``collections`` and ``limit`` answers 500; pystac-client uses
    ``POST /search``, which works.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import types
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cubestream.errors import PortInUseError, ReplicaError
from cubestream.replica._stacdocs import read_stac, write_served_stac
from cubestream.replica.layout import COLLECTION, OBJECTS_DIR
from cubestream.replica.spec import BUCKET, load_spec
from cubestream.storage import S3Settings

if TYPE_CHECKING:
    from cubestream.replica._s3server import Faults

__all__ = ["REGION", "Endpoints", "FailStatus", "serve", "served"]

REGION = "us-west-2"
"""Region of the served bucket (Earth-search's ``sentinel-cogs`` is in us-west-2)."""
_KEY = "testing"
FailStatus = Literal[403, 429, 500, 502, 503, 504]
"""HTTP statuses an injected failure can answer with (see the module's "Fault injection")."""
_ONE_AT_A_TIME = threading.Lock()  # moto's backends are global to the process


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
        """Return a ``rasterio.Env`` reading ``/vsis3/`` paths from the served bucket."""
        from cubestream._gdalenv import rasterio_env

        return rasterio_env(self.gdal_env())

    def storage_options(self) -> dict[str, Any]:
        """Return fsspec / s3fs ``storage_options`` for ``s3://`` URLs."""
        return self.s3().storage_options()

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments of ``boto3.client("s3", ...)``."""
        return self.s3().boto3_kwargs()


class _Stopped(BaseException):
    """Raised in the main thread by the first SIGINT or SIGTERM that reaches :func:`serve`."""


def serve(
    root: Path,
    *,
    host: str = "127.0.0.1",
    s3_port: int = 0,
    stac_port: int = 0,
    access_log: Path | None = None,
    fail_rate: float = 0.0,
    fail_status: FailStatus = 503,
    fail_seed: int = 0,
    catalogue: str | None = None,
) -> None:
    """Serve the replica in ``root`` until SIGINT or SIGTERM, printing one JSON line when ready.

    Parameters
    ----------
    root : Path
        Replica directory made by ``cubestream replica create``.
    host : str
        Loopback address to bind.
    s3_port, stac_port : int
        Ports of the S3 API and the STAC API; 0 picks free ports.
    access_log : Path, optional
        JSON-lines log of the S3 requests; by default a file in a temporary directory.
    fail_rate : float
        Share of the object GET and HEAD requests answered with an error (see "Fault injection"
        in the module's description); 0 serves every request.
    fail_status : {503, 500, 502, 504, 429, 403}
        HTTP status of those errors.
    fail_seed : int
        Seed of the choice of the requests that fail.
    catalogue : str, optional
        Serve the items in this catalogue's schema (``earth-search``, ``earth-search-c1``,
        ``planetary-computer``, ``cdse``) instead of the spec's; the replica holds every schema.

    Raises
    ------
    ReplicaNotFoundError
        If ``root`` holds no complete replica.
    StacItemError
        If a STAC document of the replica is corrupt.
    PortInUseError
        If a port asked for is taken.
    ReplicaError
        If a server fails to start, or stops while serving, or a fault option is invalid.
    """
    faults = _faults(fail_rate, fail_status, fail_seed)
    with (
        _stop_on_signals(),
        contextlib.suppress(_Stopped),
        _serving(root, host, (s3_port, stac_port), access_log, faults, catalogue) as running,
    ):
        print(running.endpoints.to_json(), flush=True)
        while True:
            running.check()
            time.sleep(0.5)


@contextmanager
def served(
    root: Path,
    *,
    host: str = "127.0.0.1",
    s3_port: int = 0,
    stac_port: int = 0,
    access_log: Path | None = None,
    fail_rate: float = 0.0,
    fail_status: FailStatus = 503,
    fail_seed: int = 0,
    catalogue: str | None = None,
) -> Iterator[Endpoints]:
    """Serve the replica in ``root`` while the ``with`` block runs (see :func:`serve`).

    One replica at a time can be served per process. The STAC API child process is killed if
    the thread that entered the block dies, so enter it from a thread that outlives the block.
    The parameters are those of :func:`serve`.

    Yields
    ------
    Endpoints
        Where the S3 API and the STAC API answer.
    """
    faults = _faults(fail_rate, fail_status, fail_seed)
    ports = (s3_port, stac_port)
    with _serving(root, host, ports, access_log, faults, catalogue) as running:
        yield running.endpoints


def _faults(rate: float, status: int, seed: int) -> Faults:
    """The fault options, checked before anything starts (no heavy import)."""
    from cubestream.replica._s3server import Faults

    return Faults(rate, status, seed)


@dataclass(frozen=True, kw_only=True)
class _Running:
    endpoints: Endpoints
    s3_alive: Callable[[], bool]
    stac_process: subprocess.Popen[bytes]
    stac_log: Path

    def check(self) -> None:
        """Raise :class:`ReplicaError` if a server stopped."""
        from cubestream.replica._stacapi import log_tail

        if self.stac_process.poll() is not None:
            raise ReplicaError(
                f"the STAC API (rustac) exited with status {self.stac_process.returncode}; "
                f"its log ends with:\n{log_tail(self.stac_log)}"
            )
        if not self.s3_alive():
            raise ReplicaError("the S3 API server thread stopped")


@contextmanager
def _serving(
    root: Path,
    host: str,
    ports: tuple[int, int],
    access_log: Path | None,
    faults: Faults,
    catalogue: str | None,
) -> Iterator[_Running]:
    # heavy imports (moto, boto3) only once the replica is known to be sound
    from cubestream.replica._s3server import AccessLog, S3Server, upload_objects

    root = Path(root)
    s3_port, stac_port = ports
    load_spec(root)
    docs = read_stac(root, catalogue)
    _check_ports(host, s3_port, stac_port)
    if not _ONE_AT_A_TIME.acquire(blocking=False):
        raise ReplicaError("a replica is already served in this process; stop it first")
    with ExitStack() as stack:
        stack.callback(_ONE_AT_A_TIME.release)
        tmp = Path(tempfile.mkdtemp(prefix="cubestream-serve-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        log = AccessLog(access_log or tmp / "s3-access.ndjson")
        stack.callback(log.close)
        s3 = S3Server(host, s3_port, log, faults)
        s3_endpoint = f"http://{_url_host(host)}:{s3.port}"
        stack.callback(s3.stop, s3_endpoint)
        items_file = write_served_stac(docs, tmp / "stac", http_base=s3_endpoint, bucket=BUCKET)
        stac = _StacApi(stack, items_file, host, stac_port, tmp / "rustac.log")
        stac.collection = docs.collection_id
        stac.start()  # before any thread of ours runs: the child is forked from one thread
        s3.start()
        endpoints = Endpoints(
            s3_endpoint=s3_endpoint,
            stac_api=stac.url,
            access_log=str(log.path.resolve()),
            collection=docs.collection_id,
        )
        upload_objects(_s3_client(endpoints), root / OBJECTS_DIR, BUCKET, REGION)
        stac.wait_ready(expected_items=len(docs.items))
        log.enable()
        faults.arm()
        yield _Running(
            endpoints=endpoints, s3_alive=s3.is_alive, stac_process=stac.process, stac_log=stac.log
        )


class _StacApi:
    """The rustac child: started on a free port, restarted if another process took the port."""

    def __init__(self, stack: ExitStack, items_file: Path, host: str, port: int, log: Path):
        self._stack = stack
        self._items_file = items_file
        self._host = host
        self._asked = port
        self.log = log
        self.port = port or _free_port(host)
        self.collection = COLLECTION
        self.process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{_url_host(self._host)}:{self.port}"

    def start(self) -> None:
        from cubestream.replica._stacapi import start_rustac, stop_process

        collection_file = self._items_file.with_name("collection.json")
        addr = f"{_url_host(self._host)}:{self.port}"
        bind = f"0.0.0.0:{self.port}" if self._host in ("", "0.0.0.0") else None
        self.process = start_rustac(
            collection_file, self._items_file, addr=addr, log_file=self.log, bind=bind
        )
        self._stack.callback(stop_process, self.process)

    def wait_ready(self, *, expected_items: int, tries: int = 3) -> None:
        from cubestream.replica._stacapi import count_items, log_tail, wait_ready

        for attempt in range(tries):
            try:
                wait_ready(self.process, f"{self.url}/collections/{self.collection}", self.log)
                break
            except ReplicaError:
                lost_port = "Address already in use" in log_tail(self.log)
                if self._asked and lost_port:
                    raise PortInUseError(
                        f"STAC port {self._host}:{self._asked} is already in use; choose another "
                        "port, or 0 to pick a free one"
                    ) from None
                if not lost_port or attempt == tries - 1:
                    raise
                self.port = _free_port(self._host)
                self.start()
        count = count_items(self.url, self.collection)
        if count != expected_items:
            raise ReplicaError(
                f"the STAC API serves {count} items of {self.collection} but the replica holds "
                f"{expected_items}; the log of rustac is {self.log}"
            )


def _s3_client(endpoints: Endpoints) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=32,
        retries={"max_attempts": 3, "mode": "standard"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.client("s3", config=config, **endpoints.boto3_kwargs())


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _free_port(host: str) -> int:
    with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
    return port


def _check_ports(host: str, s3_port: int, stac_port: int) -> None:
    """Raise :class:`PortInUseError` if a nonzero port asked for cannot be bound."""
    if s3_port and s3_port == stac_port:
        raise PortInUseError(
            f"the S3 API and the STAC API cannot share port {host}:{s3_port}; "
            "choose two ports, or 0 to pick free ones"
        )
    for what, port in (("S3", s3_port), ("STAC", stac_port)):
        if not port:
            continue
        with socket.socket(_family(host), socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise ReplicaError(
                        f"cannot bind the {what} API to {host}:{port}: {exc}"
                    ) from exc
                raise PortInUseError(
                    f"{what} port {host}:{port} is already in use; choose another port, "
                    "or 0 to pick a free one"
                ) from exc


@contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn the first SIGINT or SIGTERM into :class:`_Stopped`; ignore later ones; restore."""
    stopping = False

    def handler(signum: int, frame: types.FrameType | None) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            raise _Stopped(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
