"""What defines a level-2 build: :class:`L2Config`, the one declaration of the options of L2.

Each option is a field with its help (:func:`cubestream.options.option`); the flags of
``cubestream l2``, the ``l2`` section of a pipeline YAML and the pipeline's ``cubestream l2``
command line are derived from these fields. Light on purpose: the command line imports it to
build its parser. How the build runs (its Dask client) is no part of it:
:func:`cubestream.l2.build.build_l2` takes the client from its caller.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from cubestream import __version__
from cubestream.errors import L2InputError
from cubestream.options import option

if TYPE_CHECKING:
    from cubestream.l2.plan import L2Plan
    from cubestream.l2.sample import Recipe

__all__ = ["INVALID_SCL", "Era5Point", "L2Config", "scl_classes"]

INVALID_SCL: tuple[int, ...] = (0, 1, 3, 8, 9, 10, 11)
"""SCL classes that make an observation invalid by default (see :mod:`cubestream.l2.masks`)."""
Era5Point = Literal["nearest", "window_mean"]
"""Where the ERA5 value of a sample is taken: the cell nearest the cube, or the window mean."""


def scl_classes(text: str) -> tuple[int, ...]:
    """Parse ``--invalid-scl 0,1,3``: comma-separated SCL classes, each 0..11."""
    try:
        classes = tuple(int(c) for c in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated SCL classes: {text!r}") from None
    if not all(0 <= c <= 11 for c in classes):
        raise argparse.ArgumentTypeError(f"SCL classes are 0..11: {text!r}")
    return classes


@dataclass(frozen=True, kw_only=True)
class L2Config:
    """Everything that defines a level-2 build.

    Attributes
    ----------
    l1 : str
        The L1 store (local path or ``s3://`` URL).
    locations : str
        The locations table (Parquet) the L1 store was built from: it holds the splits.
    out : str
        The L2 store.
    windows_per_cube : int
        Windows drawn per cube (:mod:`cubestream.l2.windows`).
    seed : int
        Seed of the window draws.
    samples_per_chunk : int
        Samples per chunk (and per task).
    start, end : datetime.date, optional
        Limit the record (the years admitted) to this range.
    tiles : tuple of str, optional
        Use only these tiles of the L1 store.
    weather : tuple of str, optional
        Daily L1 weather variables to keep (default: every ERA5 and SMAP variable).
    invalid_scl, reach_days, min_valid_fraction, kndvi_normalise, era5_point
        How each sample is made: :class:`~cubestream.l2.sample.Recipe`.
    storage_options : dict
        fsspec options of an ``s3://`` L2 store.
    l1_storage_options : dict
        fsspec options of an ``s3://`` L1 store.
    ood_time_from : datetime.date, optional
        First start day of the later period: train and val windows start before it, test
        windows from it on are the ``ood_time`` tracks (:mod:`cubestream.l2.plan`).
    """

    l1: str = option(help="L1 store of `cubestream l1` (path or s3://)")
    locations: str = option(help="locations table (holds the splits)")
    out: str = option(help="L2 store: local path or s3:// URL")
    windows_per_cube: int = option(1, help="45-step windows per cube")
    seed: int = option(0, help="seed of the window draws")
    samples_per_chunk: int = option(1, help="samples per chunk")
    start: dt.date | None = option(
        None, help="first day admitted, YYYY-MM-DD (default: the L1 range)"
    )
    end: dt.date | None = option(None, help="last day admitted, YYYY-MM-DD (default: the L1 range)")
    tiles: tuple[str, ...] | None = option(None, help="use only these tiles of the L1 store")
    weather: tuple[str, ...] | None = option(
        None, help="daily L1 weather variables to keep (default all)"
    )
    invalid_scl: tuple[int, ...] = option(
        INVALID_SCL,
        parse=scl_classes,
        separator=",",
        help="comma-separated SCL classes that make an observation invalid (default: "
        "cubestream.l2.masks.INVALID_SCL, no data, saturated, shadows, clouds, cirrus, snow)",
    )
    reach_days: int = option(90, help="days read beyond the window ends")
    min_valid_fraction: float = option(0.1, help="skip windows with less valid data")
    kndvi_normalise: bool = option(False, help="divide kNDVI by tanh(1)")
    era5_point: Era5Point = option(
        "nearest", help="ERA5 cell nearest each cube's centre, or the mean of the tile's window"
    )
    ood_time_from: dt.date | None = option(
        None,
        help="train/val windows start before this day; test windows from it on are the "
        "ood_time tracks, YYYY-MM-DD",
    )
    storage_options: dict[str, Any] = field(default_factory=dict)
    l1_storage_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.windows_per_cube < 1:
            raise L2InputError(f"windows_per_cube must be at least 1: {self.windows_per_cube}")
        if self.samples_per_chunk < 1:
            raise L2InputError(f"samples_per_chunk must be at least 1: {self.samples_per_chunk}")

    def recipe(self, weather: dict[str, str]) -> Recipe:
        """The per-sample settings, with the weather variables resolved by the plan."""
        from cubestream.l2.sample import Recipe

        try:
            return Recipe(
                weather=weather,
                invalid_scl=tuple(sorted(set(self.invalid_scl))),
                reach_days=self.reach_days,
                min_valid_fraction=self.min_valid_fraction,
                kndvi_normalise=self.kndvi_normalise,
                era5_point=self.era5_point,
            )
        except ValueError as exc:
            raise L2InputError(str(exc)) from exc

    def signature(self, plan: L2Plan) -> dict[str, Any]:
        """What a store must have been built with to be resumed or reused as is."""
        from cubestream.l2.encoding import ENCODED
        from cubestream.l2.store import COMPRESSOR

        signature = {
            "l1": self.l1,
            "inputs": plan.digest,
            "windows_per_cube": self.windows_per_cube,
            "seed": self.seed,
            "samples_per_chunk": self.samples_per_chunk,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "tiles": list(self.tiles) if self.tiles else None,
            **({"ood_time_from": self.ood_time_from.isoformat()} if self.ood_time_from else {}),
            "recipe": asdict(self.recipe(plan.weather)),
            "encoding": {**ENCODED, "compressor": COMPRESSOR.to_dict()},
            "cubestream": __version__,
        }
        return dict(json.loads(json.dumps(signature)))
