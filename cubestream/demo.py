"""``make demo``: the main job end to end on the embedded default (a small replica).

Every stage runs as the exact command line a user would type; ``demo/summary.json`` records each
command, its outputs and its headline figures so that any stage can be rerun by hand. Later stages
(sample, l1, l2, train, bench) append themselves here as they are built.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _cubestream() -> str:
    script = Path(sys.executable).with_name("cubestream")
    return str(script) if script.exists() else "cubestream"


def _run(command: list[str]) -> float:
    print(f"$ {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return round(time.perf_counter() - started, 1)


def _context() -> dict[str, Any]:
    from importlib.metadata import version

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    packages = ("numpy", "rasterio", "zarr", "xarray", "dask", "torch", "moto", "rustac")
    return {
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "commit": commit,
        "versions": {name: version(name) for name in packages},
    }


def _stage_replica(demo: Path) -> dict[str, Any]:
    root = demo / "replica"
    command = [_cubestream(), "replica", "create", str(root), "--preset", "small"]
    seconds = _run(command)
    manifest = json.loads((root / "replica.json").read_text())
    return {
        "stage": "replica create",
        "command": shlex.join(command),
        "outputs": [str(root)],
        "seconds": seconds,
        "figures": {
            "counts": manifest["counts"],
            "megabytes": round(manifest["bytes"] / 1e6, 1),
            "tiles": manifest["spec"]["tiles"],
            "period": [manifest["spec"]["start"], manifest["spec"]["end"]],
        },
    }


def _stage_serve(demo: Path) -> dict[str, Any]:
    from cubestream.replica.probe import probe_all
    from cubestream.testing import start_replica_server, stop_replica_server

    root = demo / "replica"
    log = demo / "replica-access.log"
    command = [_cubestream(), "replica", "serve", str(root), "--access-log", str(log)]
    print(f"$ {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    proc, endpoints = start_replica_server(root, access_log=log)
    ready = round(time.perf_counter() - started, 1)
    try:
        figures = probe_all(root, endpoints)
    finally:
        stop_replica_server(proc)
    print(json.dumps(figures, indent=1), flush=True)
    return {
        "stage": "replica serve",
        "command": shlex.join(command),
        "outputs": [str(log)],
        "seconds": ready,
        "figures": {"seconds_until_ready": ready, **figures},
    }


def _stage_sample(demo: Path) -> dict[str, Any]:
    out = demo / "locations.parquet"
    command = [
        _cubestream(), "sample", "--replica", str(demo / "replica"), "--target", "30",
        "--val", "0.1", "--block-km", "8", "--allocation", "mixed", "--min-per-stratum", "0",
        "--seed", "0",
        "--out", str(out),
    ]  # fmt: skip
    seconds = _run(command)
    report = json.loads(out.with_name("locations.report.json").read_text())
    divergence = {
        column: entry["js_divergence_vs_population"] for column, entry in report["strata"].items()
    }
    return {
        "stage": "sample (X1)",
        "command": shlex.join(command),
        "outputs": [
            str(out),
            str(out.with_name("locations.report.json")),
            str(out.with_name("locations.report.png")),
        ],
        "seconds": seconds,
        "figures": {
            "counts": report["counts"],
            "split_shares": report["splits"],
            "js_divergence_vs_population": divergence,
        },
    }


def main() -> int:
    """Run every stage that exists and write ``summary.json``."""
    demo = Path(os.environ.get("DEMO_DIR", "demo")).resolve()
    demo.mkdir(parents=True, exist_ok=True)
    stages = [_stage_replica(demo), _stage_serve(demo), _stage_sample(demo)]
    summary = {"demo_dir": str(demo), "context": _context(), "stages": stages}
    (demo / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {demo / 'summary.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
