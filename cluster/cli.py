"""``cubestream cluster``: submit, status and cancel of training jobs; the local SLURM."""

from __future__ import annotations

import argparse

from cubestream.errors import NotYetAvailableError

__all__ = ["add_cluster_parser"]


def _cluster(args: argparse.Namespace) -> int:
    raise NotYetAvailableError("`cubestream cluster` is part of issue 8, not built yet")


def add_cluster_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``cluster`` subcommand to the ``cubestream`` parser."""
    p = sub.add_parser("cluster", help="cluster launching (issue 8)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_cluster)
