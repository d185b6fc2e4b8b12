"""The ``cubestream`` command line: one console script, one subcommand per stage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn, get_args

from benchmarks.cli import add_bench_parser
from cluster.cli import add_cluster_parser
from cluster.pipeline_cli import add_run_parser
from cubestream import __version__
from cubestream import _cli_inputs as inputs
from cubestream._exit import ExitCode, debug_wanted, guarded
from cubestream.checks import check_source, parse_bbox, parse_date
from cubestream.errors import UsageError
from cubestream.sources.offsets import OFFSET_POLICIES
from cubestream.sources.sentinel2 import PROVIDERS

__all__ = ["build_parser", "main"]


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


def _add_replica(sub: argparse._SubParsersAction) -> None:
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


def _sample(args: argparse.Namespace) -> int:
    from cubestream.sample import (
        AllocationRule,
        SampleConfig,
        SplitRule,
        StrataSources,
        sample_locations,
        write_locations,
    )

    inputs.check_sample(args)
    if args.replica:
        strata = StrataSources.from_replica(Path(args.replica))
        area = args.area or str(Path(args.replica) / "imaged.geojson")
    elif args.climate and args.landcover and args.geomorphons:
        strata = StrataSources(
            climate=args.climate, landcover=args.landcover, geomorphons=args.geomorphons
        )
        area = args.area or "africa"
    else:
        raise UsageError(
            "give the strata rasters: --replica DIR, or all of --climate, --landcover and "
            "--geomorphons (paths or URLs)"
        )
    strata = replace(strata, max_water_fraction=args.max_water)
    config = SampleConfig(
        area=area,
        strata=strata,
        target=args.target,
        allocation=AllocationRule(
            method=args.allocation, mix=args.mix, min_per_stratum=args.min_per_stratum
        ),
        splits=SplitRule.with_validation(
            args.val,
            test=args.test,
            block_km=args.block_km,
            ood_space=args.ood_space,
            region_km=args.region_km,
        ),
        cap_per_tile=args.cap_per_tile,
        top_tiles=args.top_tiles,
        seed=args.seed,
        workers=args.workers,
    )
    result = sample_locations(config)
    for warning in result.report["warnings"]:
        print(f"cubestream: warning: {warning}", file=sys.stderr)
    for path in write_locations(result, Path(args.out)):
        print(path)
    return 0


def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="X1: sample minicube locations on the Sentinel-2 grid")
    p.add_argument("--out", required=True, help="locations table to write (.parquet)")
    p.add_argument("--area", help="africa (default), min_lon,min_lat,max_lon,max_lat or GeoJSON")
    p.add_argument("--replica", help="take the strata (and area) from a replica directory")
    p.add_argument("--climate", help="climate-zone raster (Koppen-Geiger codes)")
    p.add_argument("--landcover", help="land-cover raster (ESA WorldCover codes)")
    p.add_argument("--geomorphons", help="geomorphon raster (classes 1..10)")
    p.add_argument("--target", type=int, required=True, help="number of boxes to draw")
    p.add_argument("--allocation", choices=["proportional", "equalised", "mixed"], default="mixed")
    p.add_argument("--mix", type=float, default=0.5, help="equal-share weight of 'mixed'")
    p.add_argument("--min-per-stratum", type=int, default=1)
    p.add_argument("--cap-per-tile", type=int, default=None)
    p.add_argument("--top-tiles", type=int, default=None, help="keep the N fullest tiles")
    p.add_argument("--test", type=float, default=0.2, help="test share")
    p.add_argument("--val", type=float, default=0.0, help="validation share (e.g. 0.05)")
    p.add_argument("--block-km", type=float, default=50.0, help="spatial block size")
    p.add_argument(
        "--ood-space",
        type=float,
        default=0.0,
        help="share of boxes held out as whole regions: the ood_space test track (part of --test)",
    )
    p.add_argument("--region-km", type=float, default=500.0, help="held-out region size")
    p.add_argument("--max-water", type=float, default=0.5, help="max water/no-data share")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes reading strata")
    p.set_defaults(func=_sample)


def _l1(args: argparse.Namespace) -> int:
    import json

    from cubestream.l1 import IntegrityPolicy, L1Config, build_l1
    from cubestream.l1.auxiliary import AuxiliarySources

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
    config = L1Config(
        locations=args.locations,
        stac=args.stac,
        out=args.out,
        start=args.start,
        end=args.end,
        collection=args.collection,
        provider=args.provider,
        offset=args.offset,
        max_cloud_cover=args.max_cloud_cover,
        days_per_chunk=args.days_per_chunk,
        read_block=args.read_block,
        integrity=IntegrityPolicy(
            on_missing=args.on_missing, max_missing_dates=args.max_missing_dates
        ),
        gdal_env=gdal_env,
        storage_options=storage_options,
        scheduler=args.scheduler,
        cluster=args.cluster,
        workers=args.workers,
        threads_per_worker=args.threads,
        memory_limit=args.memory_limit,
        tiles=tuple(args.tiles) if args.tiles else None,
        auxiliary=AuxiliarySources(
            smap=args.smap,
            smap_version=args.smap_version,
            era5=args.era5,
            srtm=args.dem,
            dem_source=args.dem_source,
            era5_layout=args.era5_layout,
            landcover=args.landcover,
            geomorphons=args.geomorphons,
            storage_options=source_options,
        ),
    )
    report = build_l1(config, dry_run=args.dry_run)
    statuses = {tile: entry.get("status") for tile, entry in report["tiles"].items()}
    if args.dry_run:
        for tile, entry in report["tiles"].items():
            print(json.dumps({"tile": tile, **entry}))
    else:
        summary = {"store": args.out, "tiles": statuses, "seconds": report["seconds"]}
        summary["offset_disagreements"] = len(report.get("offset_disagreements", []))
        print(json.dumps(summary))
    return 0 if all(s != "failed" for s in statuses.values()) else 1


def _add_l1(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("l1", help="X2 + X3: build the level-1 Zarr store of minicubes")
    p.add_argument("--locations", required=True, help="locations table of `cubestream sample`")
    p.add_argument("--stac", required=True, help="STAC API URL or a local items file")
    p.add_argument("--out", required=True, help="L1 store: local path or s3:// URL")
    p.add_argument("--start", required=True, type=parse_date, help="first day, YYYY-MM-DD")
    p.add_argument("--end", required=True, type=parse_date, help="last day, YYYY-MM-DD")
    _add_catalogue_options(p)
    p.add_argument(
        "--offset",
        choices=list(OFFSET_POLICIES),
        default="verify",
        help="reflectance offset: trust the metadata, verify it on the pixels, detect from them",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="plan only: per tile the items, days, read blocks and bytes to fetch (JSON lines)",
    )
    p.add_argument("--endpoints", help="JSON line of `cubestream replica serve` (S3 settings)")
    p.add_argument(
        "--smap",
        help="SMAP L4 SPL4SMGP folder: NSIDC's YYYY.MM.DD/ day folders or the granules (path, s3://)",
    )
    p.add_argument(
        "--smap-version",
        help="SPL4SMGP version to read where several are mixed: 7, 8 or a science id (Vv8010)",
    )
    p.add_argument(
        "--era5",
        help="ERA5 source: a Zarr store (today's layout, ARCO-ERA5, WeatherBench2) or new-CDS "
        "NetCDF (a .nc file, glob, folder or .zip); path or URL",
    )
    p.add_argument(
        "--era5-layout",
        choices=["auto", "cubestream", "arco", "cds", "weatherbench2"],
        default="auto",
        help="layout of --era5 (default: detected from its names, dimensions and attributes)",
    )
    p.add_argument(
        "--dem",
        "--srtm",
        dest="dem",
        help="DEM: folder/prefix of SRTM (S02E036.tif/.hgt[.zip]) or Copernicus DEM tiles, a VRT"
        " or raster, a STAC items file or stac+https://API[#collection] (default cop-dem-glo-30)",
    )
    p.add_argument(
        "--dem-source",
        choices=["auto", "srtm", "copernicus", "vrt", "stac"],
        default="auto",
        help="kind of the --dem source (auto: read from what it points at)",
    )
    p.add_argument("--landcover", help="land-cover class raster (WorldCover codes), path or URL")
    p.add_argument("--geomorphons", help="geomorphon class raster (1..10), path or URL")
    p.add_argument("--max-cloud-cover", type=float, default=None)
    p.add_argument("--days-per-chunk", type=int, default=16)
    p.add_argument(
        "--read-block", type=int, default=1024, help="px at 30 m of each COG read (block size)"
    )
    p.add_argument("--on-missing", choices=["flag", "exclude"], default="flag")
    p.add_argument("--max-missing-dates", type=int, default=3)
    p.add_argument("--scheduler", help="address of a running Dask scheduler")
    p.add_argument(
        "--cluster", metavar="PROFILE", help="cluster profile: YAML file or shipped name"
    )
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    p.add_argument("--threads", type=int, default=2, help="threads per worker")
    p.add_argument("--memory-limit", default="4GB", help="memory limit per worker")
    p.add_argument("--tiles", nargs="*", help="build only these tiles")
    p.set_defaults(func=_l1)


def _l2(args: argparse.Namespace) -> int:
    import json

    from cubestream.l2 import L2Config, build_l2, export_netcdf
    from cubestream.l2.masks import INVALID_SCL

    storage_options: dict[str, object] = {}
    if args.endpoints:
        storage_options = inputs.endpoints(args.endpoints).storage_options()
    inputs.check_l2(args, storage_options if args.l1.startswith("s3://") else {})
    config = L2Config(
        l1=args.l1,
        locations=args.locations,
        out=args.out,
        windows_per_cube=args.windows_per_cube,
        seed=args.seed,
        samples_per_chunk=args.samples_per_chunk,
        start=args.start,
        end=args.end,
        tiles=tuple(args.tiles) if args.tiles else None,
        weather=tuple(args.weather) if args.weather else None,
        ood_time_from=args.ood_time_from,
        invalid_scl=args.invalid_scl or INVALID_SCL,
        reach_days=args.reach_days,
        min_valid_fraction=args.min_valid_fraction,
        kndvi_normalise=args.kndvi_normalise,
        era5_point=args.era5_point,
        storage_options=storage_options if args.out.startswith("s3://") else {},
        l1_storage_options=storage_options if args.l1.startswith("s3://") else {},
        scheduler=args.scheduler,
        cluster=args.cluster,
        workers=args.workers,
        threads_per_worker=args.threads,
        memory_limit=args.memory_limit,
    )
    report = build_l2(config)
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


def _scl_classes(text: str) -> tuple[int, ...]:
    try:
        classes = tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated SCL classes: {text!r}") from None
    if not all(0 <= c <= 11 for c in classes):
        raise argparse.ArgumentTypeError(f"SCL classes are 0..11: {text!r}")
    return classes


def _add_l2(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("l2", help="X4: build the level-2 store of gap-filled 10-daily samples")
    p.add_argument("--l1", required=True, help="L1 store of `cubestream l1` (path or s3://)")
    p.add_argument("--locations", required=True, help="locations table (holds the splits)")
    p.add_argument("--out", required=True, help="L2 store: local path or s3:// URL")
    p.add_argument("--netcdf", help="also export one NetCDF file per sample into this directory")
    p.add_argument("--windows-per-cube", type=int, default=1, help="45-step windows per cube")
    p.add_argument("--seed", type=int, default=0, help="seed of the window draws")
    p.add_argument("--samples-per-chunk", type=int, default=1, help="samples per chunk")
    p.add_argument(
        "--start", type=parse_date, help="first day admitted, YYYY-MM-DD (default: the L1 range)"
    )
    p.add_argument(
        "--end", type=parse_date, help="last day admitted, YYYY-MM-DD (default: the L1 range)"
    )
    p.add_argument("--tiles", nargs="*", help="use only these tiles of the L1 store")
    p.add_argument("--weather", nargs="*", help="daily L1 weather variables to keep (default all)")
    p.add_argument(
        "--ood-time-from",
        type=parse_date,
        help="train/val windows start before this day; test windows from it on are the "
        "ood_time tracks, YYYY-MM-DD",
    )
    p.add_argument(
        "--invalid-scl",
        type=_scl_classes,
        default=None,
        help="comma-separated SCL classes that make an observation invalid (default: "
        "cubestream.l2.masks.INVALID_SCL, no data, saturated, shadows, clouds, cirrus, snow)",
    )
    p.add_argument("--reach-days", type=int, default=90, help="days read beyond the window ends")
    p.add_argument(
        "--min-valid-fraction", type=float, default=0.1, help="skip windows with less valid data"
    )
    p.add_argument("--kndvi-normalise", action="store_true", help="divide kNDVI by tanh(1)")
    p.add_argument(
        "--era5-point",
        choices=["nearest", "window_mean"],
        default="nearest",
        help="ERA5 cell nearest each cube's centre, or the mean of the tile's window",
    )
    p.add_argument("--endpoints", help="JSON line of `cubestream replica serve` (S3 settings)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler")
    p.add_argument(
        "--cluster", metavar="PROFILE", help="cluster profile: YAML file or shipped name"
    )
    p.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    p.add_argument("--threads", type=int, default=1, help="threads per worker")
    p.add_argument("--memory-limit", default="4GB", help="memory limit per worker")
    p.set_defaults(func=_l2)


def _train(args: argparse.Namespace) -> int:
    if args.help and not args.rest:
        # the subcommands without importing torch; `train fit --help` is LightningCLI's own
        args.print_help()
        return 0
    inputs.check_train(args.rest)
    from trainers.cli import main as train_main

    return train_main(["--help", *args.rest] if args.help else args.rest)


def _add_train(sub: argparse._SubParsersAction) -> None:
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


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="summarise a store (L1, L2) or a locations table")
    p.add_argument("store", help="Zarr store path/URL or a .parquet table")
    p.set_defaults(func=_inspect)


def _add_catalogue_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--collection", default="sentinel-2-l2a", help="STAC collection id")
    p.add_argument(
        "--provider",
        choices=list(PROVIDERS),
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


def _add_stac(sub: argparse._SubParsersAction) -> None:
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
    _add_replica(sub)
    _add_sample(sub)
    _add_stac(sub)
    _add_l1(sub)
    _add_l2(sub)
    _add_inspect(sub)
    _add_train(sub)
    add_cluster_parser(sub)
    add_run_parser(sub)
    add_bench_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return its exit code (:class:`~cubestream._exit.ExitCode`).

    Errors a user can fix print one line naming the item and exit with the code of their kind;
    unexpected ones print their traceback (``--debug`` or ``CUBESTREAM_DEBUG=1``: every error).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(ExitCode.USAGE)
    func: Callable[[argparse.Namespace], int] = args.func
    return guarded(lambda: func(args), debug=debug_wanted(args.debug))


if __name__ == "__main__":
    sys.exit(main())
