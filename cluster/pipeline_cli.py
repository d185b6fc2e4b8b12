"""``cubestream run PIPELINE.yaml``: every stage chained, each on its cluster profile."""

from __future__ import annotations

import argparse

from cubestream.errors import NotYetAvailableError

__all__ = ["add_run_parser"]


def _run(args: argparse.Namespace) -> int:
    raise NotYetAvailableError("`cubestream run` is part of issue 8, not built yet")


def add_run_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand to the ``cubestream`` parser."""
    p = sub.add_parser("run", help="the chained pipeline (issue 8)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_run)
