"""Against a real SLURM (two emulated nodes on loopback): Dask builds and training jobs."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import xarray as xr
import yaml

# Submodules, not the package: pytest may import tests/cluster as a namespace package `cluster`.
from cluster.dask import profile_client
from cluster.errors import ClusterJobError, SubmitError
from cluster.launch import TrainJob, log_path, status, submit, wait
from cluster.local_slurm import LocalSlurm
from cluster.profiles import ClusterProfile
from cluster.testing import read_seen
from cubestream.execution import ClientOptions, open_client
from cubestream.l1 import L1Config, build_l1
from cubestream.l2.synthetic import write_synthetic_l2
from cubestream.replica import layout
from cubestream.testing import write_replica_locations
from trainers.models import RNN
from trainers.task import ForecastTask

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

TRAIN_SPLIT = ("train", "train", "train", "val", "test")


def _train_config(tmp: Path, store: Path, *, epochs: int, delay_s: float) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {
            "max_epochs": epochs,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 1,
            "callbacks": [
                {
                    "class_path": "cluster.testing.SeenSamples",
                    "init_args": {"out": str(tmp / "seen"), "delay_s": delay_s},
                }
            ],
        },
        "model": {
            "model": {
                "class_path": "trainers.models.RNN",
                "init_args": {"hidden": 8, "weather_hidden": 8},
            },
            "train_pixels": 64,
            "scheduler": "constant",
        },
        "data": {"store": str(store), "batch_size": 1, "num_workers": 0},
    }
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train_samples(store: Path) -> set[int]:
    split = xr.open_zarr(store, consolidated=False)["split"].values
    return {i for i, s in enumerate(split) if str(s) == "train"}


def _cpu_job(config: Path, workdir: Path, **kw: Any) -> TrainJob:
    return TrainJob(
        config=config,
        nodes=2,
        gpus_per_node=0,
        tasks_per_node=1,
        time="00:10:00",
        workdir=workdir,
        job_name="cs-test",
        **kw,
    )


# --- Dask: an L1 build on a dask-jobqueue SLURMCluster ---------------------------------------


@pytest.fixture(scope="module")
def locations(replica_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("loc") / "locations.parquet"
    return write_replica_locations(replica_root, out, target=3)


def test_l1_build_on_slurm_equals_the_local_build(
    local_slurm: LocalSlurm, replica_root: Path, locations: Path, tmp_path: Path
) -> None:
    def build(out: Path, **where: Any) -> dict[str, Any]:
        config = L1Config(
            locations=str(locations),
            stac=str(replica_root / layout.ITEMS_FILE),
            out=str(out),
            start=dt.date(2021, 12, 1),
            end=dt.date(2022, 1, 15),
        )
        with open_client(ClientOptions(**where)) as client:
            return build_l1(config, client=client)

    on_slurm = build(tmp_path / "slurm.zarr", cluster="local-slurm")
    local = build(tmp_path / "local.zarr", workers=1, threads=2)
    assert {e["status"] for e in on_slurm["tiles"].values()} == {"built"}
    assert on_slurm["tiles"].keys() == local["tiles"].keys()
    for tile in local["tiles"]:
        a = xr.open_zarr(tmp_path / "slurm.zarr", group=tile, consolidated=False)
        b = xr.open_zarr(tmp_path / "local.zarr", group=tile, consolidated=False)
        assert set(a.variables) == set(b.variables) and a.sizes["cube"] > 0
        for name in b.variables:
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
        assert a.attrs == b.attrs
    assert status_of_dask_jobs_are_gone()


def status_of_dask_jobs_are_gone() -> bool:
    """The Dask worker jobs end with the cluster (no job left pending or running)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not subprocess.run(["squeue", "-h"], capture_output=True, text=True).stdout.strip():
            return True
        time.sleep(0.5)
    return False


def test_a_profile_that_slurm_rejects_fails_with_slurms_message(
    local_slurm: LocalSlurm,
) -> None:
    profile = ClusterProfile(name="bad", kind="slurm", queue="nosuchpartition", interface="lo")
    with pytest.raises(SubmitError, match=r"(?i)invalid partition"), profile_client(profile):
        pass


# --- Training: sbatch + srun, DDP over gloo on 2 nodes x 1 task ---------------------------------


def test_training_on_two_nodes_completes_and_its_checkpoint_loads(
    local_slurm: LocalSlurm, tmp_path: Path
) -> None:
    store = write_synthetic_l2(tmp_path / "l2.zarr", samples=10, size=32, splits=TRAIN_SPLIT)
    config = _train_config(tmp_path, store, epochs=1, delay_s=0)
    job = _cpu_job(config, tmp_path / "run", ckpt_every_n_steps=1)
    job_id = submit(job)
    assert wait(job_id, poll_s=1, timeout_s=180) == "COMPLETED"
    assert status(job_id) == "COMPLETED"
    log = log_path(job_id)
    assert log == job.log_dir / f"cs-test-{job_id}.out" and "node[1-2]" in log.read_text()

    seen = read_seen(tmp_path / "seen")
    assert sorted(seen) == [0, 1]
    assert {(r["world_size"], r["backend"]) for rank in seen.values() for r in rank} == {
        (2, "gloo")
    }
    assert {s for rank in seen.values() for r in rank for s in r["samples"]} == _train_samples(
        store
    )

    saved = torch.load(job.ckpt_dir / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 3  # 6 training samples, batch 1, 2 ranks
    weather = xr.open_zarr(store, consolidated=False).sizes["weather_variable"]
    task = ForecastTask(RNN(hidden=8, weather_hidden=8, weather_variables=weather))
    task.load_state_dict(saved["state_dict"], strict=True)
    assert all(torch.isfinite(p).all() for p in task.parameters())


def test_a_requeued_job_resumes_without_repeating_or_skipping_samples(
    local_slurm: LocalSlurm, tmp_path: Path
) -> None:
    store = write_synthetic_l2(tmp_path / "l2.zarr", samples=20, size=32, splits=TRAIN_SPLIT)
    config = _train_config(tmp_path, store, epochs=2, delay_s=1.0)
    job = _cpu_job(config, tmp_path / "run", ckpt_every_n_steps=1)
    job_id = submit(job)
    resumed_from = _requeue_after_a_checkpoint(job_id, job.ckpt_dir / "last.ckpt", min_step=2)
    assert wait(job_id, poll_s=1, timeout_s=240) == "COMPLETED"
    assert "resume from: " + str(job.ckpt_dir / "last.ckpt") in log_path(job_id).read_text()

    train = _train_samples(store)
    steps_per_epoch = len(train) // 2
    seen = read_seen(tmp_path / "seen")
    assert sorted(seen) == [0, 1]
    for rank, records in seen.items():
        first = [r for r in records if r["restart"] == 0]
        second = [r for r in records if r["restart"] == 1]
        assert second, f"rank {rank} did not run again after the requeue"
        restart_step = second[0]["step"]
        assert restart_step >= resumed_from > 0, "the job restarted instead of resuming"
        # Batches trained after the last checkpoint were lost with the kill: they come again,
        # the same samples at the same steps.
        lost = {r["step"]: r["samples"] for r in first if r["step"] >= restart_step}
        again = {r["step"]: r["samples"] for r in second if r["step"] in lost}
        assert again == lost
        kept = [r for r in first if r["step"] < restart_step] + second
        assert [r["step"] for r in kept] == list(range(2 * steps_per_epoch))
        seen[rank] = kept
    for epoch in (0, 1):
        batches = [r for rank in seen.values() for r in rank if r["epoch"] == epoch]
        samples = [s for r in batches for s in r["samples"]]
        assert sorted(samples) == sorted(train), f"epoch {epoch}: {sorted(samples)}"
    saved = torch.load(job.ckpt_dir / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 2 * steps_per_epoch


def _requeue_after_a_checkpoint(
    job_id: str, ckpt: Path, *, min_step: int, nodes: int | None = None
) -> int:
    """Wait for a checkpoint of at least ``min_step`` steps, requeue the job, let it start now.

    With ``nodes``, the requeued job asks for that many nodes (one task each) instead.
    """
    deadline = time.monotonic() + 150
    step = -1
    while step < min_step:
        assert time.monotonic() < deadline, f"no checkpoint of {min_step} steps: {status(job_id)}"
        assert status(job_id) in ("PENDING", "RUNNING"), status(job_id)
        try:
            step = int(torch.load(ckpt, weights_only=False)["global_step"]) if ckpt.exists() else -1
        except (RuntimeError, EOFError, OSError):
            step = -1  # being written
        time.sleep(0.2)
    subprocess.run(["scontrol", "requeue", job_id], check=True)
    if nodes is not None:
        _reshape_pending(job_id, nodes)
    # SLURM holds a requeued job back for two minutes (its BeginTime): let it start now.
    for _ in range(100):
        done = subprocess.run(
            ["scontrol", "update", f"JobId={job_id}", "StartTime=now"], capture_output=True
        )
        if done.returncode == 0 and status(job_id) in ("PENDING", "RUNNING"):
            break
        time.sleep(0.2)
    return step


def _reshape_pending(job_id: str, nodes: int) -> None:
    """Once the requeued job is pending again, make it ask for ``nodes`` nodes of one task."""
    deadline = time.monotonic() + 60
    while True:
        shown = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True)
        asked = re.search(r"TRES=\S*node=(\d+)", shown.stdout)  # NumNodes shows the last run's
        if "JobState=PENDING" in shown.stdout and asked and int(asked.group(1)) == nodes:
            return
        assert time.monotonic() < deadline, shown.stdout
        if "JobState=PENDING" in shown.stdout:  # a completing job ignores the update
            for change in (f"NumCPUs={nodes}", f"NumTasks={nodes}", f"NumNodes={nodes}"):
                subprocess.run(["scontrol", "update", f"JobId={job_id}", change], check=False)
        time.sleep(0.2)


def test_a_job_that_dies_fails_with_its_log(local_slurm: LocalSlurm, tmp_path: Path) -> None:
    # Dies in its prologue, before Python starts: the failure path without minutes of imports.
    config = _train_config(tmp_path, tmp_path / "l2.zarr", epochs=1, delay_s=0)
    prologue = ("echo 'cs-test: no shared file system on this node' >&2", "exit 3")
    job_id = submit(_cpu_job(config, tmp_path / "run", prologue=prologue))
    with pytest.raises(ClusterJobError, match=r"(?s)ended FAILED.*exit code 3.*no shared file"):
        wait(job_id, poll_s=1, timeout_s=120)


def test_a_script_that_sbatch_rejects_fails_with_its_message(
    local_slurm: LocalSlurm, tmp_path: Path
) -> None:
    config = _train_config(tmp_path, tmp_path / "l2.zarr", epochs=1, delay_s=0)
    job = _cpu_job(config, tmp_path / "run", partition="nosuchpartition")
    with pytest.raises(SubmitError, match=r"(?i)sbatch rejected .*invalid partition"):
        submit(job)


def test_a_job_requeued_on_fewer_nodes_resumes_its_epoch_exactly_once(
    local_slurm: LocalSlurm, tmp_path: Path
) -> None:
    """2 nodes, requeued mid-epoch onto 1 node: the epoch goes on there, every sample once."""
    store = write_synthetic_l2(tmp_path / "l2.zarr", samples=20, size=32, splits=TRAIN_SPLIT)
    config = _train_config(tmp_path, store, epochs=2, delay_s=1.0)
    job = _cpu_job(config, tmp_path / "run", ckpt_every_n_steps=1)
    job_id = submit(job)
    _requeue_after_a_checkpoint(job_id, job.ckpt_dir / "last.ckpt", min_step=2, nodes=1)
    assert wait(job_id, poll_s=1, timeout_s=300) == "COMPLETED"

    train = _train_samples(store)
    seen = read_seen(tmp_path / "seen")
    second = [r for r in seen[0] if r["restart"] == 1]
    assert second and {r["world_size"] for r in second} == {1}, "not resumed on one node"
    assert sorted(seen) == [0, 1] and not [r for r in seen[1] if r["restart"] == 1]
    restart_step = second[0]["step"]
    assert restart_step >= 2, "the job restarted instead of resuming"
    kept = [r for rank in seen.values() for r in rank if r["restart"] == 0]
    kept = [r for r in kept if r["step"] < restart_step]  # trained before the checkpoint
    epoch0 = [s for r in kept + second if r["epoch"] == 0 for s in r["samples"]]
    assert sorted(epoch0) == sorted(train), "epoch 0: lost or repeated samples"
    epoch1 = [s for r in second if r["epoch"] == 1 for s in r["samples"]]
    assert sorted(epoch1) == sorted(train)
