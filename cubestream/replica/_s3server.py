"""The S3 API of a served replica: moto's S3 server in-process, with an exact access log.

Private helper of :mod:`cubestream.replica.serve`. moto's WSGI application runs under werkzeug's
threaded server in a daemon thread; a small middleware appends one JSON line per request to the
access log (see :class:`AccessLog` for the fields), and another can answer a seeded share of the
object reads with an S3 error instead of the object (see :class:`Faults`). moto's backends are
global to the process, so one S3 server runs per process at a time, and its state is reset when
the server stops.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import mimetypes
import os
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from xml.etree import ElementTree

from cubestream.errors import PortInUseError, ReplicaError

if TYPE_CHECKING:
    from werkzeug.serving import BaseWSGIServer

__all__ = ["FAULT_CODES", "AccessLog", "Faults", "S3Server", "upload_objects"]

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

CONTENT_TYPES = {
    ".tif": "image/tiff; application=geotiff; profile=cloud-optimized",
    ".h5": "application/x-hdf5",
    ".json": "application/json",
}
"""Content type of the objects by suffix (others are guessed, then ``binary/octet-stream``)."""
_S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"
_FAULT = "cubestream.fault"
"""WSGI environ key set on requests answered by :class:`FaultMiddleware`."""

FAULT_CODES: dict[int, tuple[str, str]] = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "The server received an invalid response. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
    504: ("GatewayTimeout", "The server did not answer in time. Please try again."),
    429: ("TooManyRequests", "Please reduce your request rate."),
    403: ("Throttling", "Rate exceeded."),
}
"""S3 error code and message of each status an injected failure may answer with.

503 ``SlowDown`` is what S3 answers when a prefix is read too fast; 429 and a 403 ``Throttling``
are what other S3-compatible stores and gateways answer for the same reason.
"""


class AccessLog:
    """Thread-safe JSON-lines log of the S3 requests, one line per request, flushed each time.

    Each line holds ``time`` (ISO 8601, UTC, when the response ended), ``method``, ``path``
    (``/bucket/key``, URL-decoded), ``bucket``, ``key``, ``query`` (the raw query string),
    ``range`` (the ``Range`` header or ``null``), ``status``, ``bytes`` (body bytes of the
    response), ``seconds`` (time from the request to its last body chunk) and ``fault`` (true
    when the request was answered with an injected error: its ``bytes`` are then 0, the small XML
    error body is not counted, so the bytes of a log sum the object bytes sent). A line is written
    before the last chunk of its response is sent, so it is in the file once a client has read
    the response. Nothing is written
    until :meth:`enable` is called, so the log holds the clients' requests and not the upload.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("w", encoding="utf-8")
        self._lock = threading.Lock()
        self._enabled = threading.Event()

    def enable(self) -> None:
        """Start recording requests."""
        self._enabled.set()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a JSON line and flush it."""
        if not self._enabled.is_set():
            return
        line = json.dumps(record, separators=(",", ":")) + "\n"
        with self._lock:
            if not self._file.closed:
                self._file.write(line)
                self._file.flush()

    def close(self) -> None:
        """Stop recording and close the file."""
        self._enabled.clear()
        with self._lock:
            self._file.close()


class _LoggedBody:
    """The body of a wrapped application's response, logged as its last chunk goes out.

    The record is written just before the last chunk is handed to the server, so a client that
    has read a whole response finds its line in the log. ``bytes`` counts the chunks the body
    yielded; a body that fails or is closed early is logged with the bytes yielded so far.
    """

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self._body = body
        self._done: Callable[[int], None] | None = done
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        chunks = iter(self._body)
        chunk = next(chunks, None)
        while chunk is not None:
            following = next(chunks, None)
            self.sent += len(chunk)
            if following is None:
                self._finish()
            yield chunk
            chunk = following
        self._finish()

    def _finish(self) -> None:
        if self._done is not None:
            done, self._done = self._done, None
            done(self.sent)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()


class AccessLogMiddleware:
    """WSGI middleware writing one :class:`AccessLog` record per request."""

    def __init__(self, app: WSGIApp, log: AccessLog) -> None:
        self.app = app
        self.log = log

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Call the wrapped application; the record is written when the body is closed."""
        started = time.perf_counter()
        status = [500]

        def record_status(code: str, headers: Any, exc_info: Any = None) -> Any:
            status[0] = int(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        def done(sent: int) -> None:
            self.log.write(_record(environ, status[0], sent, time.perf_counter() - started))

        try:
            body = self.app(environ, record_status)
        except BaseException:
            done(0)
            raise
        return _LoggedBody(body, done)


def _path(environ: dict[str, Any]) -> str:
    """The request's URL-decoded path (``/bucket/key``)."""
    return str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")


def _record(environ: dict[str, Any], status: int, sent: int, seconds: float) -> dict[str, Any]:
    path = _path(environ)
    bucket, _, key = path.lstrip("/").partition("/")
    fault = bool(environ.get(_FAULT, False))
    return {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        "method": environ.get("REQUEST_METHOD", ""),
        "path": path,
        "bucket": bucket,
        "key": key,
        "query": environ.get("QUERY_STRING", ""),
        "range": environ.get("HTTP_RANGE"),
        "status": status,
        "bytes": 0 if fault else sent,
        "seconds": round(seconds, 6),
        "fault": fault,
    }


class Faults:
    """Which object reads fail: a seeded, repeatable share of the GET and HEAD requests of objects.

    The decision for a request is a hash of the seed, the request (method, path, query, ``Range``)
    and how many times the same request was seen before, mapped to [0, 1) and compared with
    ``rate``. It does not depend on the order in which concurrent requests arrive, so a run is
    repeatable, and a retried request is decided afresh (it fails again with probability
    ``rate``). Requests of the bucket itself (listing, creation, policy) and anything that is not
    a GET or HEAD of an object never fail, nor does anything before :meth:`arm`.

    Parameters
    ----------
    rate : float
        Share of object reads answered with an error, in [0, 1].
    status : int
        HTTP status of the errors, a key of :data:`FAULT_CODES`.
    seed : int
        Seed of the decisions.

    Raises
    ------
    ReplicaError
        If ``rate`` is outside [0, 1] or ``status`` is not one of :data:`FAULT_CODES`.
    """

    def __init__(self, rate: float = 0.0, status: int = 503, seed: int = 0) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ReplicaError(f"fail rate must be within [0, 1], not {rate}")
        if status not in FAULT_CODES:
            raise ReplicaError(
                f"fail status {status} is not an S3 error the server can inject; choose one of "
                f"{sorted(FAULT_CODES)}"
            )
        self.rate = rate
        self.status = status
        self.seed = seed
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()
        self._armed = threading.Event()

    def arm(self) -> None:
        """Start failing requests (once the replica is loaded)."""
        self._armed.set()

    def fails(self, environ: dict[str, Any]) -> bool:
        """Whether to answer this request with an error."""
        if self.rate <= 0.0 or not self._armed.is_set():
            return False
        method = environ.get("REQUEST_METHOD", "")
        bucket, _, key = _path(environ).lstrip("/").partition("/")
        if method not in ("GET", "HEAD") or not bucket or not key or bucket == "moto-api":
            return False
        request = f"{method} {bucket}/{key}?{environ.get('QUERY_STRING', '')} "
        request += str(environ.get("HTTP_RANGE"))
        with self._lock:
            seen = self._seen.get(request, 0)
            self._seen[request] = seen + 1
        digest = hashlib.blake2b(f"{self.seed}|{seen}|{request}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < self.rate

    def body(self, environ: dict[str, Any]) -> bytes:
        """The S3 XML error document of an injected failure."""
        code, message = FAULT_CODES[self.status]
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<Resource>{_xml_escape(_path(environ))}</Resource>"
            f"<RequestId>{os.urandom(8).hex().upper()}</RequestId></Error>"
        ).encode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class FaultMiddleware:
    """WSGI middleware answering the requests :class:`Faults` picks with an S3 error."""

    def __init__(self, app: WSGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer with the error, or pass the request on."""
        if not self.faults.fails(environ):
            return self.app(environ, start_response)
        environ[_FAULT] = True
        body = self.faults.body(environ)
        status = f"{self.faults.status} {_REASONS[self.faults.status]}"
        headers = [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))]
        start_response(status, headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [body]


_REASONS = {
    403: "Forbidden",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _handler_class() -> type:
    """Return moto's request handler, without werkzeug's line per request on stderr."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    class QuietHandler(MotoRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Skip: requests go to the access log."""

    return QuietHandler


class S3Server:
    """moto's S3 API on ``host:port``, bound at construction, serving after :meth:`start`.

    Parameters
    ----------
    host : str
        Address to bind.
    port : int
        Port to bind; 0 picks a free one.
    log : AccessLog
        Where requests are recorded.
    faults : Faults, optional
        Which object reads to answer with an error (none by default).

    Raises
    ------
    PortInUseError
        If ``port`` is taken.
    """

    def __init__(self, host: str, port: int, log: AccessLog, faults: Faults | None = None) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        moto_app: WSGIApp = DomainDispatcherApplication(create_backend_app)
        if faults is not None:
            moto_app = FaultMiddleware(moto_app, faults)
        app = AccessLogMiddleware(moto_app, log)
        try:
            self._server: BaseWSGIServer = make_server(
                host, port, app, threaded=True, request_handler=_handler_class()
            )
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"S3 port {host}:{port} is already in use; choose another port, "
                    "or 0 to pick a free one"
                ) from exc
            raise
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="cubestream-s3", daemon=True
        )

    def start(self) -> None:
        """Serve requests in a daemon thread."""
        self._thread.start()

    def is_alive(self) -> bool:
        """Whether the serving thread runs."""
        return self._thread.is_alive()

    def stop(self, endpoint: str) -> None:
        """Reset moto's state (frees the objects), stop serving and close the socket."""
        if self._thread.is_alive():
            request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
            with contextlib.suppress(OSError):  # shutting down anyway
                urllib.request.urlopen(request, timeout=10).close()
            self._server.shutdown()
            self._thread.join(timeout=10)
        self._server.server_close()


def _public_read_policy(bucket: str) -> str:
    # moto checks a HEAD request against "s3:HeadObject" (AWS uses s3:GetObject for both)
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "PublicRead",
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": ["s3:GetObject", "s3:HeadObject", "s3:ListBucket"],
                    "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                }
            ],
        }
    )


def _content_type(path: Path) -> str:
    return (
        CONTENT_TYPES.get(path.suffix)
        or mimetypes.guess_type(path.name)[0]
        or ("binary/octet-stream")
    )


def upload_objects(client: Any, objects: Path, bucket: str, region: str) -> int:
    """Create a publicly readable ``bucket`` and put every file below ``objects`` into it.

    The bucket and its policy are made through the S3 API; the objects are put straight into
    moto's S3 backend of this process, which is about 30 times faster than a ``PutObject`` per
    file (the server is bound by the GIL to about 150 requests a second, and the ERA5 Zarr store
    is thousands of small files). The S3 API then lists the bucket to check that every object is
    served with its size, anonymously.

    Parameters
    ----------
    client : botocore S3 client
        Client pointed at the S3 server of this process.
    objects : Path
        Directory of the objects; a file's key is its path below it, in POSIX form.
    bucket, region : str
        Bucket to create, and its region.

    Returns
    -------
    int
        Number of objects.

    Raises
    ------
    ReplicaError
        If an object cannot be put, or the bucket does not list every object afterwards.
    """
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    client.put_bucket_policy(Bucket=bucket, Policy=_public_read_policy(bucket))
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    sizes = {}
    for path in sorted(Path(d) / f for d, _, names in os.walk(objects) for f in names):
        key = path.relative_to(objects).as_posix()
        try:
            value = path.read_bytes()
            backend.put_object(bucket, key, value).set_metadata(
                {"Content-Type": _content_type(path)}
            )
        except Exception as exc:
            raise ReplicaError(f"putting {path} as s3://{bucket}/{key} failed: {exc}") from exc
        sizes[key] = len(value)
    _check_listing(client.meta.endpoint_url, bucket, sizes)
    return len(sizes)


def _listing(endpoint: str, bucket: str) -> dict[str, int]:
    """Size of every object the bucket lists, read anonymously with ``ListObjectsV2``."""
    listed: dict[str, int] = {}
    token: str | None = ""
    while token is not None:
        query = urllib.parse.urlencode(
            {"list-type": "2", "continuation-token": token} if token else {"list-type": "2"}
        )
        with urllib.request.urlopen(f"{endpoint}/{bucket}?{query}", timeout=60) as response:
            tree = ElementTree.parse(response).getroot()
        for entry in tree.iterfind(f"{_S3_NS}Contents"):
            listed[entry.findtext(f"{_S3_NS}Key", "")] = int(entry.findtext(f"{_S3_NS}Size", "-1"))
        token = tree.findtext(f"{_S3_NS}NextContinuationToken")
    return listed


def _check_listing(endpoint: str, bucket: str, sizes: dict[str, int]) -> None:
    listed = _listing(endpoint, bucket)
    if listed != sizes:
        wrong = sorted(set(listed.items()) ^ set(sizes.items()))[:5]
        raise ReplicaError(
            f"bucket {bucket} lists {len(listed)} objects after {len(sizes)} were put; "
            f"keys that differ (key, size): {wrong}"
        )
