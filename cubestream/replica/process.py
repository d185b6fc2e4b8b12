"""Run ``cubestream replica serve`` in a subprocess, and stop it leaving nothing behind.

``start_replica_server`` runs the command exactly as a user would and returns the
:class:`~cubestream.endpoints.Endpoints` it prints; ``stop_replica_server`` stops it and checks
that nothing it started is left running. The demo, the pipeline's replica stage, the benchmarks
and the tests serve their replica this way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import cubestream
from cubestream.endpoints import Endpoints
from cubestream.errors import ReplicaError
from cubestream.replica.serve import FailStatus

__all__ = ["read_access_log", "start_replica_server", "stop_replica_server"]


def start_replica_server(
    root: Path,
    timeout: float = 120,
    *,
    access_log: Path | None = None,
    fail_rate: float = 0.0,
    fail_status: FailStatus = 503,
    fail_seed: int = 0,
    catalogue: str | None = None,
) -> tuple[subprocess.Popen[bytes], Endpoints]:
    """Start ``python -m cubestream.cli replica serve ROOT`` and wait for its endpoints line.

    The server runs in a new session; stop it with :func:`stop_replica_server`.

    Parameters
    ----------
    root : Path
        Replica directory.
    timeout : float
        Seconds to wait for the server to be ready.
    access_log : Path, optional
        Where the server logs S3 requests (``--access-log``); by default a temporary file.
    fail_rate, fail_status, fail_seed : float, int, int
        Fault injection (``--fail-rate``, ``--fail-status``, ``--fail-seed``): the share of
        object reads the S3 API answers with an error, its status, and the seed (see
        :mod:`cubestream.replica.serve`).
    catalogue : str, optional
        Serve the items in this catalogue's schema (``--catalogue``) instead of the replica's.

    Returns
    -------
    tuple of subprocess.Popen and Endpoints
        The server process and where it answers.

    Raises
    ------
    ReplicaError
        If the server exits or is not ready in time; the message holds its stderr.
    """
    command = [sys.executable, "-m", "cubestream.cli", "replica", "serve", str(root)]
    command += ["--access-log", str(access_log)] if access_log else []
    if fail_rate:
        command += ["--fail-rate", repr(fail_rate), "--fail-status", str(fail_status)]
        command += ["--fail-seed", str(fail_seed)]
    command += ["--catalogue", catalogue] if catalogue else []
    # files, not pipes: a full pipe would block a server that keeps writing
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            env=_child_env(),
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        try:
            line = _first_line(process, out, timeout)
            return process, Endpoints.from_json(line)
        except BaseException as exc:
            _kill(process)
            if isinstance(exc, ReplicaError):
                raise ReplicaError(f"{exc}; its stderr:\n{_read(err)}") from None
            raise


def _die_with_parent() -> None:
    """In the child before exec: ask Linux for SIGTERM when the parent dies (no orphan servers).

    A server holds the whole replica in memory (2.5 GB for ``small``); a benchmark or test
    killed without its clean-up would otherwise leave it running. Linux sends the signal when
    the *thread* that started the server ends: start it from a thread that outlives its use.
    """
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _child_env() -> dict[str, str]:
    """Return the environment with this cubestream first on the path, installed or not."""
    package_parent = str(Path(cubestream.__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_parent, path]))}


def _first_line(process: subprocess.Popen[bytes], out: IO[bytes], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = _read(out)
        if "\n" in text:
            return text.split("\n", 1)[0]
        if process.poll() is not None:
            raise ReplicaError(
                f"`cubestream replica serve` exited with status {process.returncode} before "
                "printing its endpoints"
            )
        if time.monotonic() > deadline:
            raise ReplicaError(f"`cubestream replica serve` was not ready within {timeout:.0f} s")
        time.sleep(0.05)


def _read(file: IO[bytes]) -> str:
    """Text of a file the child writes to (``pread``: the shared offset is left alone)."""
    size = os.fstat(file.fileno()).st_size
    return os.pread(file.fileno(), size, 0).decode("utf-8", "replace")


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def stop_replica_server(
    process: subprocess.Popen[bytes], *, sig: int = signal.SIGTERM, timeout: float = 20
) -> int:
    """Stop a server of :func:`start_replica_server` and check that no child is left running.

    Parameters
    ----------
    process : subprocess.Popen
        The server process.
    sig : int
        Signal asking it to stop (SIGTERM or SIGINT).
    timeout : float
        Seconds it has to stop before it is killed.

    Returns
    -------
    int
        Its exit status.

    Raises
    ------
    ReplicaError
        If it had to be killed, or a process it started (rustac) outlived it.
    """
    import psutil

    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    process.send_signal(sig)
    try:
        status = process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        raise ReplicaError(f"the replica server did not stop within {timeout:.0f} s") from None
    _, alive = psutil.wait_procs(children, timeout=5)
    if alive:
        for child in alive:
            child.kill()
        left = ", ".join(f"{child.pid} ({_name(child)})" for child in alive)
        raise ReplicaError(f"processes of the replica server outlived it: {left}")
    return status


def _name(process: Any) -> str:
    try:
        return " ".join(process.cmdline()[:3])
    except Exception:
        return "?"


def read_access_log(path: str | Path) -> list[dict[str, Any]]:
    """Read the S3 access log of a served replica (one dict per request, in order)."""
    with Path(path).open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]
