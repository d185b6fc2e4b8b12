"""What a benchmark record carries besides its figures: machine, versions, commit, peak memory."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["PeakRss", "append_record", "git", "keep_and_print", "machine", "now", "versions"]

_REPO = Path(__file__).resolve().parent.parent


def now() -> str:
    """The current time, ISO 8601 in UTC, to the second."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def git() -> dict[str, Any]:
    """The commit of the repository and whether tracked files differ from it."""

    def run(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=_REPO, capture_output=True, text=True, check=True
            )
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": run("rev-parse", "--short", "HEAD"), "dirty": bool(status)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def machine() -> dict[str, Any]:
    """Platform, CPU model and count, memory and load averages of this machine."""
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_gb": round(memory / 2**30, 1),
        "python": platform.python_version(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def versions(packages: Iterable[str]) -> dict[str, str]:
    """Installed versions of ``packages`` (``gdal``: the GDAL rasterio links)."""
    out = {}
    for name in packages:
        if name == "gdal":
            import rasterio

            out[name] = str(rasterio.__gdal_version__)
            continue
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _high_water(pid: int) -> int:
    """The kernel's high-water mark of a process's resident memory (``VmHWM``), or 0."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


class PeakRss:
    """Sample the resident memory of some processes in a background thread; keep each peak.

    Each sample takes the larger of the resident size and, on Linux, the kernel's high-water
    mark (``VmHWM``, reset by exec, so right for spawned workers), which also catches peaks
    between two samples.

    Parameters
    ----------
    pids : iterable of int
        The processes to watch (a process that exits keeps its last peak).
    interval : float
        Seconds between samples.
    """

    def __init__(self, pids: Iterable[int], interval: float = 0.05) -> None:
        import psutil

        self._processes = {pid: psutil.Process(pid) for pid in pids}
        self.peaks: dict[int, int] = dict.fromkeys(self._processes, 0)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)

    def _sample(self) -> None:
        import psutil

        for pid, process in self._processes.items():
            try:
                rss = max(process.memory_info().rss, _high_water(pid))
                self.peaks[pid] = max(self.peaks[pid], rss)
            except psutil.Error:
                continue

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            time.sleep(self._interval)

    def __enter__(self) -> PeakRss:
        self._sample()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def megabytes(self) -> list[float]:
        """Peak resident memory of each process, in MB (10^6 bytes), in the order given."""
        return [round(peak / 1e6, 1) for peak in self.peaks.values()]


def keep_and_print(
    path: Path, record: dict[str, Any], table: Callable[[dict[str, Any]], str]
) -> dict[str, Any]:
    """Append ``record`` to the history ``path``, print its ``table``; return the record.

    The end of every benchmark's command line (:func:`benchmarks.l1_bytes.main` and the others).
    """
    append_record(path, record)
    print(table(record), flush=True)
    return record


def append_record(path: Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line (sorted keys) to the history file ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")
