"""``cubestream replica create DIR`` and ``cubestream replica serve DIR``: the local replica."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import get_args

__all__ = ["add_replica_parser"]


def _replica_create(args: argparse.Namespace) -> int:
    from cubestream.replica.create import create_replica
    from cubestream.replica.spec import preset

    spec = preset(args.preset)
    overrides = {
        "seed": args.seed,
        "resolution": args.resolution,
        "catalogue": args.catalogue,
        "mislabelled_offsets": args.mislabelled_offsets,
    }
    chosen = {k: v for k, v in overrides.items() if v is not None}
    spec = spec.__class__.from_dict({**spec.to_dict(), **chosen})
    create_replica(Path(args.dir), spec, workers=args.workers, overwrite=args.overwrite)
    return 0


def _replica_serve(args: argparse.Namespace) -> int:
    from cubestream.replica.serve import serve

    serve(
        Path(args.dir),
        host=args.host,
        s3_port=args.s3_port,
        stac_port=args.stac_port,
        access_log=Path(args.access_log) if args.access_log else None,
        fail_rate=args.fail_rate,
        fail_status=args.fail_status,
        fail_seed=args.fail_seed,
        catalogue=args.catalogue,
    )
    return 0


def add_replica_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cubestream replica create`` and ``cubestream replica serve`` to ``sub``."""
    from cubestream.replica.serve import FailStatus
    from cubestream.replica.spec import CATALOGUES

    replica = sub.add_parser("replica", help="create or serve the local replica of the archives")
    rsub = replica.add_subparsers(dest="action", required=True)
    create = rsub.add_parser("create", help="write a synthetic world into DIR")
    create.add_argument("dir", help="directory to create the replica in")
    create.add_argument("--preset", default="tiny", help="world size: tiny, small or tile")
    create.add_argument("--seed", type=int, default=None, help="seed of the world")
    create.add_argument(
        "--resolution", choices=["30m", "native"], default=None, help="30 m or 10/20 m layout"
    )
    create.add_argument(
        "--catalogue",
        choices=CATALOGUES,
        default=None,
        help="item schema of stac/items.ndjson (default earth-search; all are written)",
    )
    create.add_argument(
        "--mislabelled-offsets",
        type=int,
        default=None,
        help="dates per tile whose items carry a wrong offset label, as real catalogues do "
        "(default 1; 0 for none)",
    )
    create.add_argument("--workers", type=int, default=None, help="processes writing COGs")
    create.add_argument("--overwrite", action="store_true", help="replace an existing replica")
    create.set_defaults(func=_replica_create)

    serve = rsub.add_parser("serve", help="serve DIR over a loopback S3 API and STAC API")
    serve.add_argument("dir", help="replica directory made by `replica create`")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    serve.add_argument("--s3-port", type=int, default=0, help="S3 API port (0: any free port)")
    serve.add_argument("--stac-port", type=int, default=0, help="STAC API port (0: any free)")
    serve.add_argument("--access-log", default=None, help="JSON-lines log of S3 requests")
    serve.add_argument(
        "--fail-rate", type=float, default=0.0, help="share of object reads answered with an error"
    )
    serve.add_argument(
        "--fail-status",
        type=int,
        choices=get_args(FailStatus),
        default=503,
        help="HTTP status of those errors (503 SlowDown, 500, 502, 504, 429, 403 Throttling)",
    )
    serve.add_argument("--fail-seed", type=int, default=0, help="seed of the failing requests")
    serve.add_argument(
        "--catalogue",
        choices=CATALOGUES,
        default=None,
        help="serve the items in this catalogue's schema (default: the replica's)",
    )
    serve.set_defaults(func=_replica_serve)
