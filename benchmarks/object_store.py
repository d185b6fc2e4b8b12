"""Object-store benchmark: the loader reading an ``s3://`` L2 store through fsspec or obstore.

In one run on this machine::

    python -m benchmarks.object_store [--samples 32] [--size 128] [--samples-per-chunk 4]
                                      [--epochs 3] [--repeat 3] [--out FILE]

1. A synthetic L2 store (:func:`cubestream.l2.synthetic.write_synthetic_l2`) is uploaded to a
   bucket of the replica's S3 server (:class:`cubestream.replica._s3server.S3Server`, moto,
   run in this process on loopback); its endpoint and credentials are one
   :class:`~cubestream.storage.S3Settings`, from which both clients take theirs.
2. Each measurement is a fresh child process (``--child``), one loader core: it makes
   :func:`cubestream.stream.make_loader` (no workers: the child is the worker) with
   ``object_store`` set, reads ``--epochs`` epochs, and reports the time to first batch (from
   making the loader, the store's opening included), the wall and CPU seconds of the epochs
   after the first batch, the decoded bytes delivered, and its peak resident memory (``VmHWM``,
   MiB; ``ru_maxrss`` would carry this process's peak over the fork). The server's work is in
   this process and not counted.
3. The two clients alternate, ``fsspec`` then ``obstore``, ``--repeat`` times; the figures are
   medians, and the ratio obstore / fsspec of each is taken pair by pair (pairs seconds apart
   see the same load). One JSON line with the machine's context is appended to ``--out``
   (default ``benchmarks/results/object_store.jsonl``) and a table printed.

Per loader core: samples (and decoded MB) over the child's CPU seconds (user + system), the
figure that says how many cores a training job's loader needs for a given rate.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

from benchmarks import _context
from benchmarks._memory import high_water_mb
from cubestream.options import add_flags, from_args, option
from cubestream.storage import S3Settings, filesystem
from cubestream.stream.store import ObjectStoreKind

__all__ = ["Settings", "main", "measure", "run"]

BUCKET = "benchmark-l2"
OUT = Path(__file__).resolve().parent / "results" / "object_store.jsonl"
KINDS: tuple[ObjectStoreKind, ...] = get_args(ObjectStoreKind)
FIGURES = ("first_batch_s", "mb_per_s", "mb_per_cpu_s", "samples_per_cpu_s", "peak_rss_mb")
BATCH_SIZE = 4
"""Samples per batch of the measured loader."""


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One run of the benchmark: its flags (see the module's description)."""

    samples: int = option(32, help="samples of the store")
    size: int = option(128, help="sample side in px")
    samples_per_chunk: int = option(4, help="samples per chunk of the store")
    epochs: int = option(3, help="epochs each measurement reads")
    repeat: int = option(3, help="measurements of each client")
    out: Path = option(OUT, help="JSON-lines file to append to")

    def __post_init__(self) -> None:
        for name in ("samples", "size", "samples_per_chunk", "epochs", "repeat"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
        batches = self.epochs * -(-self.samples // BATCH_SIZE)
        if batches < 2:
            raise ValueError(
                f"--samples {self.samples} and --epochs {self.epochs} give one batch of "
                f"{BATCH_SIZE} samples, which only times the start (first_batch_s): the rates "
                f"need a batch after it; give --samples above {BATCH_SIZE} or --epochs 2 or more"
            )


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(url: str, settings: S3Settings, kind: ObjectStoreKind, epochs: int) -> dict[str, Any]:
    """Read ``epochs`` epochs of ``url`` with ``kind`` in this process; return the figures."""
    from cubestream.stream import make_loader

    start = time.perf_counter()
    loader = make_loader(
        url,
        storage_options=settings.storage_options(),
        object_store=kind,
        batch_size=BATCH_SIZE,
        seed=1,
        decode="device",
    )
    samples, nbytes = 0, 0
    first = cpu0 = wall0 = None
    for epoch in range(epochs):
        loader.set_epoch(epoch)
        for batch in loader:
            if first is None:
                first = time.perf_counter() - start
                cpu0, wall0 = _cpu(), time.perf_counter()
                continue
            samples += len(batch["sample"])
            nbytes += sum(v.nbytes for k, v in batch.items() if k != "cube_id")
    if first is None or cpu0 is None or wall0 is None or samples == 0:
        raise RuntimeError(
            f"{url}: {epochs} epoch(s) gave {'no' if first is None else 'one'} batch; the "
            "rates are measured after the first batch and need at least two"
        )
    wall, cpu = time.perf_counter() - wall0, _cpu() - cpu0
    return {
        "first_batch_s": first,
        "wall_s": wall,
        "cpu_s": cpu,
        "samples": samples,
        "mb": nbytes / 1e6,
        "mb_per_s": nbytes / 1e6 / wall,
        "mb_per_cpu_s": nbytes / 1e6 / cpu,
        "samples_per_cpu_s": samples / cpu,
        "peak_rss_mb": high_water_mb() or float("nan"),
    }


def _child(url: str, settings: S3Settings, kind: ObjectStoreKind, epochs: int) -> dict[str, Any]:
    """:func:`measure` in a fresh process (clean CPU time and peak memory)."""
    command = [sys.executable, "-m", "benchmarks.object_store", "--child", kind, url]
    command += ["--epochs", str(epochs), "--settings", json.dumps(vars(settings))]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"the {kind} measurement failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(settings: Settings) -> dict[str, Any]:
    """Serve a store, measure both clients alternately; return the record."""
    from cubestream.l2.synthetic import write_synthetic_l2
    from cubestream.replica._s3server import AccessLog, S3Server

    with tempfile.TemporaryDirectory() as tmp:
        store = write_synthetic_l2(
            Path(tmp) / "bench.zarr",
            settings.samples,
            samples_per_chunk=settings.samples_per_chunk,
            size=settings.size,
            seed=1,
        )
        log = AccessLog(Path(tmp) / "access.ndjson")
        server = S3Server("127.0.0.1", 0, log)
        endpoint = f"http://127.0.0.1:{server.port}"
        server.start()
        try:
            s3 = S3Settings(endpoint_url=endpoint, region="us-west-2", key="bench", secret="bench")
            fs, _ = filesystem(f"s3://{BUCKET}", s3)
            fs.mkdir(BUCKET)
            fs.put(str(store), f"{BUCKET}/bench.zarr", recursive=True)
            url = f"s3://{BUCKET}/bench.zarr"
            runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}
            for _ in range(settings.repeat):
                for kind in KINDS:
                    runs[kind].append(_child(url, s3, kind, settings.epochs))
        finally:
            server.stop(endpoint)
            log.close()
    return _record(settings, runs)


def _record(settings: Settings, runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    medians = {
        kind: {name: statistics.median(r[name] for r in rows) for name in FIGURES}
        for kind, rows in runs.items()
    }
    ratios = {
        name: statistics.median(
            o[name] / f[name] for f, o in zip(runs["fsspec"], runs["obstore"], strict=True)
        )
        for name in FIGURES
    }
    faster = ratios["samples_per_cpu_s"] > 1.1 and ratios["mb_per_s"] > 1.1
    return {
        "benchmark": "object_store",
        "time": _context.now(),
        "git": _context.git(),
        "machine": _context.machine(),
        "versions": _context.versions(["zarr", "obstore", "s3fs", "fsspec", "moto"]),
        "params": {**asdict(settings), "out": str(settings.out)},
        "runs": runs,
        "medians": medians,
        "obstore_over_fsspec": ratios,
        "default": "obstore" if faster else "fsspec",
    }


def table(record: dict[str, Any]) -> str:
    """The medians of both clients and their ratio."""
    lines = [f"{'':10}" + "".join(f"{name:>19}" for name in FIGURES)]
    for kind, row in record["medians"].items():
        lines.append(f"{kind:10}" + "".join(f"{row[name]:>19.3f}" for name in FIGURES))
    ratio = record["obstore_over_fsspec"]
    lines.append(f"{'obs/fss':10}" + "".join(f"{ratio[name]:>19.2f}" for name in FIGURES))
    lines.append(f"default by measurement: {record['default']} (obstore if >1.1x on both rates)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Command line (see the module's description)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_flags(parser, Settings)
    parser.add_argument("--child", nargs=2, metavar=("KIND", "URL"), help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, url = args.child
        s3 = S3Settings(**json.loads(args.settings))
        print(json.dumps(measure(url, s3, kind, args.epochs)), flush=True)
        return
    try:
        settings: Settings = from_args(Settings, args)
    except ValueError as error:
        parser.error(str(error))
    _context.keep_and_print(settings.out, run(settings), table)


if __name__ == "__main__":
    main()
