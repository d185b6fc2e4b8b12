"""A ``distributed.Client`` on the cluster a profile describes.

``local`` profiles start a LocalCluster of ``jobs * processes`` workers; ``slurm`` and ``pbs``
profiles start a dask-jobqueue SLURMCluster or PBSCluster, scale it to ``jobs`` batch jobs and
wait for the first worker. The builds take it through ``cubestream._dask.dask_client(cluster=...)``,
which finds :func:`cluster_client` by name in :mod:`cubestream._plugins`
(``cubestream l1 ... --cluster PROFILE``).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cluster.errors import ClusterProfileError, ClusterTimeoutError
from cluster.profiles import ClusterProfile
from cluster.schedulers import SCHEDULERS, get_scheduler

__all__ = ["cluster_client", "jobqueue_cluster", "profile_client"]


@contextmanager
def cluster_client(spec: str, scheduler: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` on the cluster of the profile ``spec`` (``--cluster``).

    Parameters
    ----------
    spec : str
        A cluster profile: YAML file or shipped name (see :func:`cluster.profiles.load_profile`).
    scheduler : str, optional
        A scheduler address given as well (``--scheduler``): refused, one or the other.

    Raises
    ------
    ClusterProfileError
        Both a scheduler and a profile were given, or the profile is malformed.
    """
    from cluster.profiles import load_profile

    if scheduler:
        raise ClusterProfileError(
            f"give a scheduler ({scheduler}) or a cluster profile ({spec}), not both"
        )
    with profile_client(load_profile(spec)) as client:
        yield client


@contextmanager
def profile_client(profile: ClusterProfile) -> Iterator[Any]:
    """A ``distributed.Client`` on the cluster of ``profile``; the cluster closes on exit.

    Parameters
    ----------
    profile : ClusterProfile
        ``local``: a LocalCluster of the profile's sizes. ``slurm``/``pbs``: a dask-jobqueue
        cluster scaled to ``profile.jobs`` jobs (kept there with ``adapt`` when workers have a
        ``lifetime``, so jobs that reach it are replaced).

    Raises
    ------
    SchedulerUnavailableError
        The batch scheduler cannot be reached.
    SubmitError
        The scheduler rejects the worker job script (SLURM checks it with ``sbatch --test-only``).
    ClusterTimeoutError
        No worker joined within ``profile.wait_timeout_s``; the message gives the jobs' state.
    """
    from distributed import Client

    from cubestream._dask import local_client

    if profile.kind == "local":
        with local_client(
            profile.workers, profile.threads_per_worker, profile.memory_per_worker
        ) as client:
            _announce(profile, client)
            yield client
        return
    scheduler = get_scheduler(profile.kind)
    scheduler.check_reachable()
    with jobqueue_cluster(profile) as cluster, Client(cluster) as client:
        scheduler.check_worker_script(cluster.job_script(), profile.name)
        if profile.lifetime:
            cluster.adapt(minimum_jobs=profile.jobs, maximum_jobs=profile.jobs)
        else:
            cluster.scale(jobs=profile.jobs)
        _wait_for_worker(profile, cluster, client)
        _announce(profile, client)
        yield client


@contextmanager
def jobqueue_cluster(profile: ClusterProfile) -> Iterator[Any]:
    """The dask-jobqueue cluster (``SLURMCluster``, ``PBSCluster``) of a profile, closed on exit."""
    from cubestream._extras import require_extra

    require_extra("cluster", f"the Dask cluster of profile {profile.name!r}", "dask_jobqueue")
    import dask_jobqueue

    if profile.kind not in SCHEDULERS:
        raise ClusterProfileError(f"cluster profile {profile.name!r} is not a batch cluster")
    kind = getattr(dask_jobqueue, SCHEDULERS[profile.kind].jobqueue_class)
    try:
        options = {"dashboard_address": ":0"}
        cluster = kind(**profile.jobqueue_kwargs(), scheduler_options=options)
    except (ValueError, TypeError) as exc:
        raise ClusterProfileError(f"cluster profile {profile.name!r}: {exc}") from None
    try:
        yield cluster
    finally:
        cluster.close()


def _wait_for_worker(profile: ClusterProfile, cluster: Any, client: Any) -> None:
    try:
        client.wait_for_workers(1, timeout=profile.wait_timeout_s)
    except TimeoutError:
        raise ClusterTimeoutError(
            f"no Dask worker of cluster profile {profile.name!r} joined within "
            f"{profile.wait_timeout_s:.0f} s; {_jobs_state(profile, cluster)}"
        ) from None


def _jobs_state(profile: ClusterProfile, cluster: Any) -> str:
    ids = [str(job.job_id) for job in cluster.workers.values() if getattr(job, "job_id", None)]
    if not ids:
        return "no job was submitted (see the messages of dask_jobqueue above)"
    return get_scheduler(profile.kind).describe(ids)


def _announce(profile: ClusterProfile, client: Any) -> None:
    print(
        f"dask cluster {profile.name!r} ({profile.kind}): dashboard {client.dashboard_link}",
        file=sys.stderr,
        flush=True,
    )
