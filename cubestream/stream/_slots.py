"""Batch slots in shared memory that DataLoader workers reuse once the main process is done.

A worker sends a batch to the main process through shared memory. Fresh shared memory for
every batch means faulting in fresh pages every time, which on some machines costs as much
as decoding. So each worker keeps a few *slots* (one shared tensor per variable, batch-sized)
and copies each batch into a free one. The batch travels with a :class:`Lease`; the loader
copies the batch out (or the pin-memory thread already did) and hands the lease back through
the worker's return queue, after which the worker may write the slot again.

A batch the consumer still holds keeps its slot, across passes too. Batches that never reach
the consumer (a pass left early: the DataLoader drops what its workers had sent) would keep
theirs forever, so before workers that persist begin a new pass, the loader sends each one a
:class:`Held` message naming the slots it still holds; the worker takes back all others.
Leases carry the worker's process id: a message meant for an earlier worker is ignored. When
no slot is free and ``capacity`` slots exist, the batch goes in fresh shared memory without a
lease.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from cubestream.stream.store import empty

__all__ = ["Held", "Lease", "SlotPool"]


@dataclass(frozen=True)
class Lease:
    """A slot lent to the main process until nothing there holds its batch any more."""

    worker: int
    pid: int
    key: int

    def pin_memory(self, *args: Any, **kwargs: Any) -> Lease:
        """Left as is by the DataLoader's pin-memory thread."""
        return self


@dataclass(frozen=True)
class Held:
    """The slots the main process still holds, sent to a worker before a new pass."""

    leases: frozenset[Lease]


class SlotPool:
    """The slots of one worker process.

    Parameters
    ----------
    worker : int
        The worker's id.
    returns : multiprocessing queue
        Where the main process hands leases back.
    capacity : int
        The most slots kept.
    """

    def __init__(self, worker: int, returns: Any, capacity: int) -> None:
        self.worker = worker
        self.returns = returns
        self.capacity = capacity
        self._slots: list[dict[str, torch.Tensor]] = []
        self._free: set[int] = set()

    def _collect(self) -> None:
        """Take back the slots the main process handed back or no longer holds."""
        pid = os.getpid()
        while not self.returns.empty():
            message: Lease | Held = self.returns.get()
            if isinstance(message, Held):
                held = {lease.key for lease in message.leases if lease.pid == pid}
                self._free = set(range(len(self._slots))) - held
            elif message.pid == pid:
                self._free.add(message.key)

    def put(self, batch: dict[str, Any]) -> tuple[dict[str, Any], Lease | None]:
        """Copy the tensors of ``batch`` into a free slot; the batch in it and its lease."""
        self._collect()
        names = [name for name, value in batch.items() if torch.is_tensor(value)]
        if not self._free and len(self._slots) < self.capacity:
            self._slots.append(
                {n: empty(tuple(batch[n].shape), batch[n].dtype, shared=True) for n in names}
            )
            self._free.add(len(self._slots) - 1)
        fits = [k for k in self._free if _fits(self._slots[k], batch, names)]
        if not fits:
            return batch, None
        key = fits[0]
        self._free.discard(key)
        slot = self._slots[key]
        out = dict(batch)
        for name in names:
            out[name] = slot[name].copy_(batch[name])
        return out, Lease(self.worker, os.getpid(), key)


def _fits(slot: dict[str, torch.Tensor], batch: dict[str, Any], names: list[str]) -> bool:
    return all(
        n in slot and slot[n].shape == batch[n].shape and slot[n].dtype == batch[n].dtype
        for n in names
    )
