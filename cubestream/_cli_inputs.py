"""The inputs of each ``cubestream`` subcommand, checked before the command starts its work."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from cubestream.checks import (
    check_dates,
    check_locations,
    check_output_store,
    check_source,
    check_store,
    read_json_line,
    store_kind,
)
from cubestream.errors import CubestreamError, InputError, InputNotFoundError

__all__ = [
    "check_inspect",
    "check_l1",
    "check_l2",
    "check_profile",
    "check_sample",
    "check_train",
    "endpoints",
]


def endpoints(path: str) -> Any:
    """The :class:`~cubestream.endpoints.Endpoints` of an ``--endpoints`` file."""
    from cubestream.endpoints import Endpoints

    line = read_json_line(path, "--endpoints")
    try:
        return Endpoints.from_json(json.dumps(line))
    except (CubestreamError, KeyError, TypeError, ValueError):
        raise InputError(
            f"the --endpoints file {path} is not a line of `cubestream replica serve` (its "
            "first line lacks fields or has wrong ones): copy that line again"
        ) from None


def check_profile(spec: str | None) -> None:
    """Load a ``--cluster`` profile once, so a missing or malformed one fails first."""
    if spec is not None:
        from cubestream import _plugins as plugins

        plugins.load(plugins.CLUSTER_PROFILE)(spec)


def check_l1(args: argparse.Namespace, storage_options: dict[str, Any]) -> None:
    """Dates, locations table (on the grid), STAC source, output store, cluster profile."""
    from cubestream.l1.plan import CUBE_COLUMNS

    check_dates(args.start, args.end)
    check_locations(args.locations, ("tile", "epsg", *CUBE_COLUMNS))
    check_source(args.stac, "STAC source (--stac: API URL or items file)")
    check_output_store(args.out, "l1", storage_options or None)
    check_profile(args.cluster)


def check_l2(args: argparse.Namespace, l1_options: dict[str, Any]) -> None:
    """Dates, the L1 store, the locations table, the output store and NetCDF folder, profile."""
    check_dates(args.start, args.end)
    check_store(args.l1, "l1", l1_options or None)
    check_locations(args.locations, ("split",), on_grid=False)
    check_output_store(args.out, "l2")
    if args.netcdf and Path(args.netcdf).is_file():
        raise InputError(f"--netcdf {args.netcdf} is a file; give a directory")
    check_profile(args.cluster)


def check_sample(args: argparse.Namespace) -> None:
    """The output is not a directory; the replica and local strata rasters exist."""
    if Path(args.out).is_dir():
        raise InputError(f"--out {args.out} is a directory; give the .parquet file to write")
    if args.replica and not Path(args.replica).is_dir():
        raise InputNotFoundError(
            f"--replica {args.replica} is not a directory: make one with "
            "`cubestream replica create DIR`"
        )
    for option in ("climate", "landcover", "geomorphons"):
        value = getattr(args, option)
        if value:
            check_source(value, f"--{option} raster")


def check_inspect(target: str) -> None:
    """A ``.parquet`` table that can be read, or a readable Zarr store."""
    if target.endswith(".parquet"):
        check_locations(target, ("tile",), on_grid=False)
    else:
        store_kind(target)


def check_train(rest: list[str]) -> None:
    """Every ``--config``/``-c`` file named exists (LightningCLI reports it in 30 lines)."""
    for i, arg in enumerate(rest):
        value = None
        if arg in ("--config", "-c") and i + 1 < len(rest):
            value = rest[i + 1]
        elif arg.startswith("--config="):
            value = arg.split("=", 1)[1]
        if value is not None and not value.lstrip().startswith("{") and not Path(value).is_file():
            raise InputNotFoundError(
                f"the training config {value} does not exist: give a YAML file "
                "(e.g. trainers/configs/*.yaml)"
            )
