"""Loader start-up at scale: planning time and time to the first batch, by store size and ranks.

Stores are metadata-only L2 stores (``dem`` of 128 px, ``Settings.size``, which no flag sets;
one sample per chunk; and the per-sample ``cube_id``, ``split`` and ``valid_fraction``):
unwritten chunks cost nothing in zarr and read as fill values, so a store of a million samples
is made in seconds::

    python -m benchmarks.startup [--samples 10000 100000 1000000] [--ranks 1 8 64]
                                 [--batch-size 8] [--out FILE]

For each store and number of ranks, for the last rank (``rank = ranks - 1``; every rank does
the same work):

- ``open_s``: opening the store and reading its per-sample metadata (what every rank does);
- ``order_s``: building the epoch's order (:class:`~cubestream.stream.shards.EpochOrder`:
  O(units), the same on every rank);
- ``plan_s``: mapping the rank's own range to items (O(items of the rank));
- ``mapped``: items the rank mapped, against ``items / ranks``: no rank maps the others';
- ``first_batch_s``: :func:`~cubestream.stream.make_loader` to the first batch, in process.

One JSON line with the context is appended to ``--out`` (default
``benchmarks/results/startup.jsonl``) and a table printed.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from benchmarks import _context
from cubestream.options import add_flags, from_args, option
from cubestream.stream import ShardSpec, make_loader, plan_epoch
from cubestream.stream.shards import EpochOrder
from cubestream.stream.store import describe

__all__ = ["Settings", "main", "measure", "metadata_store", "table"]

RESULTS = Path(__file__).resolve().parent / "results" / "startup.jsonl"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Store sizes, rank counts and the loader's batch: the flags but ``size``."""

    samples: tuple[int, ...] = option(
        (10_000, 100_000, 1_000_000), nargs="+", help="samples of each store"
    )
    ranks: tuple[int, ...] = option((1, 8, 64), nargs="+", help="rank counts")
    batch_size: int = option(8, help="samples per batch")
    size: int = 128


def metadata_store(path: Path, samples: int, size: int) -> Path:
    """A metadata-only L2 store: ``dem`` unwritten, the per-sample variables written."""
    root = zarr.open_group(str(path), mode="w", zarr_format=3)
    root.create_array(
        "dem",
        shape=(samples, size, size),
        chunks=(1, size, size),
        dtype="float32",
        fill_value=0.0,
        dimension_names=("sample", "y", "x"),
    )
    names = np.array([f"37MBU{i:07d}" for i in range(samples)])
    splits = np.array(["train", "train", "train", "val", "test"])[np.arange(samples) % 5]
    for name, values in (("cube_id", names), ("split", splits)):
        array = root.create_array(name, shape=(samples,), chunks=(samples,), dtype=str,
                                  dimension_names=("sample",))  # fmt: skip
        array[...] = values
    valid = root.create_array("valid_fraction", shape=(samples,), chunks=(samples,),
                              dtype="float32", dimension_names=("sample",))  # fmt: skip
    valid[...] = np.full(samples, 0.7, np.float32)
    return path


def _row(store: str, samples: int, ranks: int, settings: Settings) -> dict[str, Any]:
    rank, spec = ranks - 1, ShardSpec(batch_size=settings.batch_size)
    started = time.perf_counter()
    info = describe(store, ("dem",), need_split=True)
    selected = info.selection("train", 0.0)
    opened = time.perf_counter()
    order = EpochOrder(selected, unit=info.unit, patches=1, spec=spec, epoch=0)
    ordered = time.perf_counter()
    plan = plan_epoch(selected, unit=info.unit, patches=1, spec=spec, epoch=0, rank=rank,
                      world_size=ranks, order=order)  # fmt: skip
    planned = time.perf_counter()
    loader = make_loader(store, split="train", batch_size=settings.batch_size,
                         variables=["dem"], rank=rank, world_size=ranks)  # fmt: skip
    next(iter(loader))
    first = time.perf_counter() - planned
    return {
        "samples": samples,
        "train_items": len(selected),
        "ranks": ranks,
        "open_s": round(opened - started, 3),
        "order_s": round(ordered - opened, 3),
        "plan_s": round(planned - ordered, 3),
        "mapped": len(plan.items),
        "per_rank": -(-len(selected) // ranks),
        "first_batch_s": round(first, 3),
    }


def measure(settings: Settings) -> dict[str, Any]:
    """Every (store size, ranks) row; stores in a temporary directory."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        for samples in settings.samples:
            store = str(metadata_store(Path(tmp) / f"{samples}.zarr", samples, settings.size))
            describe(store, ("dem",), need_split=True)  # warm-up: imports, codecs, page cache
            rows += [_row(store, samples, ranks, settings) for ranks in settings.ranks]
    return {
        "benchmark": "startup",
        "time": _context.now(),
        "git": _context.git(),
        "machine": _context.machine(),
        "versions": _context.versions(("cubestream", "numpy", "zarr")),
        "settings": asdict(settings),
        "rows": rows,
    }


def table(record: dict[str, Any]) -> str:
    """A Markdown table of ``record``."""
    lines = [
        "| samples | ranks | open + metadata | order (all ranks alike) | rank's plan | "
        "items mapped / per rank | to first batch |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in record["rows"]:
        lines.append(
            f"| {r['samples']:,} | {r['ranks']} | {r['open_s']:.2f} s | {r['order_s']:.2f} s | "
            f"{r['plan_s']:.2f} s | {r['mapped']:,} / {r['per_rank']:,} | "
            f"{r['first_batch_s']:.2f} s |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: see the module's description."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.startup")
    add_flags(parser, Settings)
    parser.add_argument("--out", type=Path, default=RESULTS, help="JSON-lines file to append to")
    args = parser.parse_args(argv)
    settings: Settings = from_args(Settings, args)
    return _context.keep_and_print(args.out, measure(settings), table)


if __name__ == "__main__":
    main()
