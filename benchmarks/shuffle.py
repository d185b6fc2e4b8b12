"""Shuffle quality of the loader's chunk-aware order against a uniform global shuffle.

Pure planning, no I/O: the loader's order is :func:`cubestream.stream.plan_epoch` itself, on a
model of the Africa round's L2 store (``--tiles`` tiles of ``--cubes-per-tile`` cubes, stored
tile by tile, ``samples_per_chunk`` consecutive samples per chunk)::

    python -m benchmarks.shuffle [--tiles 200] [--cubes-per-tile 120] [--batch-size 8]
                                 [--ranks 1] [--out FILE]

For the defaults (``chunk_buffer=4``, one sample per chunk, whole samples), for each knob that
trades reads for randomness, one at a time (``chunk_buffer``, ``samples_per_chunk``, patches per
sample), and for ``chunk_buffer`` with 4 samples per chunk and 4 patches per sample, the
figures of one epoch, over all batches of all ranks:

- ``cubes``: mean number of distinct cubes (samples) in a batch;
- ``tiles``: mean number of distinct Sentinel-2 tiles in a batch;
- ``same_cube_pairs``: share of the pairs of items of a batch that come from the same cube;
- ``read_amplification``: bytes read per byte delivered. The loader reads every chunk of a
  buffer once (a whole chunk, for all its samples and patches); a uniform shuffle reads, for
  every batch, each chunk its items lie in (no cache between batches).

The same figures for a uniform global shuffle of the same items (``numpy`` permutation, batches
cut in order) stand beside them. One JSON line with the context is appended to ``--out``
(default ``benchmarks/results/shuffle.jsonl``) and a table printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _context
from cubestream.options import add_flags, from_args, option
from cubestream.stream import ShardSpec, plan_epoch

__all__ = ["Settings", "figures", "main", "measure", "table"]

RESULTS = Path(__file__).resolve().parent / "results" / "shuffle.jsonl"
DEFAULT = {"chunk_buffer": 4, "samples_per_chunk": 1, "patches": 1}
KNOBS = {"chunk_buffer": (1, 2, 16, 64), "samples_per_chunk": (4, 16), "patches": (4, 16)}
"""Each knob alone, the others at :data:`DEFAULT`."""
MIXED = {"samples_per_chunk": 4, "patches": 4}
"""With several items per chunk, ``chunk_buffer`` is what buys the mixing back: swept here."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The modelled store and loader: the flags but ``seed``."""

    tiles: int = option(200, help="Sentinel-2 tiles of the modelled store")
    cubes_per_tile: int = option(120, help="cubes (samples) of each tile")
    batch_size: int = option(8, help="items per batch")
    ranks: int = option(1, help="ranks sharing the epoch")
    seed: int = 0


def _pairs(samples: np.ndarray) -> tuple[int, int]:
    """Same-cube pairs and all pairs among the items of one batch."""
    _, counts = np.unique(samples, return_counts=True)
    n = len(samples)
    return int((counts * (counts - 1) // 2).sum()), n * (n - 1) // 2


def figures(batches: Sequence[np.ndarray], tile_of: np.ndarray, chunk_reads: int,
            unit: int, patches: int) -> dict[str, float]:  # fmt: skip
    """The quality figures of ``batches`` (arrays of sample ids) and their read amplification."""
    same = total = 0
    cubes, tiles = [], []
    for samples in batches:
        cubes.append(len(np.unique(samples)))
        tiles.append(len(np.unique(tile_of[samples])))
        a, b = _pairs(samples)
        same, total = same + a, total + b
    items = sum(len(b) for b in batches)
    return {
        "cubes": float(np.mean(cubes)),
        "tiles": float(np.mean(tiles)),
        "same_cube_pairs": same / total if total else 0.0,
        "read_amplification": chunk_reads * unit * patches / items,
    }


def _loader(settings: Settings, knobs: dict[str, int]) -> tuple[list[np.ndarray], int]:
    """The loader's batches of epoch 0 over all ranks, and the chunks its workers read."""
    samples = settings.tiles * settings.cubes_per_tile
    spec = ShardSpec(batch_size=settings.batch_size, seed=settings.seed,
                     chunk_buffer=knobs["chunk_buffer"])  # fmt: skip
    batches, reads = [], 0
    for rank in range(settings.ranks):
        plan = plan_epoch(np.arange(samples), unit=knobs["samples_per_chunk"],
                          patches=knobs["patches"], spec=spec, epoch=0, rank=rank,
                          world_size=settings.ranks)  # fmt: skip
        batches += [plan.batch(i)[:, 0] for i in range(plan.n_batches)]
        for first, end in plan.runs:
            size = plan.batch_size
            reads += sum(len(u) for u in plan.units_of(slice(first * size, end * size)).values())
    return batches, reads


def _uniform(settings: Settings, knobs: dict[str, int]) -> tuple[list[np.ndarray], int]:
    """A uniform global shuffle of the same items, and the chunks each batch reads."""
    samples = settings.tiles * settings.cubes_per_tile
    items = np.repeat(np.arange(samples), knobs["patches"])
    items = np.random.default_rng(settings.seed).permutation(items)
    size = settings.batch_size
    batches = [items[i : i + size] for i in range(0, len(items) - size + 1, size)]
    reads = sum(len(np.unique(b // knobs["samples_per_chunk"])) for b in batches)
    return batches, reads


def _cases() -> Iterator[tuple[str, dict[str, int]]]:
    yield "default", dict(DEFAULT)
    for knob, values in KNOBS.items():
        for value in values:
            yield f"{knob}={value}", {**DEFAULT, knob: value}
    for buffer in (1, 4, 16, 64):
        yield (
            f"samples_per_chunk=4, patches=4, chunk_buffer={buffer}",
            {
                **MIXED,
                "chunk_buffer": buffer,
            },
        )


def measure(settings: Settings) -> dict[str, Any]:
    """Figures of the loader and of the uniform shuffle for the default and each knob."""
    tile_of = np.arange(settings.tiles * settings.cubes_per_tile) // settings.cubes_per_tile
    rows = []
    for name, knobs in _cases():
        started = time.perf_counter()
        ours, reads = _loader(settings, knobs)
        planned = time.perf_counter() - started
        uniform, uniform_reads = _uniform(settings, knobs)
        unit, patches = knobs["samples_per_chunk"], knobs["patches"]
        rows.append({
            "case": name,
            "knobs": knobs,
            "loader": figures(ours, tile_of, reads, unit, patches),
            "uniform": figures(uniform, tile_of, uniform_reads, unit, patches),
            "planning_s": round(planned, 3),
        })  # fmt: skip
    return {
        "benchmark": "shuffle",
        "time": _context.now(),
        "git": _context.git(),
        "machine": _context.machine(),
        "versions": _context.versions(("cubestream", "numpy")),
        "settings": asdict(settings),
        "rows": rows,
    }


def table(record: dict[str, Any]) -> str:
    """A Markdown table of ``record``: loader | uniform shuffle for each figure."""
    s = record["settings"]
    lines = [
        f"{s['tiles']} tiles x {s['cubes_per_tile']} cubes, batch {s['batch_size']}, "
        f"{s['ranks']} rank(s); each cell: loader / uniform global shuffle",
        "",
        "| case | cubes per batch | tiles per batch | same-cube pairs | read amplification |",
        "|---|---|---|---|---|",
    ]
    for row in record["rows"]:
        a, b = row["loader"], row["uniform"]
        lines.append(
            f"| {row['case']} | {a['cubes']:.2f} / {b['cubes']:.2f} | "
            f"{a['tiles']:.2f} / {b['tiles']:.2f} | "
            f"{a['same_cube_pairs']:.3f} / {b['same_cube_pairs']:.3f} | "
            f"{a['read_amplification']:.2f} / {b['read_amplification']:.2f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: see the module's description."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shuffle")
    add_flags(parser, Settings)
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON-lines file to append to")
    args = parser.parse_args(argv)
    settings: Settings = from_args(Settings, args)
    return _context.keep_and_print(args.out, measure(settings), table)


if __name__ == "__main__":
    main()
