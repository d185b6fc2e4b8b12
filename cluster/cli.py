"""``cubestream cluster``: submit, follow and cancel training jobs; the local SLURM.

::

    cubestream cluster submit train --config FILE --nodes 2 --gpus-per-node 4 [--dry-run]
        [-- --trainer.max_epochs 10 ...]
    cubestream cluster status JOBID | cancel JOBID | logs JOBID [--tail N] | wait JOBID
        [--scheduler slurm|pbs]
    cubestream cluster local-slurm start|status|stop [--dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_cluster_parser"]

_DEFAULT_SLURM_DIR = Path("/tmp/cubestream-slurm")


def _submit(args: argparse.Namespace) -> int:
    from cluster.errors import TrainJobError
    from cluster.launch import TrainJob, submit

    extra = list(args.extra)
    if extra and extra[0] == "--":
        extra = extra[1:]
    env = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            raise TrainJobError(f"--env takes NAME=VALUE, not {item!r}")
        env[name] = value
    job = TrainJob(
        config=Path(args.config),
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        tasks_per_node=args.tasks_per_node,
        cpus_per_task=args.cpus_per_task,
        memory=args.mem,
        time=args.time,
        partition=args.partition,
        account=args.account,
        job_name=args.job_name,
        workdir=Path(args.workdir),
        ckpt_every_n_steps=args.ckpt_every,
        extra_args=tuple(extra),
        extra_directives=tuple(args.directive),
        prologue=tuple(args.prologue),
        env=env,
        python=args.python,
        scheduler=args.scheduler,
    )
    result = submit(job, dry_run=args.dry_run)
    if args.dry_run:
        print(result, end="")
        return 0
    print(result)
    from cluster.schedulers import get_scheduler

    print(f"logs: {get_scheduler(job.scheduler).log_pattern(job, result)}", file=sys.stderr)
    print(f"checkpoints: {job.ckpt_dir}", file=sys.stderr)
    return 0


def _status(args: argparse.Namespace) -> int:
    from cluster.launch import status

    print(status(args.job_id, scheduler=args.scheduler))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from cluster.launch import cancel

    cancel(args.job_id, scheduler=args.scheduler)
    print(f"cancelled {args.job_id}", file=sys.stderr)
    return 0


def _logs(args: argparse.Namespace) -> int:
    from cluster._scheduler import tail
    from cluster.launch import log_path

    path = log_path(args.job_id, scheduler=args.scheduler)
    print(path)
    if args.tail:
        print(tail(path, args.tail))
    return 0


def _wait(args: argparse.Namespace) -> int:
    from cluster.launch import wait

    print(wait(args.job_id, poll_s=args.poll, timeout_s=args.timeout, scheduler=args.scheduler))
    return 0


def _local_slurm(args: argparse.Namespace) -> int:
    from cluster.local_slurm import LocalSlurm

    slurm = LocalSlurm(args.dir, nodes=args.nodes, timeout_s=args.timeout)
    if args.action == "start":
        slurm.start()
        print(f"export SLURM_CONF={slurm.conf}")
        stop = f"cubestream cluster local-slurm stop --dir {slurm.dir}"
        print(f"local SLURM up: {slurm.node_states()}; stop it with `{stop}`", file=sys.stderr)
    elif args.action == "stop":
        slurm.stop()
        print(f"local SLURM in {slurm.dir} stopped", file=sys.stderr)
    else:
        print(slurm.status())
    return 0


def _add_submit(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = sub.add_parser("submit", help="submit a job (sbatch; --scheduler pbs: qsub)")
    what = submit.add_subparsers(dest="what", required=True)
    p = what.add_parser("train", help="`cubestream train fit` on nodes x tasks (one per GPU)")
    p.add_argument("--config", required=True, help="LightningCLI YAML config")
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--gpus-per-node", type=int, default=0, help="0: a CPU job (DDP over gloo)")
    p.add_argument("--tasks-per-node", type=int, default=None, help="CPU jobs: ranks per node")
    p.add_argument("--cpus-per-task", type=int, default=1)
    p.add_argument("--mem", default=None, help="memory per node, e.g. 64G")
    p.add_argument("--time", default="01:00:00", help="time limit, [D-]HH:MM:SS")
    p.add_argument("--partition", "--queue", default=None, help="partition (PBS: queue)")
    p.add_argument("--account", default=None)
    p.add_argument("--job-name", default="cubestream-train")
    p.add_argument("--workdir", default="train", help="shared directory: checkpoints, logs")
    p.add_argument("--ckpt-every", type=int, default=50, help="last.ckpt every N steps")
    p.add_argument("--directive", action="append", default=[], help="extra #SBATCH/#PBS line")
    p.add_argument("--prologue", action="append", default=[], help="shell line run first")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for every task")
    p.add_argument("--python", default=sys.executable, help="python on the nodes")
    p.add_argument("--scheduler", choices=_schedulers(), default="slurm")
    p.add_argument("--dry-run", action="store_true", help="print the script, submit nothing")
    p.add_argument("extra", nargs="*", help="after --: more LightningCLI arguments")
    p.set_defaults(func=_submit)


def _schedulers() -> list[str]:
    from cluster.schedulers import SCHEDULERS

    return list(SCHEDULERS)


def _job_id(p: argparse.ArgumentParser) -> None:
    p.add_argument("job_id")
    p.add_argument(
        "--scheduler", choices=_schedulers(), default="slurm", help="the job's batch scheduler"
    )


def _add_job_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="the state of a job (SLURM's words; PBS: QUEUED...)")
    _job_id(p)
    p.set_defaults(func=_status)
    p = sub.add_parser("cancel", help="cancel a job")
    _job_id(p)
    p.set_defaults(func=_cancel)
    p = sub.add_parser("logs", help="the path of a job's log (and its last lines)")
    _job_id(p)
    p.add_argument("--tail", type=int, default=0, help="also print the last N lines")
    p.set_defaults(func=_logs)
    p = sub.add_parser("wait", help="wait for a job to finish; fails with its log if it failed")
    _job_id(p)
    p.add_argument("--poll", type=float, default=5.0, help="seconds between checks")
    p.add_argument("--timeout", type=float, default=None, help="give up after so many seconds")
    p.set_defaults(func=_wait)


def add_cluster_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``cluster`` subcommand to the ``cubestream`` parser."""
    p = sub.add_parser("cluster", help="submit/status/cancel training jobs; the local SLURM")
    commands = p.add_subparsers(dest="cluster_command", required=True)
    _add_submit(commands)
    _add_job_commands(commands)
    p = commands.add_parser("local-slurm", help="a real SLURM on loopback (2 emulated nodes)")
    p.add_argument("action", choices=["start", "status", "stop"])
    p.add_argument("--dir", type=Path, default=_DEFAULT_SLURM_DIR, help="state, config, logs")
    p.add_argument("--nodes", type=int, default=2)
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for idle nodes")
    p.set_defaults(func=_local_slurm)
