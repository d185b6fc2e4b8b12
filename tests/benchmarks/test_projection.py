"""The projection's arithmetic, on round numbers, and the 12 TB workload's own sizes."""

from __future__ import annotations

import pytest

from benchmarks.projection import (
    ClusterSpec,
    L1Rate,
    LoaderRate,
    TrainRate,
    project_l1,
    project_loader,
    project_train,
)
from benchmarks.workload import AFRICA_12TB, Workload

WORKLOAD = Workload(name="w", tiles=2, cubes=100, dates_per_tile=10, smap_bytes=10**9)
CLUSTER = ClusterSpec(nodes=2, cores_per_node=5, storage_gbps=1.0, epochs=2)


def test_the_12_tb_workload() -> None:
    assert AFRICA_12TB.total_bytes == 200 * 224 * 10 * 3660 * 3660 * 2
    assert AFRICA_12TB.total_bytes == pytest.approx(12e12, rel=0.01)
    assert AFRICA_12TB.cube_days == 23_864 * 224
    assert AFRICA_12TB.window_bytes == AFRICA_12TB.cube_days * 10 * 128 * 128 * 2
    assert AFRICA_12TB.smap_bytes == 16_100_000_000 and AFRICA_12TB.era5_bytes == 21 * 10**9
    assert AFRICA_12TB.to_dict()["total_bytes"] == AFRICA_12TB.total_bytes


def test_l1_compute_bound() -> None:
    rate = L1Rate(cube_days_per_s_per_core=1.0, fetched_bytes_per_cube_day=1e6)
    out = project_l1(rate, WORKLOAD, CLUSTER)
    assert out.parallel == 10
    assert out.compute_hours * 3600 == pytest.approx(1000 / 10)  # 1000 cube-days on 10 cores
    assert out.storage_hours * 3600 == pytest.approx((1000 * 1e6 + 1e9) / 1e9)
    assert out.bound == "compute" and out.hours == out.compute_hours
    assert out.to_dict()["projected"] is True
    assert any("linear in cores" in line for line in out.assumptions)


def test_l1_storage_bound() -> None:
    rate = L1Rate(cube_days_per_s_per_core=1.0, fetched_bytes_per_cube_day=1e9)
    slow = ClusterSpec(nodes=2, cores_per_node=5, storage_gbps=0.5)
    out = project_l1(rate, WORKLOAD, slow)
    assert out.storage_hours * 3600 == pytest.approx((1000 * 1e9 + 1e9) / 0.5e9)
    assert out.bound == "storage" and out.hours == out.storage_hours


def test_loader_scales_by_area_workers_and_epochs() -> None:
    rate = LoaderRate(samples_per_s_per_worker=2.0, stored_bytes_per_sample=1e6, sample_pixels=64)
    out = project_loader(rate, WORKLOAD, CLUSTER)
    # 100 samples x 2 epochs, 4x the area at 128 px, 2 samples/s on each of 10 workers
    assert out.compute_hours * 3600 == pytest.approx(200 * 4 / (2 * 10))
    assert out.storage_hours * 3600 == pytest.approx(200 * 1e6 * 4 / 1e9)
    assert out.bound == "compute"


def test_loader_start_up_is_added_per_epoch_and_written_out() -> None:
    rate = LoaderRate(samples_per_s_per_worker=2.0, stored_bytes_per_sample=1e6,
                      sample_pixels=64, startup_s_per_sample=0.5)  # fmt: skip
    out = project_loader(rate, WORKLOAD, CLUSTER)
    assert out.compute_hours * 3600 == pytest.approx(200 * 4 / (2 * 10) + 2 * 100 * 0.5)
    assert any(line.startswith("start-up: 100 s") for line in out.assumptions)


def test_train_on_gpus_only_with_a_gpu_rate() -> None:
    on_cpu = TrainRate(samples_per_s_per_device=1.0, device="cpu", sample_pixels=128)
    gpus = ClusterSpec(nodes=2, cores_per_node=5, gpus_per_node=4, epochs=2)
    out = project_train(on_cpu, WORKLOAD, gpus, model="rnn")
    assert out.stage == "train:rnn" and out.parallel == 2  # one CPU device per node
    assert out.hours * 3600 == pytest.approx(200 / 2)
    assert any("no GPU rate measured" in line for line in out.assumptions)
    on_gpu = TrainRate(samples_per_s_per_device=1.0, device="cuda", sample_pixels=128)
    out = project_train(on_gpu, WORKLOAD, gpus)
    assert out.parallel == 8 and out.hours * 3600 == pytest.approx(200 / 8)
    assert not any("no GPU rate measured" in line for line in out.assumptions)


def test_a_cluster_needs_nodes() -> None:
    with pytest.raises(ValueError, match="nodes"):
        ClusterSpec(nodes=0)
