"""The per-track, per-land-cover scores table of a test run (JSON and Markdown).

:class:`~trainers.task.ForecastTask` collects, for each forecaster (the model, persistence,
climatology), the per (cube, land cover) rows of :func:`trainers.scores.cube_class_rows`, each
labelled with the sample's test track (``iid``, ``ood_space``, ``ood_time``,
``ood_space_time``: :mod:`cubestream.sample.splits`, :mod:`cubestream.l2.plan`). This module
turns them into the table: one row per (track, forecaster) with the GreenEarthNet scores
(:func:`trainers.scores.summarize`), the share of (cube, land cover) pairs beating climatology,
and the scores per land cover; the track ``all`` pools every test sample.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from trainers.scores import beat_share, summarize

__all__ = ["LANDCOVER_NAMES", "TRACK_ORDER", "score_table", "table_markdown"]

TRACK_ORDER = ("all", "iid", "ood_space", "ood_time", "ood_space_time")
"""Tracks in table order."""
LANDCOVER_NAMES = {"10": "tree", "20": "shrub", "30": "grass", "40": "crop"}
"""Names of the scored WorldCover classes."""


def score_table(
    rows: Sequence[Mapping[str, Any]], reference: str = "climatology"
) -> list[dict[str, Any]]:
    """One entry per (track, forecaster): the summary scores and the share beating ``reference``.

    ``rows`` carry ``track`` and ``forecaster`` labels (and a ``sample`` index: rows of several
    samples of one cube are kept apart by ``cube_id`` + ``sample``).
    """
    keyed = [{**r, "cube_id": f"{r['cube_id']}#{r.get('sample', 0)}"} for r in rows]
    tracks = sorted({str(r["track"]) for r in keyed}, key=_track_rank)
    forecasters = list(dict.fromkeys(str(r["forecaster"]) for r in keyed))
    table: list[dict[str, Any]] = []
    for track in ("all", *tracks):
        here = [r for r in keyed if track == "all" or r["track"] == track]
        ref = [r for r in here if r["forecaster"] == reference]
        for name in forecasters:
            mine = [r for r in here if r["forecaster"] == name]
            entry = {"track": track, "forecaster": name, **summarize(mine)}
            entry["beats_" + reference] = beat_share(mine, ref) if name != reference else math.nan
            table.append(entry)
    return table


def _track_rank(track: str) -> tuple[int, str]:
    return (TRACK_ORDER.index(track) if track in TRACK_ORDER else len(TRACK_ORDER), track)


def _cell(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def table_markdown(table: Sequence[Mapping[str, Any]], reference: str = "climatology") -> str:
    """The table as Markdown: headline scores, then NSE per land cover."""
    beat = "beats_" + reference
    head = ["track", "forecaster", "cubes", "pixels", "NSE", "RMSE", "R2", "veg score", beat]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in table:
        cells = [e["track"], e["forecaster"], e["cubes"], e["pixels"], e["nse"], e["rmse"]]
        cells += [e["r2"], e["veg_score"], e[beat]]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    classes = sorted({c for e in table for c in e["per_landcover"]}, key=int)
    if classes:
        names = [f"NSE {LANDCOVER_NAMES.get(c, c)}" for c in classes]
        lines += ["", "| track | forecaster | " + " | ".join(names) + " |"]
        lines.append("|" + "---|" * (2 + len(classes)))
        for e in table:
            values = [e["per_landcover"].get(c, {}).get("nse", math.nan) for c in classes]
            lines.append(
                f"| {e['track']} | {e['forecaster']} | "
                + " | ".join(_cell(v) for v in values)
                + " |"
            )
    return "\n".join(lines) + "\n"
