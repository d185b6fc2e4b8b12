"""The Dask pieces the builds share: a client (LocalCluster or a scheduler address) and a runner.

:func:`dask_client` starts a LocalCluster of the given size, or connects to a running scheduler
(``--scheduler ADDRESS``), or starts the cluster of a profile (``--cluster PROFILE``: a
dask-jobqueue SLURM or PBS cluster of ``cluster.dask``, named in :mod:`cubestream._plugins`).
:func:`run_jobs` computes groups of delayed tasks (a tile's chunk writes, a block of samples)
with one progress bar; a group whose task fails has its other tasks cancelled and its first
error recorded, and the other groups go on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["dask_client", "local_client", "run_jobs"]


@contextmanager
def dask_client(
    scheduler: str | None = None,
    *,
    cluster: str | None = None,
    workers: int = 2,
    threads_per_worker: int = 2,
    memory_limit: str = "4GB",
) -> Iterator[Any]:
    """A ``distributed.Client``: on ``scheduler``, on a ``cluster`` profile, or a LocalCluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler.
    cluster : str, optional
        A cluster profile (YAML file or shipped name, see :mod:`cluster.profiles`): its cluster
        is started for the build and closed after it.
    workers, threads_per_worker : int
        Size of the LocalCluster.
    memory_limit : str
        Memory limit per worker of the LocalCluster.
    """
    from distributed import Client

    if cluster:
        from cubestream import _plugins as plugins

        with plugins.load(plugins.CLUSTER_CLIENT)(cluster, scheduler) as client:
            yield client
        return
    if scheduler:
        with Client(scheduler) as client:
            _announce(client)
            yield client
        return
    with local_client(workers, threads_per_worker, memory_limit) as client:
        _announce(client)
        yield client


@contextmanager
def local_client(workers: int, threads_per_worker: int, memory_limit: str | int) -> Iterator[Any]:
    """A ``distributed.Client`` on a new LocalCluster (dashboard on a free port), closed on exit.

    Parameters
    ----------
    workers, threads_per_worker : int
        Size of the cluster.
    memory_limit : str or int
        Memory limit per worker (``"4GB"`` or bytes).
    """
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=threads_per_worker,
            memory_limit=memory_limit,
            dashboard_address=":0",
        ) as local,
        Client(local) as client,
    ):
        yield client


def _announce(client: Any) -> None:
    print(f"dask dashboard: {client.dashboard_link}", file=sys.stderr, flush=True)


def run_jobs(
    client: Any, jobs: Mapping[str, Sequence[Any]], *, desc: str, unit: str = "task"
) -> tuple[dict[str, str | None], dict[str, list[Any]]]:
    """Compute every group of delayed tasks on ``client`` with one progress bar.

    Parameters
    ----------
    client : distributed.Client
        Where to compute.
    jobs : mapping of str to sequence of dask.delayed.Delayed
        The tasks of each group (a tile, a block of samples).
    desc, unit : str
        Label and unit of the progress bar.

    Returns
    -------
    errors : dict of str to (str or None)
        Per group, None when all its tasks succeeded, else the first error as ``Type: message``.
    results : dict of str to list
        Per group, the results of its tasks in order (only for the groups without error).
    """
    from distributed import as_completed
    from tqdm import tqdm

    futures = {group: client.compute(list(tasks)) for group, tasks in jobs.items() if tasks}
    owner = {f.key: group for group, fs in futures.items() for f in fs}
    errors: dict[str, str | None] = dict.fromkeys(jobs)
    total = sum(len(fs) for fs in futures.values())
    with tqdm(total=total, desc=desc, unit=unit, file=sys.stderr) as bar:
        for future in as_completed([f for fs in futures.values() for f in fs]):
            bar.update()
            group = owner[future.key]
            if future.status == "error" and errors[group] is None:
                errors[group] = f"{type(future.exception()).__name__}: {future.exception()}"
                client.cancel(futures[group])
    results = {
        group: [f.result() for f in fs] for group, fs in futures.items() if errors[group] is None
    }
    results.update({group: [] for group, tasks in jobs.items() if not tasks})
    return errors, results
