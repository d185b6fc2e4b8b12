"""``cubestream bench``: the throughput suite and its report."""

from __future__ import annotations

import argparse

from cubestream.errors import NotYetAvailableError

__all__ = ["add_bench_parser"]


def _bench(args: argparse.Namespace) -> int:
    raise NotYetAvailableError("`cubestream bench` is part of issue 9, not built yet")


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` subcommand to the ``cubestream`` parser."""
    p = sub.add_parser("bench", help="benchmarks (issue 9)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=_bench)
