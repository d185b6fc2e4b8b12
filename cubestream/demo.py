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


def _stage_serve(demo: Path, endpoints: Any, ready: float, command: list[str]) -> dict[str, Any]:
    from cubestream.replica.probe import probe_all

    figures = probe_all(demo / "replica", endpoints)
    print(json.dumps(figures, indent=1), flush=True)
    return {
        "stage": "replica serve",
        "command": shlex.join(command),
        "outputs": [str(demo / "endpoints.json"), endpoints.access_log],
        "seconds": ready,
        "figures": {"seconds_until_ready": ready, **figures},
    }


def _stage_sample(demo: Path) -> dict[str, Any]:
    out = demo / "locations.parquet"
    command = [
        _cubestream(), "sample", "--replica", str(demo / "replica"), "--target", "16",
        "--val", "0.15", "--block-km", "4", "--allocation", "mixed", "--min-per-stratum", "0",
        "--seed", "0", "--test", "0.25", "--ood-space", "0.125", "--region-km", "16",
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
            "test_tracks": report.get("tracks", {}),
            "js_divergence_vs_population": divergence,
        },
    }


def _stage_l1(demo: Path, endpoints: Any) -> dict[str, Any]:
    from cubestream.replica.layout import strata_key
    from cubestream.replica.spec import load_spec

    spec = load_spec(demo / "replica")
    out = demo / "l1.zarr"
    command = [
        _cubestream(), "l1", "--locations", str(demo / "locations.parquet"),
        "--stac", endpoints.stac_api, "--endpoints", str(demo / "endpoints.json"),
        "--out", str(out), "--start", spec.start.isoformat(), "--end", spec.end.isoformat(),
        "--smap", f"s3://{endpoints.bucket}/smap/SPL4SMGP.007",
        "--era5", f"s3://{endpoints.bucket}/era5/era5.zarr",
        "--srtm", f"s3://{endpoints.bucket}",
        "--landcover", f"s3://{endpoints.bucket}/{strata_key('landcover')}",
        "--geomorphons", f"s3://{endpoints.bucket}/{strata_key('geomorphons')}",
    ]  # fmt: skip
    mark = len(Path(endpoints.access_log).read_text().splitlines())
    seconds = _run(command)
    report = json.loads(Path(f"{out}.report.json").read_text())
    lines = Path(endpoints.access_log).read_text().splitlines()[mark:]
    fetched = sum(json.loads(line)["bytes"] for line in lines if "sentinel-2-l2a" in line)
    cubes = sum(entry["cubes"] for entry in report["tiles"].values())
    return {
        "stage": "l1 (X2 + X3)",
        "command": shlex.join(command),
        "outputs": [str(out), f"{out}.report.json"],
        "seconds": seconds,
        "figures": {
            "tiles": {tile: entry["status"] for tile, entry in report["tiles"].items()},
            "cubes": cubes,
            "cubes_per_second": round(cubes / seconds, 2),
            "sentinel2_bytes_fetched": fetched,
            "sentinel2_requests": sum("sentinel-2-l2a" in line for line in lines),
            "offset_decisions": {
                tile: entry.get("offset_decisions") for tile, entry in report["tiles"].items()
            },
            "offset_disagreements": [d["item"] for d in report.get("offset_disagreements", [])],
        },
    }


def _stage_l2(demo: Path) -> dict[str, Any]:
    out = demo / "l2.zarr"
    command = [
        _cubestream(), "l2", "--l1", str(demo / "l1.zarr"),
        "--locations", str(demo / "locations.parquet"), "--out", str(out),
        "--windows-per-cube", "2", "--ood-time-from", "2020-09-01",
    ]  # fmt: skip
    seconds = _run(command)
    report = json.loads(Path(f"{out}.report.json").read_text())
    return {
        "stage": "l2 (X4)",
        "command": shlex.join(command),
        "outputs": [str(out), f"{out}.report.json"],
        "seconds": seconds,
        "figures": {
            "complete": report["complete"],
            "samples": report["samples"],
            "splits": report["splits"],
            "tracks": report.get("tracks", {}),
            "windows_skipped": len(report["skipped"]),
            "failed_blocks": len(report["failed_blocks"]),
            "samples_per_second": round(report["samples"] / seconds, 2),
        },
    }


_MODELS = ("rnn", "context_rnn", "conv_lstm", "contextformer")
_SHORTER = {
    "conv_lstm": ["--trainer.max_epochs", "2", "--trainer.limit_val_batches", "1"],
    "contextformer": ["--trainer.max_epochs", "3", "--trainer.limit_val_batches", "1"],
}
"""The whole-image ConvLSTM and the Contextformer's whole-cube evaluation are the slowest on a
CPU: they train for fewer epochs and validate on one batch in the demo."""


def _protocol_table(train: Path) -> str:
    """One Markdown table of every model and the baselines per track (from the test runs)."""
    from trainers.score_table import table_markdown

    rows: list[dict[str, Any]] = []
    for k, model in enumerate(_MODELS):
        document = json.loads((train / model / "protocol_scores.json").read_text())
        for entry in document["table"]:
            if entry["forecaster"] == "model":
                rows.append({**entry, "forecaster": model})
            elif k == 0:  # the baselines are the same in every run
                rows.append(entry)
    order = {name: i for i, name in enumerate(("persistence", "climatology", *_MODELS))}
    tracks = list(dict.fromkeys(r["track"] for r in rows))
    rows.sort(key=lambda r: (tracks.index(r["track"]), order[r["forecaster"]]))
    markdown = table_markdown(rows)
    (train / "protocol_table.md").write_text(markdown)
    return markdown


_SEEDS = (0, 1, 2)
"""Seeds of RNN and ContextRNN: their comparison (``trainers.compare_runs``) takes them as
repeats; seed 0 (the configs' own) is the run the other figures use."""


def _seed_runs(train: Path, model: str) -> list[str]:
    """The run directories of ``model``, one per seed of :data:`_SEEDS`."""
    return [str(train / model), *(str(train / f"{model}-seed{s}") for s in _SEEDS[1:])]


def _context_reach(train: Path) -> dict[str, float | None]:
    """Per model (seed 0), the share of its test pixel's context saliency on other pixels.

    ``cubestream train test`` writes it into ``protocol_scores.json``; 0 for the pixelwise RNN.
    """
    reach: dict[str, float | None] = {}
    for model in _MODELS:
        document = json.loads((train / model / "protocol_scores.json").read_text())
        saliency = document.get("saliency") or {}
        value = saliency.get("context_reach")
        reach[model] = None if value is None else round(float(value), 4)
    return reach


def _fit_and_test(
    configs: Path, store: str, model: str, root: Path, extra: list[str], commands: list[str]
) -> float:
    """Fit ``model`` into ``root``, test its last checkpoint; log the commands, return seconds."""
    options = [
        "--config", str(configs / f"{model}.yaml"), "--data.store", store,
        "--trainer.default_root_dir", str(root), *extra,
    ]  # fmt: skip
    ckpt = str(root / "checkpoints" / "last.ckpt")
    fit = [_cubestream(), "train", "fit", *options, *_SHORTER.get(model, [])]
    test = [_cubestream(), "train", "test", *options, "--ckpt_path", ckpt]
    seconds = 0.0
    for command in (fit, test):
        commands.append(shlex.join(command))
        seconds += _run(command)
    return seconds


def _stage_train(demo: Path) -> dict[str, Any]:
    """Train the four models briefly, test them, compare ContextRNN with RNN (over 3 seeds).

    Each run writes under ``--trainer.default_root_dir demo/train/<model>`` (checkpoints,
    logs, scores), so the demo directory may have any name.
    """
    configs = Path(__file__).resolve().parent.parent / "trainers" / "configs"
    store, train = str(demo / "l2.zarr"), demo / "train"
    commands: list[str] = []
    seconds, figures = 0.0, {}
    for model in _MODELS:
        seconds += _fit_and_test(configs, store, model, train / model, [], commands)
        scores = json.loads((train / model / "scores.json").read_text())
        figures[model] = scores.get("overall", scores)
    for model in ("rnn", "context_rnn"):  # seeds as repeats of the comparison
        for seed in _SEEDS[1:]:
            extra = ["--seed_everything", str(seed)]
            root = train / f"{model}-seed{seed}"
            seconds += _fit_and_test(configs, store, model, root, extra, commands)
    compare = [
        sys.executable, "-m", "trainers.compare", "--store", store, "--out",
        str(train / "comparison"),
        "--a", "context_rnn", str(configs / "context_rnn.yaml"),
        str(train / "context_rnn" / "checkpoints" / "last.ckpt"),
        "--b", "rnn", str(configs / "rnn.yaml"), str(train / "rnn" / "checkpoints" / "last.ckpt"),
    ]  # fmt: skip
    commands.append(shlex.join(compare))
    seconds += _run(compare)
    figures["comparison"] = json.loads((train / "comparison" / "comparison.json").read_text())
    runs = [
        sys.executable, "-m", "trainers.compare_runs", "--a", *_seed_runs(train, "context_rnn"),
        "--b", *_seed_runs(train, "rnn"), "--names", "context_rnn", "rnn",
        "--out", str(train / "comparison"),
    ]  # fmt: skip
    commands.append(shlex.join(runs))
    seconds += _run(runs)
    figures["runs"] = json.loads((train / "comparison" / "runs.json").read_text())
    figures["context_reach"] = _context_reach(train)
    print("context reach (share of a test pixel's context saliency on other pixels):")
    print(json.dumps(figures["context_reach"]), flush=True)
    table = _protocol_table(train)
    print(f"GreenEarthNet scores per test track (replica; {train / 'protocol_table.md'}):")
    print(table, flush=True)
    figures["protocol_table"] = str(train / "protocol_table.md")
    return {
        "stage": "train (X5)",
        "command": " && ".join(commands),
        "outputs": [str(train)],
        "seconds": round(seconds, 1),
        "figures": figures,
    }


def _stage_cluster(demo: Path) -> dict[str, Any]:
    """A real local SLURM (two emulated nodes) runs a 2-node x 1-task DDP training job."""
    slurm_dir, workdir = demo / "slurm", demo / "cluster" / "rnn"
    config = Path(__file__).resolve().parent.parent / "trainers" / "configs" / "rnn.yaml"
    start = [_cubestream(), "cluster", "local-slurm", "start", "--dir", str(slurm_dir)]
    stop = [_cubestream(), "cluster", "local-slurm", "stop", "--dir", str(slurm_dir)]
    print(f"$ {shlex.join(start)}", flush=True)
    started = time.perf_counter()
    exports = subprocess.run(start, check=True, capture_output=True, text=True).stdout
    env = {**os.environ, "SLURM_CONF": exports.strip().split("=", 1)[1]}
    up = round(time.perf_counter() - started, 1)
    submit = [
        _cubestream(), "cluster", "submit", "train", "--config", str(config), "--nodes", "2",
        "--gpus-per-node", "0", "--tasks-per-node", "1", "--time", "00:20:00",
        "--workdir", str(workdir), "--ckpt-every", "10", "--",
        "--data.store", str(demo / "l2.zarr"), "--trainer.max_epochs", "1",
    ]  # fmt: skip
    try:
        print(f"$ {shlex.join(submit)}", flush=True)
        started = time.perf_counter()
        job = subprocess.run(submit, check=True, capture_output=True, text=True, env=env)
        job_id = job.stdout.strip().splitlines()[-1]
        wait = [_cubestream(), "cluster", "wait", job_id]
        print(f"$ {shlex.join(wait)}", flush=True)
        state = subprocess.run(wait, check=True, capture_output=True, text=True, env=env)
        seconds = round(time.perf_counter() - started, 1)
    finally:
        _run(stop)
    return {
        "stage": "cluster (local SLURM, 2 nodes x 1 task, DDP over gloo)",
        "commands": [shlex.join(c) for c in (start, submit, wait, stop)],
        "outputs": [str(workdir / "checkpoints"), str(workdir / "logs")],
        "figures": {
            "slurm_start_seconds": up,
            "job_id": job_id,
            "final_state": state.stdout.strip(),
            "job_seconds_submit_to_end": seconds,
            "checkpoints": sorted(p.name for p in (workdir / "checkpoints").glob("*.ckpt")),
        },
    }


def _stage_bench(demo: Path) -> dict[str, Any]:
    """The training benchmark (step rates: real loader, in-memory batches, no-op model).

    The demo runs the suite's shortest stage into ``demo/bench``; ``make bench`` runs every
    stage into the repository's history.
    """
    bench = demo / "bench"
    history = bench / "history.jsonl"
    command = [
        _cubestream(), "bench", "run", "--stages", "train", "--history", str(history),
        "--out", str(bench / "report"),
    ]  # fmt: skip
    seconds = _run(command)
    records = [json.loads(line) for line in history.read_text().splitlines()]
    return {
        "stage": "bench (training step rate)",
        "command": shlex.join(command),
        "seconds": seconds,
        "outputs": [str(history), str(bench / "report")],
        "figures": records[-1]["rows"],
    }


def _serving(demo: Path) -> tuple[Any, Any, float, list[str]]:
    from cubestream.replica.process import start_replica_server

    root = demo / "replica"
    log = demo / "replica-access.log"
    command = [_cubestream(), "replica", "serve", str(root), "--access-log", str(log)]
    print(f"$ {shlex.join(command)}", flush=True)
    started = time.perf_counter()
    proc, endpoints = start_replica_server(root, access_log=log)
    (demo / "endpoints.json").write_text(endpoints.to_json() + "\n")
    return proc, endpoints, round(time.perf_counter() - started, 1), command


def main() -> int:
    """Run every stage that exists and write ``summary.json``."""
    demo = Path(os.environ.get("DEMO_DIR", "demo")).resolve()
    demo.mkdir(parents=True, exist_ok=True)
    from cubestream.replica.process import stop_replica_server

    stages = [_stage_replica(demo)]
    proc, endpoints, ready, command = _serving(demo)
    try:
        stages.append(_stage_serve(demo, endpoints, ready, command))
        stages.append(_stage_sample(demo))
        stages.append(_stage_l1(demo, endpoints))
    finally:
        stop_replica_server(proc)
    stages.append(_stage_l2(demo))
    stages.append(_stage_train(demo))
    stages.append(_stage_cluster(demo))
    stages.append(_stage_bench(demo))
    summary = {"demo_dir": str(demo), "context": _context(), "stages": stages}
    (demo / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"wrote {demo / 'summary.json'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
