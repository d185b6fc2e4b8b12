"""``make gpu-check``: every GPU path once, in one prepared run, with one JSON of results.

::

    python -m benchmarks.gpu_check [--dry-run] [--out FILE] [--workdir DIR] [--skip STEP ...]

The steps, in order (each one's figures go into the JSON as soon as it ends):

==================  ==========================================================================
step                what runs
==================  ==========================================================================
``environment``     versions, GPU model and count, driver, commit
``store``           its own small L2 store (:func:`cubestream.l2.synthetic.write_synthetic_l2`,
                    64 samples of 128 px, 7 in 8 ``train``, the store's default encoding)
``fit_rnn``         RNN at its original size, bf16-mixed, one GPU, the streaming loader with
``fit_context_rnn`` ContextRNN likewise; each: step rate, data-wait fraction, peak GPU memory
                    beside the memory plan's estimate (:mod:`trainers.gpu_memory`), samples/s
                    beside the FLOP-based estimate (:mod:`benchmarks.gpu_rates`)
``ddp_nccl``        DDP with one process per GPU (one GPU: a 1-process group still initialises
                    NCCL); the backend must be ``nccl``
``zero1..zero3``    Lightning's DeepSpeed strategy, ZeRO stage 1, 2, 3, bf16-mixed: fit,
                    checkpoint saved, reloaded into a fresh model, fit resumed from it
``pinned_loader``   the loader's pinned-memory path: pinned batches, non-blocking copies,
                    codes decoded on the GPU with the same bits as on the CPU
``bench``           ``cubestream bench --stages train loader`` on CUDA: data-wait fraction,
                    GPU utilisation, peak GPU memory
``gpu_tests``       ``pytest -m gpu`` (the tests marked ``gpu``)
==================  ==========================================================================

Exit status: 0 every step passed; 1 a step failed (the run stops there and names it, on the
last line and in the JSON's ``failed_step``); 3 no CUDA device (nothing is run, and the JSON
says so); 2 bad arguments. ``--dry-run`` checks that every step's code imports, writes the plan
and exits 0, on any machine. Multi-process steps run in child processes of this script
(``--worker``), so one failure cannot leave a process group behind for the next.
The JSON goes to ``--out`` (default ``benchmarks/results/gpu_check.json``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import _context
from cubestream.options import add_flags, from_args, option

__all__ = ["EXIT_FAILED", "EXIT_NO_CUDA", "STEPS", "Settings", "main", "plan"]

RESULTS = Path(__file__).resolve().parent / "results" / "gpu_check.json"
EXIT_FAILED = 1
EXIT_NO_CUDA = 3
PACKAGES = ("cubestream", "torch", "pytorch-lightning", "deepspeed", "timm", "zarr", "numpy")
SAMPLES = 64
SIZE = 128
BATCH = 8
FIT_STEPS = 20
Context = dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Settings:
    """One check: its flags (see the module's description)."""

    dry_run: bool = option(False, help="plan and import only")
    out: Path = option(RESULTS, help="the JSON of results")
    workdir: Path | None = option(None, help="scratch (a temp dir)")
    skip: tuple[str, ...] = option((), nargs="+", choices=lambda: STEPS, help="steps to leave out")


def _cuda_reason() -> str | None:
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device: torch.cuda.is_available() is False; run this on a GPU machine"
    return None


def _environment(ctx: Context) -> dict[str, Any]:
    import torch

    from benchmarks._gpu import not_measured

    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    smi = None
    if not_measured() is None:
        query = ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv"]
        smi = subprocess.run(query, capture_output=True, text=True, check=False).stdout
    return {
        "gpus": names,
        "gpu_count": len(names),
        "cuda": torch.version.cuda,
        "nccl": ".".join(map(str, torch.cuda.nccl.version())),
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "nvidia_smi": smi,
        "versions": _context.versions(PACKAGES),
        "git": _context.git(),
    }


def _store(ctx: Context) -> dict[str, Any]:
    from cubestream.l2.synthetic import write_synthetic_l2

    splits = ("train",) * 7 + ("val",)
    path = write_synthetic_l2(ctx["workdir"] / "l2.zarr", SAMPLES, size=SIZE, splits=splits)
    ctx["store"] = str(path)
    return {"store": str(path), "samples": SAMPLES, "size": SIZE}


def _fit(ctx: Context, name: str) -> dict[str, Any]:
    import pytorch_lightning as pl
    import torch

    from benchmarks._train_phases import StepTimes
    from benchmarks.gpu_rates import H100, feed_model
    from trainers.gpu_memory import footprint, plan_memory
    from trainers.models import RNN, ContextRNN
    from trainers.setting import KndviSetting
    from trainers.task import ForecastTask

    torch.manual_seed(0)
    model = RNN() if name == "rnn" else ContextRNN()
    setting = KndviSetting(ctx["store"], batch_size=BATCH, num_workers=4, seed=0)
    free = torch.cuda.mem_get_info()[0]
    timer = StepTimes()
    torch.cuda.reset_peak_memory_stats()
    trainer = pl.Trainer(
        accelerator="gpu", devices=1, precision="bf16-mixed", max_steps=FIT_STEPS,
        limit_val_batches=2, num_sanity_val_steps=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, default_root_dir=str(ctx["workdir"] / name), callbacks=[timer],
    )  # fmt: skip
    trainer.fit(ForecastTask(model), setting)
    peak = torch.cuda.max_memory_allocated()
    loss = float(trainer.callback_metrics["train/loss"])
    if not torch.isfinite(torch.tensor(loss)):
        raise RuntimeError(f"{name}: the training loss is not finite ({loss})")
    figures = timer.figures(warmup=5)
    needs = footprint(model.cpu().float(), _cpu_batch(setting), train_pixels=512)
    estimate = plan_memory(needs, free, batch_size=BATCH, chunk_pixels=model.chunk_pixels)
    expected = feed_model(name)
    return {
        **figures,
        "model_parameters": needs.parameters,
        "peak_gpu_memory_gb": round(peak / 1e9, 3),
        "estimated_train_gpu_memory_gb": round(
            (estimate.train_bytes + needs.parameters * 16) / 1e9, 3
        ),
        "free_gpu_memory_gb": round(free / 1e9, 3),
        "footprint": needs.to_dict(),
        "auto_plan": plan_memory(needs, free).to_dict(),
        "flop_estimate_samples_per_s": expected["gpu_samples_per_s"],
        "implied_utilisation": round(
            figures["samples_per_s"] * expected["flops_per_sample"] / H100["peak_bf16_flops"], 4
        ),
        "train_loss": loss,
    }


def _cpu_batch(setting: Any) -> dict[str, Any]:
    from cubestream.stream import L2DataModule
    from trainers.batch import READ_STEPS

    module = L2DataModule(
        setting.store, batch_size=1, num_workers=0, decode="loader", steps=READ_STEPS
    )
    batch = next(iter(module.train_dataloader()))
    module.teardown("fit")
    return dict(batch)


def _child(ctx: Context, worker: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``--worker WORKER`` in a child process; its result JSON, or raise with its output."""
    result = ctx["workdir"] / f"{worker}.json"
    command = [
        sys.executable, "-m", "benchmarks.gpu_check", "--worker", worker,
        "--store", ctx["store"], "--workdir", str(ctx["workdir"] / worker), "--out", str(result),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0 or not result.exists():
        raise RuntimeError(
            f"worker {worker} exited with {done.returncode}:\n{done.stdout[-3000:]}\n"
            f"{done.stderr[-6000:]}"
        )
    out: dict[str, Any] = json.loads(result.read_text())
    return out


def _pinned(ctx: Context) -> dict[str, Any]:
    import torch

    from cubestream.stream import make_loader
    from cubestream.stream.batches import decode_batch

    loader = make_loader(
        ctx["store"], batch_size=BATCH, num_workers=2, pin_memory=True, decode="device"
    )
    scales = loader.l2.info.scales
    moved, seconds = 0, 0.0
    for index, batch in enumerate(loader):
        tensors = {k: v for k, v in batch.items() if torch.is_tensor(v)}
        unpinned = [k for k, v in tensors.items() if not v.is_pinned()]
        if unpinned:
            raise RuntimeError(f"batch {index}: tensors {unpinned} are not in pinned memory")
        started = time.perf_counter()
        on_gpu = {k: v.to("cuda", non_blocking=True) for k, v in tensors.items()}
        decoded = decode_batch({**batch, **on_gpu}, scales)
        torch.cuda.synchronize()
        seconds += time.perf_counter() - started
        moved += sum(v.numel() * v.element_size() for v in tensors.values())
        reference = decode_batch(batch, scales)
        for name, value in reference.items():
            if torch.is_tensor(value) and not torch.equal(decoded[name].cpu(), value):
                raise RuntimeError(f"batch {index}: {name} decoded on the GPU differs from CPU")
    loader.shutdown()
    return {
        "batches": len(loader),
        "mb_moved": round(moved / 1e6, 1),
        "copy_and_decode_gb_per_s": round(moved / 1e9 / seconds, 2),
        "memory_bound_mb": loader.memory_bound_mb(),
        "bit_identical_gpu_decode": True,
    }


def _bench(ctx: Context) -> dict[str, Any]:
    history = ctx["workdir"] / "history.jsonl"
    code = "import sys; from cubestream.cli import main; sys.exit(main(sys.argv[1:]))"
    command = [
        sys.executable, "-c", code, "bench", "--stages", "train", "loader", "--preset", "tiny",
        "--history", str(history), "--workdir", str(ctx["workdir"] / "bench"), "--no-report",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=420, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"cubestream bench exited with {done.returncode}:\n{done.stdout[-4000:]}"
        )
    records = [json.loads(line) for line in history.read_text().splitlines() if line.strip()]
    train = next(r for r in records if r["stage"] == "train")["figures"]
    if train["settings"]["device"] != "cuda":
        raise RuntimeError("the train benchmark did not run on CUDA")
    models = {
        name: {
            "data_wait_fraction": model["real_loader"]["data_wait_fraction"],
            "gpu_utilisation": model["real_loader"]["gpu_utilisation"],
            "peak_gpu_memory_gb": model["real_loader"].get("peak_gpu_memory_gb"),
            "samples_per_s_per_gpu": model["samples_per_s_per_gpu"],
            "ratio_to_in_memory": model["ratio_to_in_memory"],
        }
        for name, model in train["models"].items()
    }
    loader = next(r for r in records if r["stage"] == "loader")["rows"]
    return {"train": models, "loader_rows": loader}


def _gpu_tests(ctx: Context) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "gpu",
        "tests",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=420, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pytest -m gpu exited with {done.returncode}:\n{done.stdout[-4000:]}")
    return {"summary": done.stdout.strip().splitlines()[-1]}


STEPS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "environment": _environment,
    "store": _store,
    "fit_rnn": lambda ctx: _fit(ctx, "rnn"),
    "fit_context_rnn": lambda ctx: _fit(ctx, "context_rnn"),
    "ddp_nccl": lambda ctx: _child(ctx, "ddp"),
    "zero1": lambda ctx: _child(ctx, "zero1"),
    "zero2": lambda ctx: _child(ctx, "zero2"),
    "zero3": lambda ctx: _child(ctx, "zero3"),
    "pinned_loader": _pinned,
    "bench": _bench,
    "gpu_tests": _gpu_tests,
}
"""The steps in the order they run."""


def plan(skip: Sequence[str] = ()) -> list[str]:
    """The steps that will run, in order."""
    unknown = sorted(set(skip) - set(STEPS))
    if unknown:
        raise ValueError(f"unknown steps {unknown}; the steps are {list(STEPS)}")
    return [name for name in STEPS if name not in skip]


def _write(out: Path, record: dict[str, Any]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")


def _imports() -> list[str]:
    """Import every module the steps use; the names of those that fail, with why."""
    import importlib

    modules = (
        "torch", "pytorch_lightning", "pytorch_lightning.strategies", "deepspeed",
        "benchmarks._train_phases", "benchmarks.gpu_rates", "benchmarks.train_step",
        "benchmarks.suite", "trainers.gpu_memory", "trainers.task", "trainers.setting",
        "cubestream.stream", "cubestream.l2.synthetic", "benchmarks._gpu_workers",
    )  # fmt: skip
    failed = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            failed.append(f"{name}: {type(exc).__name__}: {exc}")
    return failed


def run(out: Path, workdir: Path, skip: Sequence[str], *, dry_run: bool) -> int:
    """Run (or with ``dry_run`` plan) the check; write the JSON; return the exit status."""
    steps = plan(skip)
    record: dict[str, Any] = {
        "check": "gpu_check",
        "time": _context.now(),
        "git": _context.git(),
        "machine": _context.machine(),
        "dry_run": dry_run,
        "cuda": None,
        "passed": False,
        "failed_step": None,
        "steps": [{"name": name, "status": "planned"} for name in steps],
    }
    reason = _cuda_reason()
    record["cuda"] = reason is None
    if dry_run:
        failed = _imports()
        record["import_failures"] = failed
        record["cuda_reason"] = reason
        _write(out, record)
        print(f"gpu-check (dry run): {len(steps)} steps planned: {', '.join(steps)}")
        print(f"gpu-check (dry run): {reason or 'CUDA is available'}; JSON in {out}")
        for line in failed:
            print(f"gpu-check (dry run): import failed: {line}")
        return EXIT_FAILED if failed else 0
    if reason is not None:
        record["cuda_reason"] = reason
        _write(out, record)
        print(f"gpu-check: {reason}; nothing was run (exit {EXIT_NO_CUDA}); JSON in {out}")
        return EXIT_NO_CUDA
    ctx: Context = {"workdir": workdir}
    for entry in record["steps"]:
        name = entry["name"]
        print(f"gpu-check: {name} ...", flush=True)
        started = time.perf_counter()
        try:
            entry["result"] = STEPS[name](ctx)
            entry["status"] = "passed"
        except Exception as exc:
            entry["status"] = "failed"
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["traceback"] = traceback.format_exc()[-8000:]
            record["failed_step"] = name
        entry["seconds"] = round(time.perf_counter() - started, 1)
        _write(out, record)
        if entry["status"] == "failed":
            print(entry["traceback"], file=sys.stderr)
            print(f"gpu-check: FAILED at step {name}: {entry['error'][:500]}; JSON in {out}")
            return EXIT_FAILED
        print(f"gpu-check: {name} passed in {entry['seconds']} s", flush=True)
    record["passed"] = True
    _write(out, record)
    print(f"gpu-check: all {len(steps)} steps passed; JSON in {out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (see the module's description); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu_check", description=__doc__)
    add_flags(parser, Settings)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--store", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings: Settings = from_args(Settings, args)
    if args.worker is not None:
        from benchmarks._gpu_workers import run_worker

        if settings.workdir is None:
            parser.error("--worker needs --workdir")
        return run_worker(args.worker, args.store, settings.workdir, settings.out)
    if settings.workdir is not None:
        return run(settings.out, settings.workdir, settings.skip, dry_run=settings.dry_run)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as scratch:
        return run(settings.out, Path(scratch), settings.skip, dry_run=settings.dry_run)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
