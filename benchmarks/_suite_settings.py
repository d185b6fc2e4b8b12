"""What one run of the benchmark suite is given: :class:`SuiteSettings`, light to import.

Its fields (with :class:`~benchmarks.projection.ClusterSpec`'s, nested) are the one declaration
of the options of ``cubestream bench run``, whose flags are derived from them
(:mod:`cubestream.options`). Here rather than in :mod:`benchmarks.suite` because building the
command line must not import the stages' benchmarks (and torch with them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from benchmarks.projection import ClusterSpec
from benchmarks.report import HISTORY, STAGES
from cubestream.options import nested, option

__all__ = ["PRESET_NAMES", "Preset", "SuiteSettings"]

Preset = Literal["tiny", "small", "tile"]
"""The names of the presets of :data:`benchmarks.suite.PRESETS`."""
PRESET_NAMES: tuple[Preset, ...] = get_args(Preset)


@dataclass(frozen=True, kw_only=True)
class SuiteSettings:
    """One run of the suite.

    Attributes
    ----------
    stages : tuple of str
        Stages to run, in order.
    preset : str
        Sizes (:data:`~benchmarks.suite.PRESETS`).
    history : Path
        JSON-lines history the records are appended to (its flag is declared with the report's,
        :class:`benchmarks.cli.ReportOptions`).
    workdir : Path, optional
        Where the stages' stores go (a temporary directory by default).
    cluster : ClusterSpec
        The cluster the projection is for.
    """

    stages: tuple[str, ...] = option(
        STAGES, nargs="+", choices=lambda: STAGES, help="stages to run, in order"
    )
    preset: Preset = option("tiny", help="sizes")
    history: Path = HISTORY
    workdir: Path | None = option(None, help="keep stores here")
    cluster: ClusterSpec = nested(ClusterSpec)
