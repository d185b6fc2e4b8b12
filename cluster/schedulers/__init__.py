"""The batch schedulers, by name: one line per scheduler in :data:`SCHEDULERS`.

Adding a scheduler (LSF, Flux...) is a module implementing
:class:`~cluster.schedulers.base.Scheduler` and one line here; profiles, ``cubestream cluster``
and the pipeline find it by its name.
"""

from __future__ import annotations

from cluster.errors import ClusterProfileError
from cluster.schedulers.base import JobState, Scheduler, wait
from cluster.schedulers.pbs import Pbs
from cluster.schedulers.slurm import Slurm

__all__ = ["SCHEDULERS", "JobState", "Scheduler", "get_scheduler", "wait"]

SCHEDULERS: dict[str, Scheduler] = {
    "slurm": Slurm(),
    "pbs": Pbs(),
}
"""Every batch scheduler cubestream can submit to, by name."""


def get_scheduler(name: str) -> Scheduler:
    """The scheduler called ``name`` (``slurm``, ``pbs``).

    Raises
    ------
    ClusterProfileError
        No scheduler has that name; the message lists the known ones.
    """
    try:
        return SCHEDULERS[name]
    except KeyError:
        raise ClusterProfileError(
            f"no batch scheduler {name!r}; use one of {sorted(SCHEDULERS)}"
        ) from None
