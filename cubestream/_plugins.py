"""What ``cubestream`` offers from the packages built on it, named here and imported on use.

``cubestream/`` is the library (sample -> sources -> level-1 -> level-2 -> stream). The local
replica, ``cluster/`` (batch schedulers, Dask clusters, the pipeline) and ``benchmarks/`` build
on it, so the library never imports them: this table names, as ``module:attribute`` (the form of
an entry point), the subcommands they add to the ``cubestream`` console script and the cluster
services a build asks for by name. Adding a subcommand from one of them is one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = [
    "CLUSTER_CLIENT",
    "CLUSTER_PROFILE",
    "COMMANDS_AFTER",
    "COMMANDS_BEFORE",
    "load",
]

COMMANDS_BEFORE: tuple[str, ...] = ("cubestream.replica.cli:add_replica_parser",)
"""Subcommands listed before the stages (``cubestream replica``)."""

COMMANDS_AFTER: tuple[str, ...] = (
    "cluster.cli:add_cluster_parser",
    "cluster.pipeline_cli:add_run_parser",
    "benchmarks.cli:add_bench_parser",
)
"""Subcommands listed after the stages (``cubestream cluster``, ``run``, ``bench``)."""

CLUSTER_CLIENT = "cluster.dask:cluster_client"
"""``cluster_client(profile, scheduler)``: a Dask client on a ``--cluster`` profile's cluster."""

CLUSTER_PROFILE = "cluster.profiles:load_profile"
"""``load_profile(spec)``: a ``--cluster`` profile, loaded and checked."""


def load(target: str) -> Any:
    """Import the attribute a ``module:attribute`` name of this table points to."""
    module, _, attribute = target.partition(":")
    return getattr(import_module(module), attribute)
