"""Project measured rates onto a full-size workload on a given cluster, assumptions written out.

Every figure here is a projection, not a measurement: it multiplies a rate measured on this
machine by the workload's size and divides by the cluster's parallelism. Each
:class:`Projection` lists the assumptions that turn one into the other:

- level-1: time = max(compute, storage). Compute scales linearly in cores at the measured rate
  of cube-days per second per core; storage moves the measured bytes fetched per cube-day times
  the workload's cube-days, plus SMAP and ERA5 read once, at the storage bandwidth.
- loader: one DataLoader worker per core, linear in workers at the measured rate per worker,
  scaled by sample area to the workload's sample size; storage moves the stored bytes per
  sample (scaled the same way) at the storage bandwidth; each epoch adds the measured start-up
  (a new loader to its first batch), linear in the store's samples.
- training: linear in devices (GPUs when the rate was measured on a GPU, else one CPU device
  per node) at the measured samples per second per device, scaled by sample area.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from benchmarks.workload import Workload
from cubestream.options import option

__all__ = [
    "ClusterSpec",
    "L1Rate",
    "LoaderRate",
    "Projection",
    "TrainRate",
    "project_l1",
    "project_loader",
    "project_train",
]

HOUR = 3600.0


@dataclass(frozen=True, kw_only=True)
class ClusterSpec:
    """The cluster a projection is for.

    Attributes
    ----------
    nodes : int
        Nodes.
    cores_per_node : int
        CPU cores per node, all used by the level-1 build and by loader workers.
    gpus_per_node : int
        GPUs per node (0: train on one CPU device per node).
    storage_gbps : float
        Aggregate read bandwidth of the object store, GB/s (10^9 bytes).
    epochs : int
        Passes over the level-2 samples (loader and training).
    """

    nodes: int = option(1, help="nodes")
    cores_per_node: int = option(32, help="CPU cores per node")
    gpus_per_node: int = option(0, help="GPUs per node (0: train on one CPU device per node)")
    storage_gbps: float = option(5.0, help="object store GB/s")
    epochs: int = option(1, help="loader and training epochs")

    def __post_init__(self) -> None:
        for name in ("nodes", "cores_per_node", "epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.gpus_per_node < 0 or self.storage_gbps <= 0:
            raise ValueError("gpus_per_node must be >= 0 and storage_gbps > 0")

    @property
    def cores(self) -> int:
        """Cores in all."""
        return self.nodes * self.cores_per_node

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class L1Rate:
    """A measured level-1 build: cube-days per second per core and bytes fetched per cube-day."""

    cube_days_per_s_per_core: float
    fetched_bytes_per_cube_day: float


@dataclass(frozen=True, kw_only=True)
class LoaderRate:
    """A measured loader: samples per second per worker, stored bytes per sample, sample side."""

    samples_per_s_per_worker: float
    stored_bytes_per_sample: float
    sample_pixels: int
    startup_s_per_sample: float = 0.0
    """Seconds from a new loader to its first batch per sample of the store (measured on a
    metadata-only store: opening, per-sample metadata and planning, all O(samples))."""


@dataclass(frozen=True, kw_only=True)
class TrainRate:
    """A measured training run: samples per second per device, the device, the sample side."""

    samples_per_s_per_device: float
    device: Literal["cpu", "cuda"]
    sample_pixels: int


@dataclass(frozen=True, kw_only=True)
class Projection:
    """Projected wall time of one stage at full size.

    Attributes
    ----------
    stage : str
        The stage projected.
    hours : float
        Projected wall time.
    compute_hours, storage_hours : float
        Time bound by the measured rate, and by the storage bandwidth (0 where none is read).
    bound : {"compute", "storage"}
        Which of the two sets ``hours``.
    parallel : int
        Cores, workers or devices the rate is multiplied by.
    assumptions : tuple of str
        What the projection takes for granted.
    """

    stage: str
    hours: float
    compute_hours: float
    storage_hours: float
    bound: Literal["compute", "storage"]
    parallel: int
    assumptions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, marked as projected."""
        return {**asdict(self), "assumptions": list(self.assumptions), "projected": True}


def _projection(
    stage: str, compute_s: float, storage_s: float, parallel: int, assumptions: list[str]
) -> Projection:
    return Projection(
        stage=stage,
        hours=max(compute_s, storage_s) / HOUR,
        compute_hours=compute_s / HOUR,
        storage_hours=storage_s / HOUR,
        bound="storage" if storage_s > compute_s else "compute",
        parallel=parallel,
        assumptions=tuple(assumptions),
    )


def _area(workload: Workload, measured_pixels: int) -> float:
    return (workload.l2_sample_pixels / measured_pixels) ** 2


def project_l1(rate: L1Rate, workload: Workload, cluster: ClusterSpec) -> Projection:
    """Level-1 build of ``workload`` on ``cluster`` at the measured ``rate``."""
    compute_s = workload.cube_days / (rate.cube_days_per_s_per_core * cluster.cores)
    fetched = rate.fetched_bytes_per_cube_day * workload.cube_days
    auxiliary = workload.smap_bytes + workload.era5_bytes
    storage_s = (fetched + auxiliary) / (cluster.storage_gbps * 1e9)
    return _projection(
        "l1",
        compute_s,
        storage_s,
        cluster.cores,
        [
            f"{workload.cube_days:,} cube-days ({workload.cubes:,} cubes x "
            f"{workload.dates_per_tile} dates)",
            f"compute: {rate.cube_days_per_s_per_core:.4g} cube-days/s per core (measured), "
            f"linear in cores up to {cluster.cores} ({cluster.nodes} nodes x "
            f"{cluster.cores_per_node} cores)",
            f"storage: {rate.fetched_bytes_per_cube_day / 1e6:.4g} MB fetched per cube-day "
            f"(measured on the replica, its compression standing for real Sentinel-2) = "
            f"{fetched / 1e12:.3g} TB, plus SMAP and ERA5 read once "
            f"({auxiliary / 1e9:.1f} GB, not measured), at {cluster.storage_gbps:g} GB/s",
            "wall time = max(compute, storage): reads and compute overlap",
        ],
    )


def project_loader(rate: LoaderRate, workload: Workload, cluster: ClusterSpec) -> Projection:
    """``cluster.epochs`` passes of the loader over the workload's level-2 samples."""
    area = _area(workload, rate.sample_pixels)
    samples = workload.l2_samples * cluster.epochs
    workers = cluster.cores
    startup_s = cluster.epochs * workload.l2_samples * rate.startup_s_per_sample
    compute_s = samples * area / (rate.samples_per_s_per_worker * workers) + startup_s
    storage_s = samples * rate.stored_bytes_per_sample * area / (cluster.storage_gbps * 1e9)
    return _projection(
        "loader",
        compute_s,
        storage_s,
        workers,
        [
            f"{samples:,} samples ({workload.l2_samples:,} per epoch = {workload.cubes:,} cubes "
            f"x {workload.l2_samples_per_cube}, x {cluster.epochs} epochs)",
            f"{rate.samples_per_s_per_worker:.4g} samples/s per worker (measured at "
            f"{rate.sample_pixels} px), one worker per core, linear in workers up to {workers}",
            f"time per sample scales with its area: x {area:.3g} for "
            f"{workload.l2_sample_pixels} px samples",
            f"storage: {rate.stored_bytes_per_sample * area / 1e6:.4g} MB stored per sample at "
            f"{cluster.storage_gbps:g} GB/s; wall time = max(compute, storage)",
            f"start-up: {startup_s:.3g} s to the first batch in all (each epoch, every rank at "
            f"once: {rate.startup_s_per_sample * 1e6:.3g} s per million samples, measured on a "
            "metadata-only store, linear in samples), added to compute",
        ],
    )


def project_train(
    rate: TrainRate, workload: Workload, cluster: ClusterSpec, model: str = "model"
) -> Projection:
    """``cluster.epochs`` epochs of training on the workload's level-2 samples."""
    area = _area(workload, rate.sample_pixels)
    samples = workload.l2_samples * cluster.epochs
    on_gpus = cluster.gpus_per_node > 0 and rate.device == "cuda"
    devices = cluster.nodes * cluster.gpus_per_node if on_gpus else cluster.nodes
    compute_s = samples * area / (rate.samples_per_s_per_device * devices)
    kind = "GPUs" if on_gpus else "CPU devices (one per node)"
    notes = [
        f"{samples:,} samples ({workload.l2_samples:,} per epoch x {cluster.epochs} epochs)",
        f"{rate.samples_per_s_per_device:.4g} samples/s per {rate.device} device with the real "
        f"loader (measured, {model} at {rate.sample_pixels} px), linear in devices: "
        f"{devices} {kind}",
        f"time per sample scales with its area: x {area:.3g} for "
        f"{workload.l2_sample_pixels} px samples",
        "the loader keeps up as it did in the measurement (its data wait is in the rate)",
    ]
    if cluster.gpus_per_node > 0 and not on_gpus:
        notes.append(
            f"no GPU rate measured (rate from {rate.device}): projected on CPU devices; run "
            "`cubestream bench` on a CUDA machine for the GPU figure"
        )
    return _projection(f"train:{model}", compute_s, 0.0, devices, notes)
