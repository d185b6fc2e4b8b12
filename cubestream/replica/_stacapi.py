"""The STAC API of a served replica: a ``rustac serve`` child process with an in-memory backend.

Private helper of :mod:`cubestream.replica.serve`. The child runs in its own process group (a
Ctrl-C in the terminal reaches only the parent, which shuts everything down in order) and, on
Linux, gets SIGKILL when the thread that started it dies, so it never outlives its parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cubestream.errors import ReplicaError

__all__ = [
    "count_items",
    "log_tail",
    "rustac_executable",
    "start_rustac",
    "stop_process",
    "wait_ready",
]

_PR_SET_PDEATHSIG = 1


def rustac_executable() -> str:
    """Path of the ``rustac`` command: beside the running Python first, then on ``PATH``."""
    beside = Path(sys.executable).parent / "rustac"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("rustac")
    if found is None:
        raise ReplicaError(
            "the `rustac` command is not installed; install it with `pip install rustac`"
        )
    return found


def _die_with_parent() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` making Linux SIGKILL the child when its parent dies, or ``None``.

    libc's ``prctl`` is looked up here, before the fork, so the child only calls it.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def start_rustac(
    collection_file: Path, items_file: Path, *, addr: str, log_file: Path, bind: str | None = None
) -> subprocess.Popen[bytes]:
    """Start ``rustac serve`` at ``addr`` with the collection and items loaded.

    Parameters
    ----------
    collection_file, items_file : Path
        The served STAC documents.
    addr : str
        ``host:port`` the API answers at (``[host]:port`` for IPv6), as its links say.
    log_file : Path
        Where the child's stdout and stderr go.
    bind : str, optional
        ``host:port`` to bind, if not ``addr``.

    Returns
    -------
    subprocess.Popen
        The child process; stop it with :func:`stop_process`.
    """
    command = [rustac_executable(), "serve", "--addr", addr]
    command += ["--bind", bind] if bind else []
    command += [str(collection_file), str(items_file)]
    with log_file.open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(),
            process_group=0,
            close_fds=True,
        )


def log_tail(log_file: Path, lines: int = 20) -> str:
    """Return the last ``lines`` lines of a log file (empty if there is none)."""
    try:
        text = log_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def wait_ready(
    process: subprocess.Popen[bytes], url: str, log_file: Path, *, timeout: float = 30.0
) -> None:
    """Wait until ``GET url`` answers 200.

    Raises
    ------
    ReplicaError
        If the process exits first or ``timeout`` seconds pass; the message ends with the tail
        of its log.
    """
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise ReplicaError(
                f"the STAC API (rustac) exited with status {process.returncode} before "
                f"answering {url}; its log ends with:\n{log_tail(log_file)}"
            )
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
            if response.status == 200:
                return
        if time.monotonic() > deadline:
            raise ReplicaError(
                f"the STAC API (rustac) did not answer {url} within {timeout:.0f} s; "
                f"its log ends with:\n{log_tail(log_file)}"
            )
        time.sleep(0.05)


def count_items(stac_api: str, collection: str, *, page: int = 1000) -> int:
    """Count the items the STAC API serves in ``collection``, following ``next`` links."""
    url: str | None = f"{stac_api}/collections/{collection}/items?limit={page}"
    count = 0
    while url is not None:
        data = _get_json(url)
        count += len(data.get("features", []))
        url = next((link["href"] for link in data.get("links", []) if link["rel"] == "next"), None)
    return count


def _get_json(url: str) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data: dict[str, Any] = json.load(response)
    except (OSError, json.JSONDecodeError) as exc:
        raise ReplicaError(f"the STAC API did not answer GET {url}: {exc}") from exc
    return data


def stop_process(process: subprocess.Popen[bytes], *, grace: float = 5.0) -> None:
    """SIGTERM the process, then SIGKILL it if it still runs after ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
