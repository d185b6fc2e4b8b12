"""Encoding benchmark: bytes per sample and samples per core of each candidate L2 encoding.

In one run on this machine::

    python -m benchmarks.encoding [--samples 8] [--size 128] [--batch-size 4] [--passes 2]
                                  [--candidates today uint16-zstd3 ...] [--out FILE]

1. Today's store: :func:`cubestream.l2.synthetic.write_synthetic_l2` with ``encoding=
   "float32"`` (the store as it was before the scaled encoding). Every candidate of
   :data:`benchmarks._encodings.CANDIDATES` is that store re-encoded (:func:`~benchmarks.
   _encodings.rewrite`): the same samples, ``s2``/``kndvi`` as float32, float16 or scaled
   uint16, each codec, 1 or 4 samples per chunk; then the default encoding with ``s2`` chunked
   along ``time`` (9 or 3 steps a chunk) or read by the loader for the 9 context steps only
   (``steps={"s2": 9}``, as the trainers read it), or both. The quantisation error of ``s2``
   and ``kndvi`` (largest ``|decoded - float32 source|``) is measured on every sample; the MB
   the reader fetches per sample (``read_mb_per_sample``) beside the MB stored.
2. For each candidate, one process, one decoding thread (zarr's pool of 1, loader threads 1),
   the seven variables the trainers read: a warm-up pass, then ``passes`` passes of each of

   - ``ceiling``: zarr alone decoding every chunk into reused buffers
     (:func:`benchmarks._loader_phases.ceiling_pass`);
   - ``loader_device``: the real loader, ``decode="device"`` (codes left for the GPU);
   - ``loader_cpu``: the real loader, ``decode="loader"`` (float32 made on the CPU);
   - ``naive``: the naive per-sample zarr dataset (:class:`trainers.synthetic_data.L2SampleDataset`,
     sample by sample, float32 made on the CPU).

   All four read what the candidate's loader reads (``s2`` of the context steps only, where
   ``s2_read_steps`` says so). Each pass is timed in wall seconds and in CPU seconds of the
   process (all its threads):
   ``samples_per_core_s`` is the samples over the CPU seconds, a figure that the other users
   of a loaded machine barely move. The fastest pass of each is kept.
3. Ratios: every figure over today's store's (``*_vs_today``), the loader over the naive
   dataset and over the ceiling in the same run, the chosen encoding (:func:`choose`) and the
   chosen layout of ``s2`` for the trainers' context reads (:func:`choose_layout`).
4. GPU feed (:mod:`benchmarks.gpu_rates`): the samples/s a GPU consumes for each model at
   its original size, from the FLOPs counted on this CPU and the H100 figures written out
   there, and the loader cores per GPU that takes at the loader samples per core of the chosen
   layout (the trainers' reads), or of the chosen encoding when no layout candidate ran.

One JSON line with the context is appended to ``--out`` (default
``benchmarks/results/encoding.jsonl``) and a table printed. The synthetic reflectance is smooth
seasonal curves times a random per-pixel field: its compression is indicative; the decode rates
per byte are what carry over to real stores.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import zarr

from benchmarks import _context
from benchmarks._encodings import CANDIDATES, Candidate, mask_bits, rewrite
from benchmarks._loader_phases import Phase, ceiling_pass
from benchmarks._memory import MemoryWatch
from cubestream.l2.schema import STEPS
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.options import add_flags, from_args, option

__all__ = [
    "ERROR_LIMIT",
    "TINY_CANDIDATES",
    "Settings",
    "choose",
    "choose_layout",
    "main",
    "measure",
    "table",
]

RESULTS = Path(__file__).resolve().parent / "results" / "encoding.jsonl"
VARIABLES = ("s2", "kndvi", "mask", "weather", "dem", "landcover", "geomorphons")
"""What the trainers read (``trainers.setting.VARIABLES``)."""
ERROR_LIMIT = 1e-5
"""Largest quantisation error of reflectance and kNDVI a default may have (S2 steps: 1e-4)."""
PACKAGES = ("cubestream", "torch", "zarr", "numcodecs", "numpy")
TINY_CANDIDATES = (
    "today",
    "float16",
    "uint16-zstd3",
    "uint16-zstd3-bitshuffle",
    "uint16-lz4",
    "bitshuffle-time9-context",
)
"""The candidates of the suite's tiny preset (``python -m benchmarks.encoding`` runs all)."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One run of the benchmark (see the module's description)."""

    samples: int = option(8, help="samples of the synthetic store")
    size: int = option(128, help="sample side in px")
    batch_size: int = option(4, help="samples per batch of the loaders")
    passes: int = option(2, help="timed passes of each phase, after a warm-up pass")
    candidates: tuple[str, ...] = option(
        tuple(c.name for c in CANDIDATES),
        nargs="+",
        choices=lambda: [c.name for c in CANDIDATES],
        help="candidates to measure (default: all); today's store is always measured",
    )
    gpu_rates: bool = option(True, help="skip the FLOP count")
    out: Path = option(RESULTS, help="JSON-lines file to append to")
    seed: int = option(0, help="seed of the synthetic samples")


def _timed(run: Callable[[], int], passes: int) -> dict[str, Any]:
    """A warm-up call, then ``passes`` timed calls of ``run`` (which returns samples)."""
    run()
    walls, cpus, samples = [], [], 0
    with MemoryWatch() as watch:
        for _ in range(passes):
            wall, cpu = time.perf_counter(), time.process_time()
            samples = run()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    wall, cpu = min(walls), min(cpus)
    return {
        "samples": samples,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "samples_per_s": round(samples / wall, 2),
        "samples_per_core_s": round(samples / cpu, 2),
        "wall_runs": [round(w, 4) for w in walls],
        "peak_rss_mb": watch.summary()["self_peak_rss"],
    }


def _count(batches: Iterable[Any]) -> int:
    return sum(len(batch["sample"]) for batch in batches)


def _phases(path: Path, settings: Settings, steps: dict[str, int]) -> dict[str, Any]:
    from cubestream.stream import make_loader
    from trainers.synthetic_data import L2SampleDataset

    phase = Phase(
        store=str(path), variables=VARIABLES, batch_size=settings.batch_size, threads=1,
        samples=settings.samples, passes=settings.passes, steps=tuple(steps.items()),
    )  # fmt: skip

    def loader(decode: str) -> Callable[[], int]:
        made = make_loader(
            str(path), variables=VARIABLES, batch_size=settings.batch_size, num_workers=0,
            threads=1, shuffle=True, pin_memory=False, decode=decode, steps=steps,
        )  # fmt: skip
        return lambda: _count(made)

    naive = L2SampleDataset(path, list(range(settings.samples)), steps)

    def ceiling() -> int:
        ceiling_pass(phase)
        return settings.samples

    out: dict[str, Any] = {
        "ceiling": _timed(ceiling, settings.passes),
        "loader_device": _timed(loader("device"), settings.passes),
        "loader_cpu": _timed(loader("loader"), settings.passes),
        "naive": _timed(lambda: len([naive[i] for i in range(len(naive))]), settings.passes),
    }
    memory = make_loader(str(path), variables=VARIABLES, batch_size=settings.batch_size,
                         num_workers=1, decode="device", steps=steps)  # fmt: skip
    out["loader_memory_bound_mb_per_worker"] = memory.memory_bound_mb()
    return out


def _read_bytes(path: Path, name: str, steps: int | None) -> int:
    """Stored bytes of the chunks of ``name`` a reader of its first ``steps`` steps fetches.

    A local store with zarr 3's default chunk keys (``c/<sample>/<time>/...``).
    """
    array: Any = zarr.open_group(path, mode="r")[name]
    if steps is None:
        return int(array.nbytes_stored())
    first = math.ceil(steps / array.chunks[1])  # chunks along time that hold the steps
    files = (path / name / "c").glob("*/*" + "/*" * (array.ndim - 2))
    return sum(f.stat().st_size for f in files if int(f.relative_to(path).parts[3]) < first)


def _stored(path: Path, samples: int, steps: dict[str, int]) -> dict[str, float]:
    group: Any = zarr.open_group(path, mode="r")
    stored = {name: group[name].nbytes_stored() / samples for name in VARIABLES}
    decoded = {name: group[name].nbytes / samples for name in VARIABLES}
    read = {name: _read_bytes(path, name, steps.get(name)) / samples for name in VARIABLES}
    return {
        "stored_mb_per_sample": round(sum(stored.values()) / 1e6, 3),
        "decoded_mb_per_sample": round(sum(decoded.values()) / 1e6, 3),
        "read_mb_per_sample": round(sum(read.values()) / 1e6, 3),
        "s2_stored_mb_per_sample": round(stored["s2"] / 1e6, 3),
        "s2_read_mb_per_sample": round(read["s2"] / 1e6, 3),
    }


def _one(source: Path, candidate: Candidate, settings: Settings, scratch: Path) -> dict[str, Any]:
    path = scratch / f"{candidate.name}.zarr"
    written = rewrite(source, path, candidate)
    steps = candidate.steps
    return {**candidate.to_dict(), **written, **_stored(path, settings.samples, steps),
            **_phases(path, settings, steps)}  # fmt: skip


def _ratios(results: list[dict[str, Any]]) -> None:
    """Add each candidate's ratios to today's store and within its own run."""
    today = next(r for r in results if r["name"] == "today")
    for r in results:
        r["vs_today"] = {
            "stored_mb_per_sample": round(
                r["stored_mb_per_sample"] / today["stored_mb_per_sample"], 3
            ),
            **{
                f"{phase}_samples_per_core_s": round(
                    r[phase]["samples_per_core_s"] / today[phase]["samples_per_core_s"], 3
                )
                for phase in ("ceiling", "loader_device", "loader_cpu", "naive")
            },
        }  # fmt: skip
        device, naive = r["loader_device"], r["naive"]
        r["loader_over_naive"] = {
            "per_core": round(device["samples_per_core_s"] / naive["samples_per_core_s"], 3),
            "wall": round(device["samples_per_s"] / naive["samples_per_s"], 3),
            "cpu_decode_per_core": round(
                r["loader_cpu"]["samples_per_core_s"] / naive["samples_per_core_s"], 3
            ),
        }
        r["loader_over_ceiling_per_core"] = round(
            device["samples_per_core_s"] / r["ceiling"]["samples_per_core_s"], 3
        )


def _is_layout(r: dict[str, Any]) -> bool:
    return r["s2_time_chunk"] is not None or r["s2_read_steps"] is not None


def choose(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The encoding to use: the most samples per core among the small and accurate ones.

    Among the candidates of the layout before (``s2`` whole in a chunk, read whole). Accurate:
    reflectance and kNDVI errors at most :data:`ERROR_LIMIT`. Small: within 10 % of the
    smallest accurate candidate's stored MB per sample. Among those, the highest loader samples
    per core (decoding on the device).
    """
    encodings = [r for r in results if not _is_layout(r)]
    accurate = [r for r in encodings if max(r["max_abs_error"].values()) <= ERROR_LIMIT]
    smallest = min(r["stored_mb_per_sample"] for r in accurate)
    small = [r for r in accurate if r["stored_mb_per_sample"] <= 1.1 * smallest]
    best = max(small, key=lambda r: r["loader_device"]["samples_per_core_s"])
    return {
        "name": best["name"],
        "rule": (
            f"error <= {ERROR_LIMIT}, stored MB/sample within 10 % of the smallest such, then "
            "the most loader samples per core (decode on the device)"
        ),
        "accurate": [r["name"] for r in accurate],
        "small": [r["name"] for r in small],
    }


def choose_layout(results: list[dict[str, Any]], encoding: str) -> dict[str, Any] | None:
    """The layout of ``s2`` for the trainers, who read its context steps only; None if untried.

    Among the candidates of the chosen ``encoding``'s values, codec and samples per chunk whose
    loader reads ``s2`` for the context (``s2_read_steps``): those that store within 10 % of
    the encoding's MB per sample (the write side's cost); of those within 10 % of the most
    loader samples per core, the one with the fewest chunks per sample (the largest
    ``s2_time_chunk``: fewer objects to write and to request from an object store), then the
    fastest.
    """
    base = next(r for r in results if r["name"] == encoding)
    same = ("values", "codec", "samples_per_chunk")
    tried = [
        r for r in results
        if r["s2_read_steps"] is not None and all(r[k] == base[k] for k in same)
    ]  # fmt: skip
    if not tried:
        return None
    small = [r for r in tried if r["stored_mb_per_sample"] <= 1.1 * base["stored_mb_per_sample"]]
    top = max(r["loader_device"]["samples_per_core_s"] for r in small)
    fast = [r for r in small if r["loader_device"]["samples_per_core_s"] >= 0.9 * top]
    best = max(
        fast,
        key=lambda r: (r["s2_time_chunk"] or STEPS, r["loader_device"]["samples_per_core_s"]),
    )
    return {
        "name": best["name"],
        "s2_time_chunk": best["s2_time_chunk"],
        "rule": (
            f"of {encoding}'s encoding, the loader reading s2 for the context steps: stored MB "
            "per sample within 10 % of the encoding's; of those within 10 % of the most loader "
            "samples per core, the fewest chunks per sample, then the fastest"
        ),
        "tried": [r["name"] for r in tried],
        "small": [r["name"] for r in small],
        "fast": [r["name"] for r in fast],
    }


def _implemented() -> dict[str, Any]:
    """The store's default encoding as implemented (``cubestream.l2``)."""
    from benchmarks._encodings import CODECS
    from cubestream.l2.build import L2Config
    from cubestream.l2.schema import TIME_CHUNKS
    from cubestream.l2.schema import VARIABLES as SCHEMA
    from cubestream.l2.store import COMPRESSOR
    from trainers.batch import READ_STEPS

    config: Any = COMPRESSOR.to_dict()["configuration"]
    mine = {k: getattr(config[k], "value", config[k]) for k in ("cname", "clevel", "shuffle")}
    names = [name for name, options in CODECS.items() if options == mine]
    return {
        "values": SCHEMA["s2"].dtype,
        "codec": names[0] if names else str(mine),
        "samples_per_chunk": L2Config.__dataclass_fields__["samples_per_chunk"].default,
        "s2_time_chunk": TIME_CHUNKS.get("s2"),
        "s2_read_steps_of_the_trainers": READ_STEPS.get("s2"),
    }


def measure(settings: Settings) -> dict[str, Any]:
    """Run the benchmark; return its record (see the module's description)."""
    zarr.config.set({"threading.max_workers": 1})
    chosen_candidates = [c for c in CANDIDATES if c.name in settings.candidates]
    if not any(c.name == "today" for c in chosen_candidates):
        chosen_candidates.insert(0, CANDIDATES[0])
    with tempfile.TemporaryDirectory(prefix="bench-encoding-") as scratch:
        root = Path(scratch)
        source = write_synthetic_l2(
            root / "source.zarr", settings.samples, size=settings.size, seed=settings.seed,
            splits=("train",), encoding="float32",
        )  # fmt: skip
        results = [_one(source, c, settings, root) for c in chosen_candidates]
        masks = mask_bits(source, root / "masks.zarr", "blosc-zstd3-shuffle")
    _ratios(results)
    chosen = choose(results)
    layout = choose_layout(results, chosen["name"])
    record: dict[str, Any] = {
        "benchmark": "encoding",
        "time": _context.now(),
        "git": _context.git(),
        "machine": _context.machine(),
        "versions": _context.versions(PACKAGES),
        "settings": {
            **{k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
            "variables": list(VARIABLES),
            "threads": 1,
            "timed": "after a warm-up pass, `passes` passes each; fastest kept; CPU seconds of "
            "the whole process",
        },
        "candidates": results,
        "mask_bits": masks,
        "chosen": chosen,
        "chosen_layout": layout,
        "implemented": _implemented(),
        "loader_never_slower_than_naive": all(
            r["loader_over_naive"]["per_core"] >= 1 for r in results
        ),
        "loader_never_slower_than_naive_is": (
            "samples per CPU-second of the loader (decode on the device) >= the naive dataset's, "
            "for every candidate; wall-clock ratios are in loader_over_naive.wall (noisy on a "
            "shared machine)"
        ),
    }
    if settings.gpu_rates:
        from benchmarks.gpu_rates import feed

        fed = layout["name"] if layout is not None else chosen["name"]
        best = next(r for r in results if r["name"] == fed)
        record["gpu_feed"] = {
            **feed(best["loader_device"]["samples_per_core_s"], settings.size),
            "loader_rate_of": fed,
        }
    return record


def table(record: dict[str, Any]) -> str:
    """A short human-readable summary of a record."""
    s = record["settings"]
    lines = [
        f"encoding: {s['samples']} samples of {s['size']} px, batch {s['batch_size']}, 1 thread, "
        f"{record['machine']['cpus']} CPUs, commit {record['git']['commit']}",
        "  candidate                 MB/sample (x today) read  samples per core-s: ceiling  "
        "loader(device) loader(cpu) naive   max error s2/kndvi",
    ]
    for r in record["candidates"]:
        err = r["max_abs_error"]
        ratio = r["vs_today"]
        lines.append(
            f"  {r['name']:<25} {r['stored_mb_per_sample']:7.2f} "
            f"({ratio['stored_mb_per_sample']:.2f}) {r['read_mb_per_sample']:6.2f}        "
            f"{r['ceiling']['samples_per_core_s']:7.1f} "
            f"{r['loader_device']['samples_per_core_s']:7.1f} "
            f"({ratio['loader_device_samples_per_core_s']:.2f}) "
            f"{r['loader_cpu']['samples_per_core_s']:7.1f} {r['naive']['samples_per_core_s']:7.1f}"
            f"   {err.get('s2', 0):.1e}/{err.get('kndvi', 0):.1e}"
        )
    lines.append(f"  chosen: {record['chosen']['name']} ({record['chosen']['rule']})")
    if record.get("chosen_layout"):
        layout = record["chosen_layout"]
        lines.append(f"  chosen layout: {layout['name']} ({layout['rule']})")
    lines.append(f"  loader never slower than naive: {record['loader_never_slower_than_naive']}")
    for name, model in record.get("gpu_feed", {}).get("models", {}).items():
        lines.append(
            f"  {name}: {model['gflop_per_sample']:.1f} GFLOP/sample (train step) -> "
            f"{model['gpu_samples_per_s']:.0f} samples/s per H100 (assumed) -> "
            f"{model['loader_cores_per_gpu']:.1f} loader cores per GPU"
        )
    return "\n".join(lines)


def _arguments(argv: Sequence[str] | None) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.encoding", description=__doc__)
    add_flags(parser, Settings)
    settings: Settings = from_args(Settings, parser.parse_args(argv))
    return settings


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark from the command line; append the record and print the table."""
    settings = _arguments(argv)
    return _context.keep_and_print(settings.out, measure(settings), table)


if __name__ == "__main__":
    main(sys.argv[1:])
