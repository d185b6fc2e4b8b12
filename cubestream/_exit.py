"""Exit codes of the ``cubestream`` command and its one error boundary.

Every error a user can cause or fix (a cubestream error, a missing or unreadable file, an
unreachable service) ends the command with one line on stderr and the code of its kind; anything
else is a bug: its traceback is printed with a request to report it. ``--debug`` or
``CUBESTREAM_DEBUG=1`` print the traceback of every error.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from enum import IntEnum

from cubestream.errors import CubestreamError, RemoteServiceError, UsageError, WorkFailedError

__all__ = ["DEBUG_ENV", "ExitCode", "debug_wanted", "error_kind", "guarded"]

DEBUG_ENV = "CUBESTREAM_DEBUG"
"""Environment variable that, set to 1, makes every error print its traceback."""


class ExitCode(IntEnum):
    """Exit codes of ``cubestream``, one per kind of ending (listed in the README)."""

    OK = 0
    """The command did all its work."""
    FAILED = 1
    """The command ran, but part of its work failed (a tile, a block, a stage); see its report."""
    USAGE = 2
    """Unknown option, missing argument, or an option value that cannot be used."""
    INPUT = 3
    """An input is missing, unreadable, malformed or of the wrong kind (tables, stores, configs)."""
    REMOTE = 4
    """A remote service (STAC API, object store, scheduler) cannot be reached or failed."""
    INTERNAL = 70
    """A bug in cubestream (an unexpected exception): its traceback is printed; please report it."""
    INTERRUPTED = 130
    """Interrupted (Ctrl-C)."""


_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


_REMOTE_MODULES = ("requests", "urllib3", "aiohttp", "botocore", "pystac_client")
"""Packages whose exceptions mean a service failed or could not be reached."""


def _is_remote(exc: BaseException) -> bool:
    if isinstance(exc, RemoteServiceError | ConnectionError | TimeoutError):
        return True
    return type(exc).__module__.split(".")[0] in _REMOTE_MODULES


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def error_kind(exc: BaseException) -> ExitCode:
    """The exit code of an exception: its kind, or :attr:`ExitCode.INTERNAL` for a bug."""
    if isinstance(exc, UsageError):
        return ExitCode.USAGE
    if isinstance(exc, WorkFailedError):
        return ExitCode.FAILED
    if isinstance(exc, CubestreamError):
        # remote when a service's failure caused it (a search, an object read), else input
        return ExitCode.REMOTE if any(map(_is_remote, _chain(exc))) else ExitCode.INPUT
    if _is_remote(exc):
        return ExitCode.REMOTE
    return ExitCode.INPUT if isinstance(exc, _FILE_ERRORS) else ExitCode.INTERNAL


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, CubestreamError) and exc.filename:
        text = f"{exc.strerror or type(exc).__name__}: {exc.filename}; check the path"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def debug_wanted(flag: bool = False) -> bool:
    """Whether tracebacks are wanted: ``--debug`` or ``CUBESTREAM_DEBUG`` set (not 0)."""
    return flag or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def _system_exit(exc: SystemExit) -> int:
    if exc.code is None or isinstance(exc.code, int):
        return int(exc.code or 0)
    print(f"cubestream: error: {exc.code}", file=sys.stderr)
    return int(ExitCode.FAILED)


def guarded(run: Callable[[], int], *, debug: bool = False) -> int:
    """Call ``run`` and turn every exception into its exit code (see the module docstring).

    Parameters
    ----------
    run : callable
        The command; returns its exit code.
    debug : bool
        Print the traceback of every error, not only of bugs.
    """
    try:
        return int(run())
    except KeyboardInterrupt:
        print("cubestream: interrupted", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except SystemExit as exc:
        return _system_exit(exc)
    except Exception as exc:
        kind = error_kind(exc)
        if kind is ExitCode.INTERNAL:
            traceback.print_exc()
            print(
                f"cubestream: internal error (a bug): {type(exc).__name__}: {_one_line(exc)}; "
                "please report it with the traceback above",
                file=sys.stderr,
            )
            return int(kind)
        if debug:
            traceback.print_exc()
        print(f"cubestream: error: {_one_line(exc)}", file=sys.stderr)
        return int(kind)
