"""Peak memory of a process and of its children, from the kernel's high-water marks.

``getrusage`` misleads for spawned processes: the ``ru_maxrss`` of a process started by fork and
exec (multiprocessing's 'spawn' context) begins at its parent's peak at the time of the spawn,
because the kernel carries the old address space's high-water mark over the exec. So
``RUSAGE_SELF`` of a spawned process, and ``RUSAGE_CHILDREN`` of any process that spawns workers
after growing, overstate them (a worker that never holds more than 300 MB reports the 1 GB its
parent held when it was started). ``VmHWM`` in ``/proc/PID/status`` is the high-water mark of the
current address space, which exec resets. :class:`MemoryWatch` reads it for its own process, and
every :data:`INTERVAL_S` for every live descendant (the mark only grows, so a read misses at most
the growth of a child's last interval). Linux only: elsewhere the figures are ``None``.
"""

from __future__ import annotations

import resource
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

__all__ = ["INTERVAL_S", "MemoryWatch", "high_water_mb", "rusage_mb"]

INTERVAL_S = 0.2
"""Seconds between two reads of the children's high-water marks."""


def high_water_mb(pid: int | str = "self") -> float | None:
    """``VmHWM`` of a process in MiB; ``None`` where there is no such process or no /proc."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def rusage_mb(who: int) -> float:
    """``ru_maxrss`` in MiB (it is in KiB on Linux); see the module docstring for its limits."""
    return round(resource.getrusage(who).ru_maxrss / 1024, 1)


class MemoryWatch:
    """Record the high-water marks of this process's descendants while the block runs.

    Examples
    --------
    >>> with MemoryWatch() as watch:  # doctest: +SKIP
    ...     run_a_pool()
    >>> watch.summary()  # doctest: +SKIP
    {'self_peak_rss': 812.3, 'children_peak_rss': 301.2, 'descendants_seen': 3, ...}
    """

    def __init__(self, interval_s: float = INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.children: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="memory-watch", daemon=True)

    def __enter__(self) -> MemoryWatch:
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
        self._read()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._read()

    def _read(self) -> None:
        """Fold the current high-water mark of every live descendant into :attr:`children`."""
        try:
            pids = [child.pid for child in psutil.Process().children(recursive=True)]
        except psutil.Error:
            return
        for pid in pids:
            mark = high_water_mb(pid)
            if mark is not None:
                self.children[pid] = max(mark, self.children.get(pid, 0.0))

    def summary(self) -> dict[str, Any]:
        """Peaks in MiB: this process, its largest descendant, and the ``getrusage`` figures."""
        return {
            "self_peak_rss": high_water_mb(),
            "children_peak_rss": max(self.children.values(), default=None),
            "descendants_seen": len(self.children),
            "rusage_self_maxrss": rusage_mb(resource.RUSAGE_SELF),
            "rusage_children_maxrss": rusage_mb(resource.RUSAGE_CHILDREN),
        }
