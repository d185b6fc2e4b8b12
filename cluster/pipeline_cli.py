"""``cubestream run PIPELINE.yaml``: every stage chained, each on its cluster profile."""

from __future__ import annotations

import argparse

from cluster.pipeline_config import STAGES

__all__ = ["add_run_parser"]


def _run(args: argparse.Namespace) -> int:
    from cluster.pipeline import run_pipeline

    run_pipeline(
        args.file,
        workdir=args.workdir,
        start=args.start,
        only=args.only,
        dry_run=args.dry_run,
        force=args.force,
    )
    return 0


def add_run_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``run`` subcommand to the ``cubestream`` parser."""
    p = sub.add_parser(
        "run",
        help="all stages chained from a pipeline YAML (sample -> l1 -> l2 -> train), resumable",
        description="Run the stages of a pipeline YAML (cluster/recipes/*.yaml) as their exact "
        "`cubestream <stage>` commands, recording each in <workdir>/pipeline-state.json. A "
        "rerun skips the stages done with the same options and goes on from the first one "
        "that is not; a changed stage reruns with every stage after it.",
    )
    p.add_argument("file", help="pipeline YAML (e.g. cluster/recipes/replica.yaml)")
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--from", dest="start", choices=STAGES, help="run this stage and those after it"
    )
    which.add_argument("--only", choices=STAGES, help="run only this stage")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and the commands; run nothing"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="run the selected stages even when done (L1 and L2 still reuse what is complete)",
    )
    p.add_argument("--workdir", help="put the outputs here instead of the file's workdir")
    p.set_defaults(func=_run)
