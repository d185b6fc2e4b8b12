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
from pathlib import Path

from benchmarks.projection import ClusterSpec
from benchmarks.report import HISTORY, STAGES

__all__ = ["PRESET_NAMES", "REPORT", "add_bench_parser"]

REPORT = Path(__file__).resolve().parent / "results" / "report"
PRESET_NAMES = ("tiny", "small", "tile")
"""The presets of :data:`benchmarks.suite.PRESETS` (named here: the suite imports torch)."""


def _cluster(args: argparse.Namespace) -> ClusterSpec:
    return ClusterSpec(
        nodes=args.nodes,
        cores_per_node=args.cores_per_node,
        gpus_per_node=args.gpus_per_node,
        storage_gbps=args.storage_gbps,
        epochs=args.epochs,
    )


def _run(args: argparse.Namespace) -> int:
    from benchmarks.report import render
    from benchmarks.suite import StageFailedError, SuiteSettings, run_suite

    settings = SuiteSettings(
        stages=tuple(args.stages),
        preset=args.preset,
        history=args.history,
        workdir=args.workdir,
        cluster=_cluster(args),
    )
    status = 0
    try:
        run_suite(settings)
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


def _history(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--history", type=Path, default=HISTORY, help="JSON-lines history")
    parser.add_argument("--out", type=Path, default=REPORT, help="where the report goes")


def _run_options() -> argparse.ArgumentParser:
    options = argparse.ArgumentParser(add_help=False)
    _history(options)
    options.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    options.add_argument("--preset", choices=PRESET_NAMES, default="tiny", help="sizes")
    options.add_argument("--workdir", type=Path, default=None, help="keep stores here")
    options.add_argument("--no-report", action="store_true", help="do not draw the report")
    cluster = options.add_argument_group("projection onto the 12 TB workload")
    cluster.add_argument("--nodes", type=int, default=1)
    cluster.add_argument("--cores-per-node", type=int, default=32)
    cluster.add_argument("--gpus-per-node", type=int, default=0)
    cluster.add_argument("--storage-gbps", type=float, default=5.0, help="object store GB/s")
    cluster.add_argument("--epochs", type=int, default=1, help="loader and training epochs")
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
    _history(report)
    report.add_argument(
        "--readme", type=Path, default=None, help="put the table between its bench markers"
    )
    report.set_defaults(func=_report)
