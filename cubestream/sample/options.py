"""The options of ``cubestream sample``, declared once: its flags and the pipeline's ``sample``.

:class:`SampleOptions` is the flat form of a :class:`~cubestream.sample.locations.SampleConfig`
as a user gives it (the strata rasters or a replica, the target, the allocation and split
shares); :meth:`SampleOptions.config` builds the config. The flags of ``cubestream sample`` and
the ``sample`` section of a pipeline YAML are derived from its fields
(:mod:`cubestream.options`). Light on purpose: the command line imports it to build its parser.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from cubestream.errors import UsageError
from cubestream.options import option

if TYPE_CHECKING:
    from cubestream.sample.locations import SampleConfig

__all__ = ["SampleOptions"]


@dataclass(frozen=True, kw_only=True)
class SampleOptions:
    """What ``cubestream sample`` is given (see each field's help)."""

    out: str = option(help="locations table to write (.parquet)")
    area: str | None = option(
        None, help="africa (default), min_lon,min_lat,max_lon,max_lat or GeoJSON"
    )
    replica: str | None = option(None, help="take the strata (and area) from a replica directory")
    climate: str | None = option(None, help="climate-zone raster (Koppen-Geiger codes)")
    landcover: str | None = option(None, help="land-cover raster (ESA WorldCover codes)")
    geomorphons: str | None = option(None, help="geomorphon raster (classes 1..10)")
    target: int = option(help="number of boxes to draw")
    allocation: Literal["proportional", "equalised", "mixed"] = option(
        "mixed", help="share of the target per stratum: proportional, equal, or a mix"
    )
    mix: float = option(0.5, help="equal-share weight of 'mixed'")
    min_per_stratum: int = option(1, help="boxes every non-empty stratum gets first")
    cap_per_tile: int | None = option(None, help="at most this many boxes per tile")
    top_tiles: int | None = option(None, help="keep the N fullest tiles")
    test: float = option(0.2, help="test share")
    val: float = option(0.0, help="validation share (e.g. 0.05)")
    block_km: float = option(50.0, help="spatial block size")
    ood_space: float = option(
        0.0,
        help="share of boxes held out as whole regions: the ood_space test track (part of --test)",
    )
    region_km: float = option(500.0, help="held-out region size")
    max_water: float = option(0.5, help="max water/no-data share")
    seed: int = option(0, help="seed of the draw and of the splits")
    workers: int = option(1, execution=True, help="processes reading strata")

    def config(self) -> SampleConfig:
        """The :class:`~cubestream.sample.locations.SampleConfig` these options describe.

        Raises
        ------
        UsageError
            If neither a replica nor all three strata rasters are given.
        """
        from cubestream.sample import AllocationRule, SampleConfig, SplitRule, StrataSources

        if self.replica:
            strata = StrataSources.from_replica(Path(self.replica))
            area = self.area or str(Path(self.replica) / "imaged.geojson")
        elif self.climate and self.landcover and self.geomorphons:
            strata = StrataSources(
                climate=self.climate, landcover=self.landcover, geomorphons=self.geomorphons
            )
            area = self.area or "africa"
        else:
            raise UsageError(
                "give the strata rasters: --replica DIR, or all of --climate, --landcover and "
                "--geomorphons (paths or URLs)"
            )
        return SampleConfig(
            area=area,
            strata=replace(strata, max_water_fraction=self.max_water),
            target=self.target,
            allocation=AllocationRule(
                method=self.allocation, mix=self.mix, min_per_stratum=self.min_per_stratum
            ),
            splits=SplitRule.with_validation(
                self.val,
                test=self.test,
                block_km=self.block_km,
                ood_space=self.ood_space,
                region_km=self.region_km,
            ),
            cap_per_tile=self.cap_per_tile,
            top_tiles=self.top_tiles,
            seed=self.seed,
            workers=self.workers,
        )
