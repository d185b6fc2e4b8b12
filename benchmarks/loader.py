"""Loader benchmark: cubestream's loader against the zarr ceiling and xbatcher's torch loaders.

In one run on this machine, for each store and with the same decoding threads::

    python -m benchmarks.loader [--samples 64] [--size 128] [--samples-per-chunk 1 4]
                                [--workers 0 1 2] [--batch-size 8] [--threads N]
                                [--variables s2 kndvi] [--repeat 1] [--no-peers] [--out FILE]

1. Stores: :func:`cubestream.l2.synthetic.write_synthetic_l2` with ``--samples`` samples of
   ``--size`` px, one per ``--samples-per-chunk`` value (kept in ``--cache`` for later runs).
   A warm-up read of every chunk fills the page cache and the process's memory first.
2. The raw ceiling: every chunk of the variables read and decoded with zarr alone (its
   asynchronous API, at most ``2 * threads`` chunks in flight, each decoded into a reused
   buffer: no allocation), in this process. ``ceiling_getitem`` is the same with a new array
   per chunk (``getitem``), for reference.
3. cubestream: :func:`cubestream.stream.make_loader`, shuffled, for each ``--workers`` count
   (persistent workers; a warm-up pass starts them and is not timed).
4. The peers: ``xbatcher.loaders.torch.MapDataset`` and ``IterableDataset`` over
   ``xr.open_dataset(store, engine="zarr", chunks={})`` and ``BatchGenerator(..., input_dims=
   {"sample": batch_size, ...})`` for the first two variables (X and y), in a
   ``torch.utils.data.DataLoader(dataset, batch_size=None)`` as xbatcher's documentation shows
   (the map dataset with ``shuffle=True``), with the same workers, timed the same way. The
   iterable dataset does not split work among workers: each worker yields every batch.
5. Ratios: every timed loader pass runs right after a ceiling pass, and its epoch rate (the
   store's samples over the pass's seconds) is divided by that pass's; the figure is the
   median over the passes (and ``--repeat`` runs). The machine's load may change from minute
   to minute; pairs taken seconds apart keep the ratio sound. One JSON line with the whole
   context is appended to ``--out`` (default ``benchmarks/results/loader.jsonl``) and a
   table printed.

Threads: ``--threads`` (default: the usable CPUs) is the decoding threads of each phase. In
this process zarr's pool has that many threads; a loader with ``W`` workers gives each worker
``max(1, threads // W)`` (zarr's ``threading.max_workers``, dask's ``num_workers``), so the
total stays the same.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import zarr

from benchmarks import _context
from benchmarks._loader_phases import (
    Phase,
    ceiling,
    counts,
    cubestream_loader,
    threads_env,
    xbatcher_loader,
)
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.options import add_flags, from_args, option
from cubestream.stream.loader import StartMethod

__all__ = ["GOAL", "Settings", "main", "measure", "table"]

RESULTS = Path(__file__).resolve().parent / "results" / "loader.jsonl"
CACHE = Path(os.environ.get("CUBESTREAM_BENCH_CACHE", Path.home() / ".cache" / "cubestream"))
GOAL = 0.9
"""cubestream's epoch rate over the ceiling's that the loader aims at."""
PACKAGES = (
    "cubestream",
    "torch",
    "torchdata",
    "zarr",
    "numcodecs",
    "xarray",
    "xbatcher",
    "dask",
    "numpy",
    "fsspec",
)
PEERS = ("xbatcher_map", "xbatcher_iterable")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One run of the benchmark: its flags (see the module's description for each option)."""

    samples: int = option(64, help="samples in each store")
    size: int = option(128, help="sample side in px")
    samples_per_chunk: tuple[int, ...] = option(
        (1, 4), nargs="+", help="samples per chunk: one store for each value"
    )
    workers: tuple[int, ...] = option((0, 1, 2), nargs="+", help="loader workers to time")
    batch_size: int = option(8, help="samples per batch")
    threads: int = option(
        factory=lambda: len(os.sched_getaffinity(0)),
        help="decoding threads of each phase (default: the usable CPUs)",
    )
    variables: tuple[str, ...] = option(("s2", "kndvi"), nargs="+", help="variables read")
    chunk_buffer: int = option(4, help="chunks whose items are shuffled together")
    repeat: int = option(1, help="runs of each loader; best kept")
    passes: int = option(2, help="timed passes per run; best kept")
    peers: bool = option(True, help="skip xbatcher's loaders")
    start_method: StartMethod = option(
        "spawn", help="how loader workers start (multiprocessing_context)"
    )
    out: Path = option(RESULTS, help="JSON-lines file to append to")
    cache: Path | None = option(CACHE, help="where stores are kept")
    seed: int = option(0, help="seed of the synthetic stores")


def _store(settings: Settings, per_chunk: int, scratch: Path) -> Path:
    """A synthetic store, reused from the cache when it holds one made the same way."""
    name = f"bench-loader-n{settings.samples}-s{settings.size}-c{per_chunk}-seed{settings.seed}"
    path = (settings.cache or scratch) / f"{name}.zarr"
    if path.exists():
        try:
            attrs = dict(zarr.open_group(path, mode="r").attrs)
            if attrs.get("synthetic") and attrs.get("seed") == settings.seed:
                return path
        except (FileNotFoundError, zarr.errors.GroupNotFoundError):
            pass
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_synthetic_l2(
        path, settings.samples, samples_per_chunk=per_chunk, size=settings.size, seed=settings.seed
    )


def _best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run, with the ratios of every run (their median is the figure)."""
    best = max(runs, key=lambda run: float(run["epoch_samples_per_s"]))
    ratios = [r for run in runs for r in run["ratios"]]
    return {**best, "ratios": ratios, "ratio": round(statistics.median(ratios), 3)}


def _loaders(settings: Settings, phase: Phase) -> dict[str, dict[str, Any]]:
    """Time cubestream and the peers for every worker count, ``repeat`` times; keep the best."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    kinds = ("cubestream", *(PEERS if settings.peers else ()))
    for _ in range(settings.repeat):
        for workers in settings.workers:
            with threads_env(max(1, settings.threads // max(workers, 1))):
                for kind in kinds:
                    if kind == "cubestream":
                        run = cubestream_loader(phase, workers)
                    else:
                        run = xbatcher_loader(phase, kind.removeprefix("xbatcher_"), workers)
                    runs.setdefault(kind, {}).setdefault(str(workers), []).append(run)
    return {kind: {w: _best(r) for w, r in by.items()} for kind, by in runs.items()}


def _one_store(settings: Settings, per_chunk: int, scratch: Path) -> dict[str, Any]:
    path = _store(settings, per_chunk, scratch)
    phase = Phase(
        store=str(path),
        variables=settings.variables,
        batch_size=settings.batch_size,
        threads=settings.threads,
        samples=settings.samples,
        start_method=settings.start_method,
        chunk_buffer=settings.chunk_buffer,
        passes=settings.passes,
    )
    reference = ceiling(phase)
    getitem = ceiling(phase, reuse=False)
    loaders = _loaders(settings, phase)
    ratios = {
        f"{kind}_over_ceiling": {w: run["ratio"] for w, run in by.items()}
        for kind, by in loaders.items()
    }
    ours = ratios["cubestream_over_ceiling"]
    return {
        "samples_per_chunk": per_chunk,
        "path": str(path),
        "variables": counts(str(path), settings.variables),
        "ceiling": reference,
        "ceiling_getitem": getitem,
        **loaders,
        "ratios": ratios,
        "meets_goal": {w: ratio >= GOAL for w, ratio in ours.items()},
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
    }


def measure(settings: Settings) -> dict[str, Any]:
    """Run the benchmark; return its record (see the module's description)."""
    zarr.config.set({"threading.max_workers": settings.threads})
    machine = _context.machine()
    with tempfile.TemporaryDirectory(prefix="bench-loader-") as scratch:
        stores = [
            _one_store(settings, per_chunk, Path(scratch))
            for per_chunk in settings.samples_per_chunk
        ]
    return {
        "benchmark": "loader",
        "time": _context.now(),
        "git": _context.git(),
        "machine": machine,
        "versions": _context.versions(PACKAGES),
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
            "goal": GOAL,
            "threads_per_worker": {
                str(w): max(1, settings.threads // max(w, 1)) for w in settings.workers
            },
            "timed": (
                "after a warm-up pass, `passes` pairs of (ceiling pass, loader pass); ratio: "
                "median of loader epoch rate / ceiling epoch rate of the pass just before"
            ),
        },
        "stores": stores,
    }


def table(record: dict[str, Any]) -> str:
    """A short human-readable summary of a record."""
    settings = record["settings"]
    lines = [
        f"loader: {settings['samples']} samples of {settings['size']} px, "
        f"variables {settings['variables']}, batch {settings['batch_size']}, "
        f"{settings['threads']} threads, {record['machine']['cpus']} CPUs, "
        f"commit {record['git']['commit']}",
        "  epoch rate (samples/s) and its ratio to the zarr ceiling measured alongside",
    ]
    for store in record["stores"]:
        top = store["ceiling"]
        lines.append(
            f"  {store['samples_per_chunk']} sample(s) per chunk: zarr ceiling "
            f"{top['samples_per_s']:.1f} samples/s ({top['mb_per_s']:.0f} MB/s), zarr getitem "
            f"{store['ceiling_getitem']['samples_per_s']:.1f}"
        )
        for kind, ratios in store["ratios"].items():
            name = kind.removesuffix("_over_ceiling")
            cells = "  ".join(
                f"w{w}: {store[name][w]['epoch_samples_per_s']:6.1f} {ratio:5.2f}"
                for w, ratio in ratios.items()
            )
            lines.append(f"    {name:<18} {cells}")
    return "\n".join(lines)


def _arguments(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loader", description=__doc__)
    add_flags(parser, Settings)
    parser.add_argument("--no-cache", action="store_true", help="write stores to a temp dir")
    args = parser.parse_args(argv)
    settings: Settings = from_args(Settings, args)
    return replace(settings, cache=None) if args.no_cache else settings


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; append the record and print the table."""
    settings = _arguments(argv)
    return _context.keep_and_print(settings.out, measure(settings), table)


if __name__ == "__main__":
    main(sys.argv[1:])
