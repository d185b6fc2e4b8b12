"""How a stage runs: the Dask client its caller gives it, and the flags that choose that client.

The builds (:func:`~cubestream.l1.build.build_l1`, :func:`~cubestream.l2.build.build_l2`) plan
and compute on the ``client=`` their caller passes: a ``distributed.Client``, or the
:class:`ClientOptions` that the command line resolves ``--scheduler``, ``--cluster PROFILE`` or
the LocalCluster size into (the build then opens that client with :func:`open_client` once it has
planned, so that bad inputs fail before a cluster starts, and closes it). A build given no client
starts a LocalCluster of the default size.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from cubestream.options import option

__all__ = ["ClientOptions", "given_or_local", "open_client"]


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Where a stage computes: a running scheduler, a cluster profile, or a LocalCluster.

    Attributes
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler.
    cluster : str, optional
        A cluster profile (YAML file or shipped name, :mod:`cluster.profiles`): its cluster is
        started for the stage and closed after it.
    workers, threads : int
        Size of the LocalCluster started otherwise.
    memory_limit : str
        Memory limit per worker of that LocalCluster.
    """

    scheduler: str | None = option(
        None, pipeline=False, execution=True, help="address of a running Dask scheduler"
    )
    cluster: str | None = option(
        None,
        metavar="PROFILE",
        execution=True,
        help="cluster profile: YAML file or shipped name",
    )
    workers: int = option(2, execution=True, help="LocalCluster workers")
    threads: int = option(2, execution=True, help="threads per worker")
    memory_limit: str = option("4GB", execution=True, help="memory limit per worker")


@contextmanager
def open_client(options: ClientOptions) -> Iterator[Any]:
    """The ``distributed.Client`` that ``options`` name, closed (with its cluster) on exit."""
    from cubestream._dask import dask_client

    with dask_client(
        options.scheduler,
        cluster=options.cluster,
        workers=options.workers,
        threads_per_worker=options.threads,
        memory_limit=options.memory_limit,
    ) as client:
        yield client


@contextmanager
def given_or_local(client: Any | ClientOptions | None, *, threads: int) -> Iterator[Any]:
    """The client a stage computes on, from what its caller gave.

    Parameters
    ----------
    client : distributed.Client or ClientOptions or None
        A client: used as is (the current client while the stage runs) and left open.
        :class:`ClientOptions`: the client they name, opened
        now (once the stage has planned, so that bad inputs fail before a cluster starts) and
        closed on exit. None: a LocalCluster of 2 workers of ``threads`` threads.
    threads : int
        Threads per worker of the default LocalCluster.
    """
    if client is not None and not isinstance(client, ClientOptions):
        with client.as_current():  # the stage's own Dask calls go to it too
            yield client
        return
    with open_client(client or ClientOptions(threads=threads)) as opened:
        yield opened
