"""``cubestream bench``: the throughput suite and its report.

::

    cubestream bench [run] [--stages l1 loader train] [--preset tiny|small|tile]
                     [--history FILE] [--out DIR] [--workdir DIR] [--no-report]
                     [--nodes N] [--cores-per-node C] [--gpus-per-node G]
                     [--storage-gbps B] [--epochs E]
    cubestream bench report [--history FILE] [--out DIR] [--readme README.md]

``run`` (the default) runs the stages (:mod:`benchmarks.suite`), appends one record per stage
to the history and draws the report into ``--out``; the cluster options set the projection.
``report`` draws the report of the history alone (:mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from benchmarks._suite_settings import PRESET_NAMES, SuiteSettings
from benchmarks.projection import ClusterSpec
from benchmarks.report import HISTORY
from cubestream.options import add_flags, from_args, option, params

__all__ = ["PRESET_NAMES", "REPORT", "ReportOptions", "add_bench_parser"]

REPORT = Path(__file__).resolve().parent / "results" / "report"


@dataclass(frozen=True, kw_only=True)
class ReportOptions:
    """The flags of ``bench report`` (``history`` and ``out`` those of ``bench run`` too)."""

    history: Path = option(HISTORY, help="JSON-lines history")
    out: Path = option(REPORT, help="where the report goes")
    readme: Path | None = option(None, help="put the table between its bench markers")


def _cluster(args: argparse.Namespace) -> ClusterSpec:
    cluster: ClusterSpec = from_args(ClusterSpec, args)
    return cluster


def _settings(args: argparse.Namespace) -> SuiteSettings:
    """The suite's settings from the parsed flags of ``bench run``."""
    settings: SuiteSettings = from_args(SuiteSettings, args, history=args.history)
    return settings


def _run(args: argparse.Namespace) -> int:
    from benchmarks.report import render
    from benchmarks.suite import StageFailedError, run_suite

    status = 0
    try:
        run_suite(_settings(args))
    except StageFailedError as error:
        print(f"bench: {error}")
        status = 1
    if not args.no_report and args.history.exists():
        for path in render(args.history, args.out):
            print(f"bench: wrote {path}")
    return status


def _report(args: argparse.Namespace) -> int:
    from benchmarks.report import render

    for path in render(args.history, args.out, readme=args.readme):
        print(f"bench: wrote {path}")
    if args.readme is not None:
        print(f"bench: updated the table in {args.readme}")
    return 0


def _run_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    add_flags(options, ReportOptions, skip=("readme",))
    cluster = tuple(p.name for p in params(ClusterSpec))
    add_flags(options, SuiteSettings, skip=cluster)
    options.add_argument("--no-report", action="store_true", help="do not draw the report")
    add_flags(options.add_argument_group("projection onto the 12 TB workload"), ClusterSpec)
    return options


def add_bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``bench`` subcommand (``run``, the default, and ``report``) to ``cubestream``."""
    options = _run_options()
    bench = sub.add_parser(
        "bench",
        parents=[options],
        help="run the benchmark suite, or draw its report",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bench.set_defaults(func=_run)
    actions = bench.add_subparsers(dest="bench_action")
    run = actions.add_parser("run", parents=[options], help="run the suite (the default)")
    run.set_defaults(func=_run)
    report = actions.add_parser("report", help="draw the history and the latest table")
    add_flags(report, ReportOptions)
    report.set_defaults(func=_report)
