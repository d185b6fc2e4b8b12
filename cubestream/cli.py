"""The ``cubestream`` command line: one console script, one subcommand per stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from cubestream import __version__
from cubestream import _cli_inputs as inputs
from cubestream import _plugins as plugins
from cubestream._exit import ExitCode, debug_wanted, guarded
from cubestream.checks import check_source, parse_bbox, parse_date
from cubestream.execution import ClientOptions
from cubestream.l1.config import L1Config
from cubestream.l2.config import L2Config
from cubestream.options import add_flags, from_args
from cubestream.sample.options import SampleOptions
from cubestream.sources.providers import provider_names
from cubestream.storage import StorageFlags

__all__ = ["build_parser", "main"]


def _sample(args: argparse.Namespace) -> int:
    from cubestream.sample import sample_locations, write_locations

    inputs.check_sample(args)
    result = sample_locations(from_args(SampleOptions, args).config())
    for warning in result.report["warnings"]:
        print(f"cubestream: warning: {warning}", file=sys.stderr)
    for path in write_locations(result, Path(args.out)):
        print(path)
    return 0


def _add_sample(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("sample", help="X1: sample minicube locations on the Sentinel-2 grid")
    add_flags(p, SampleOptions)
    p.set_defaults(func=_sample)


def _l1(args: argparse.Namespace) -> int:
    import json

    from cubestream.l1 import build_l1

    gdal_env: dict[str, str] = {}
    storage_options: dict[str, object] = {}
    source_options: dict[str, object] = {}
    if args.endpoints:
        endpoints = inputs.endpoints(args.endpoints)
        gdal_env = endpoints.gdal_env()
        source_options = endpoints.storage_options()
        if args.out.startswith("s3://"):
            storage_options = endpoints.storage_options()
    inputs.check_l1(args, storage_options)
    config = from_args(
        L1Config,
        args,
        gdal_env=gdal_env,
        storage_options=storage_options,
        auxiliary={"storage_options": source_options},
    )
    report = build_l1(config, client=from_args(ClientOptions, args), dry_run=args.dry_run)
    statuses = {tile: entry.get("status") for tile, entry in report["tiles"].items()}
    if args.dry_run:
        for tile, entry in report["tiles"].items():
            print(json.dumps({"tile": tile, **entry}))
    else:
        summary = {"store": args.out, "tiles": statuses, "seconds": report["seconds"]}
        summary["offset_disagreements"] = len(report.get("offset_disagreements", []))
        print(json.dumps(summary))
    return 0 if all(s != "failed" for s in statuses.values()) else 1


def _add_l1(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("l1", help="X2 + X3: build the level-1 Zarr store of minicubes")
    add_flags(p, L1Config)
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="plan only: per tile the items, days, read blocks and bytes to fetch (JSON lines)",
    )
    add_flags(p, StorageFlags)
    add_flags(p, ClientOptions)
    p.set_defaults(func=_l1)


def _l2(args: argparse.Namespace) -> int:
    import json

    from cubestream.l2 import build_l2, export_netcdf

    storage_options: dict[str, object] = {}
    if args.endpoints:
        storage_options = inputs.endpoints(args.endpoints).storage_options()
    inputs.check_l2(args, storage_options if args.l1.startswith("s3://") else {})
    config = from_args(
        L2Config,
        args,
        storage_options=storage_options if args.out.startswith("s3://") else {},
        l1_storage_options=storage_options if args.l1.startswith("s3://") else {},
    )
    report = build_l2(config, client=from_args(ClientOptions, args))
    summary = {
        "store": args.out,
        "complete": report["complete"],
        "samples": report["samples"],
        "splits": report["splits"],
        "skipped": len(report["skipped"]),
        "failed_blocks": len(report["failed_blocks"]),
        "seconds": report["seconds"],
    }
    if args.netcdf and report["complete"]:
        files = export_netcdf(args.out, args.netcdf, storage_options=config.storage_options or None)
        summary["netcdf"] = {"dir": args.netcdf, "files": len(files)}
    print(json.dumps(summary))
    return 0 if report["complete"] else 1


def _add_l2(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("l2", help="X4: build the level-2 store of gap-filled 10-daily samples")
    add_flags(p, L2Config)
    p.add_argument("--netcdf", help="also export one NetCDF file per sample into this directory")
    add_flags(p, StorageFlags)
    add_flags(p, ClientOptions, defaults={"threads": 1})
    p.set_defaults(func=_l2)


def _train(args: argparse.Namespace) -> int:
    if args.help and not args.rest:
        # the subcommands without importing torch; `train fit --help` is LightningCLI's own
        args.print_help()
        return 0
    inputs.check_train(args.rest)
    from trainers.cli import main as train_main

    return train_main(["--help", *args.rest] if args.help else args.rest)


def _add_train(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser(
        "train",
        help="X5: fit, validate, test or predict with a YAML config (LightningCLI)",
        description="cubestream train fit|validate|test|predict --config FILE [--key value ...]; "
        "`cubestream train fit --help` lists every option (LightningCLI's help: it imports "
        "torch, which takes seconds).",
        add_help=False,
    )
    p.add_argument("-h", "--help", action="store_true", help="this help, or with a subcommand "
                   "(`train fit --help`) the LightningCLI help")  # fmt: skip
    p.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        help="fit | validate | test | predict, then the LightningCLI arguments",
    )
    p.set_defaults(func=_train, print_help=p.print_help)


def _inspect(args: argparse.Namespace) -> int:
    from cubestream.inspect import describe

    inputs.check_inspect(args.store)
    print(describe(args.store))
    return 0


def _add_inspect(sub: argparse._SubParsersAction[_Parser]) -> None:
    p = sub.add_parser("inspect", help="summarise a store (L1, L2) or a locations table")
    p.add_argument("store", help="Zarr store path/URL or a .parquet table")
    p.set_defaults(func=_inspect)


def _add_catalogue_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collection", default="sentinel-2-l2a", help="STAC collection id")
    p.add_argument(
        "--provider",
        choices=list(provider_names()),
        default=None,
        help="the catalogue's item schema (default: detected from each item)",
    )


def _stac_check(args: argparse.Namespace) -> int:
    from cubestream.checks import check_dates
    from cubestream.sources.check import check_items

    check_dates(args.start, args.end)
    check_source(args.source, "STAC source (API URL or items file)")
    failed = check_items(
        args.source,
        bbox=args.bbox,
        start=args.start,
        end=args.end,
        collection=args.collection,
        provider=args.provider,
        out=sys.stdout,
    )
    return 1 if failed else 0


def _add_stac(sub: argparse._SubParsersAction[_Parser]) -> None:
    stac = sub.add_parser("stac", help="check what a Sentinel-2 catalogue's items resolve to")
    verbs = stac.add_subparsers(dest="verb", required=True)
    p = verbs.add_parser(
        "check",
        help="one JSON line per item: tile, date, provider, band hrefs, scale, offset and why",
    )
    p.add_argument("source", help="STAC API URL or a local items file")
    p.add_argument(
        "--bbox", type=parse_bbox, help="min_lon,min_lat,max_lon,max_lat (needed for an API)"
    )
    p.add_argument("--start", type=parse_date, default="2015-06-23", help="first day, YYYY-MM-DD")
    p.add_argument("--end", type=parse_date, default="2100-01-01", help="last day, YYYY-MM-DD")
    _add_catalogue_options(p)
    p.set_defaults(func=_stac_check)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit :attr:`ExitCode.USAGE`)."""

    def error(self, message: str) -> NoReturn:
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}; see `{self.prog} -h`\n")


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``cubestream`` command."""
    parser = _Parser(
        prog="cubestream",
        description=__doc__,
        epilog="exit codes: 0 done, 1 part of the work failed, 2 usage, 3 input, "
        "4 remote service, 70 internal error (a bug), 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"cubestream {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of errors (or CUBESTREAM_DEBUG=1)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in plugins.COMMANDS_BEFORE:
        plugins.load(command)(sub)
    _add_sample(sub)
    _add_stac(sub)
    _add_l1(sub)
    _add_l2(sub)
    _add_inspect(sub)
    _add_train(sub)
    for command in plugins.COMMANDS_AFTER:
        plugins.load(command)(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code (:class:`~cubestream._exit.ExitCode`).

    Errors a user can fix print one line naming the item and exit with the code of their kind;
    unexpected ones print their traceback (``--debug`` or ``CUBESTREAM_DEBUG=1``: every error).
    """
    from cubestream import config

    config.refresh()  # the environment of this run (CUBESTREAM_GDAL_*, CUBESTREAM_RETRY_*)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
    func: Callable[[argparse.Namespace], int] = args.func
    return guarded(lambda: func(args), debug=debug_wanted(args.debug))


if __name__ == "__main__":
    sys.exit(main())
