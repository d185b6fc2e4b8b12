r"""Compare test runs by their protocol tables, with seeds as repeats.

Each run of ``cubestream train test`` writes ``protocol_scores.json`` (:mod:`trainers.task`,
:mod:`trainers.score_table`). Given the runs of model A and of model B (one per seed: the same
model trained with different seeds), this gives per test track

- each side's mean and spread (sample standard deviation over the seeds; 0 with one seed) of
  NSE, RMSE, R2, the veg score and the share beating climatology;
- the difference of the means (A - B) and the share of (cube, land cover) pairs where A beats B
  by the protocol's rule (:func:`trainers.scores.beat_share`), averaged over seed pairs (A's
  i-th seed against B's i-th seed), with its spread;

and writes ``runs.json`` and ``runs.md``::

    python -m trainers.compare_runs --a demo/train/context_rnn/seed* \
        --b demo/train/rnn/seed* --out demo/train/compare
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainers.errors import TrainerConfigError
from trainers.score_table import TRACK_ORDER
from trainers.scores import beat_share

__all__ = ["SCORES", "compare_runs", "load_run", "main", "runs_markdown"]

SCORES = ("nse", "rmse", "r2", "veg_score", "beats_climatology")
"""Scores summarised over seeds."""


def load_run(path: Path) -> dict[str, Any]:
    """The protocol document of a run (its directory or its ``protocol_scores.json``)."""
    file = path / "protocol_scores.json" if path.is_dir() else path
    if not file.is_file():
        raise TrainerConfigError(
            f"no protocol scores at {file}: run `cubestream train test` for that run first"
        )
    return dict(json.loads(file.read_text()))


def _spread(values: Sequence[float]) -> dict[str, float]:
    kept = [v for v in values if not math.isnan(v)]
    if not kept:
        return {"mean": math.nan, "std": math.nan, "n": 0}
    std = statistics.stdev(kept) if len(kept) > 1 else 0.0
    return {"mean": statistics.fmean(kept), "std": std, "n": len(kept)}


def _model_entry(run: Mapping[str, Any], track: str, forecaster: str) -> dict[str, Any] | None:
    for entry in run["table"]:
        if entry["track"] == track and entry["forecaster"] == forecaster:
            return dict(entry)
    return None


def _rows(run: Mapping[str, Any], track: str, forecaster: str) -> list[dict[str, Any]]:
    return [
        {**r, "cube_id": f"{r['cube_id']}#{r.get('sample', 0)}"}
        for r in run["rows"]
        if r["forecaster"] == forecaster and (track == "all" or r["track"] == track)
    ]


def compare_runs(
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    *,
    forecaster_a: str = "model",
    forecaster_b: str = "model",
) -> dict[str, Any]:
    """Per track: both sides over their seeds, and A against B (see the module docstring)."""
    if not a or not b:
        raise TrainerConfigError("give at least one run for each side")
    tracks = sorted(
        {e["track"] for run in (*a, *b) for e in run["table"]},
        key=lambda t: TRACK_ORDER.index(t) if t in TRACK_ORDER else len(TRACK_ORDER),
    )
    out: dict[str, Any] = {"seeds": {"a": len(a), "b": len(b)}, "tracks": {}}
    for track in tracks:
        sides: dict[str, Any] = {}
        for side, runs, name in (("a", a, forecaster_a), ("b", b, forecaster_b)):
            entries = [e for e in (_model_entry(r, track, name) for r in runs) if e]
            sides[side] = {s: _spread([float(e[s]) for e in entries]) for s in SCORES}
        pairs = [
            beat_share(_rows(ra, track, forecaster_a), _rows(rb, track, forecaster_b))
            for ra, rb in zip(a, b, strict=False)
        ]
        sides["a_minus_b"] = {s: sides["a"][s]["mean"] - sides["b"][s]["mean"] for s in SCORES}
        sides["a_beats_b"] = _spread(pairs)
        out["tracks"][track] = sides
    return out


def _cell(spread: Mapping[str, float]) -> str:
    if math.isnan(spread["mean"]):
        return "—"
    return f"{spread['mean']:.3f} ± {spread['std']:.3f}"


def runs_markdown(result: Mapping[str, Any], names: tuple[str, str] = ("A", "B")) -> str:
    """The comparison as a Markdown table (mean ± standard deviation over seeds)."""
    head = ["track", "model", "NSE", "RMSE", "R2", "veg score", "beats climatology"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for track, sides in result["tracks"].items():
        for side, name in zip(("a", "b"), names, strict=True):
            cells = [_cell(sides[side][s]) for s in SCORES]
            lines.append(f"| {track} | {name} | " + " | ".join(cells) + " |")
        lines.append(
            f"| {track} | {names[0]} beats {names[1]} | | | | | {_cell(sides['a_beats_b'])} |"
        )
    seeds = result["seeds"]
    lines.append(f"\nmean ± sd over seeds ({names[0]}: {seeds['a']}, {names[1]}: {seeds['b']})")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m trainers.compare_runs --a RUN... --b RUN... --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m trainers.compare_runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--a", nargs="+", required=True, help="runs of A (one per seed)")
    parser.add_argument("--b", nargs="+", required=True, help="runs of B (one per seed)")
    parser.add_argument("--names", nargs=2, default=("A", "B"), help="names of A and B")
    parser.add_argument(
        "--forecaster-b",
        default="model",
        help="compare with a baseline of B's runs instead (persistence, climatology)",
    )
    parser.add_argument("--out", required=True, help="directory for runs.json and runs.md")
    args = parser.parse_args(argv)
    result = compare_runs(
        [load_run(Path(p)) for p in args.a],
        [load_run(Path(p)) for p in args.b],
        forecaster_b=args.forecaster_b,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "runs.json").write_text(json.dumps(result, indent=1, allow_nan=True))
    markdown = runs_markdown(result, tuple(args.names))
    (out / "runs.md").write_text(markdown)
    print(markdown, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
