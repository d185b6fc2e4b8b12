"""Summary rows of a stage's record: measured rate, ceiling, peers, ratios, projected hours.

Private helper of :mod:`benchmarks.suite`. A row is a dict::

    {"stage", "row", "measured": {"value", "unit", "text"}, "ceiling": {... same},
     "ratio_to_ceiling", "ratio_to_ceiling_is", "peers": [{"name", "value", "unit", "text",
     "ratio", "ratio_is"}], "projected_hours", "projected_bound"}

Every ratio is oriented so that 1 is "as good as the reference" and above 1 "better than it"
for peers (cubestream's rate over the peer's), at most 1 for ceilings (cubestream's figure over
the ceiling's). Only ``projected_hours`` is not measured.
"""

from __future__ import annotations

import statistics
from typing import Any

from benchmarks.projection import (
    ClusterSpec,
    L1Rate,
    LoaderRate,
    Projection,
    TrainRate,
    project_l1,
    project_loader,
    project_train,
)
from benchmarks.workload import Workload, replica_workload

__all__ = ["sizes", "summarise", "text"]


def _figure(value: float, unit: str, text: str) -> dict[str, Any]:
    return {"value": round(value, 4), "unit": unit, "text": text}


def _row(stage: str, name: str, projection: Projection, **parts: Any) -> dict[str, Any]:
    return {
        "stage": stage,
        "row": name,
        **parts,
        "projected_hours": round(projection.hours, 4),
        "projected_bound": projection.bound,
    }


def _l1_cube_days(figures: dict[str, Any]) -> int:
    days = figures["cubestream"]["days"]
    per_tile = figures["sizes"]["cubes_per_tile"]
    return int(sum(n * days[tile] for tile, n in per_tile.items()))


def _l1_build(phase: dict[str, Any], cubes: int) -> tuple[float, str]:
    rate = cubes / phase["seconds"]
    mb = phase["fetched"]["cog_bytes"] / 1e6
    peak = max(phase["peak_rss_mb_per_worker"])
    return rate, f"{rate:.2f} cubes/s, {mb:.1f} MB fetched, peak worker {peak:.0f} MB"


def _l1_rows(
    figures: dict[str, Any], workload: Workload, cluster: ClusterSpec
) -> tuple[list[dict[str, Any]], list[Projection]]:
    ours, floor = figures["cubestream"], figures["cog_floor"]
    cubes, fetched = figures["sizes"]["cubes"], ours["fetched"]["cog_bytes"]
    cube_days = _l1_cube_days(figures)
    cores = figures["settings"]["workers"] * figures["settings"]["threads_per_worker"]
    rate = L1Rate(
        cube_days_per_s_per_core=cube_days / ours["seconds"] / cores,
        fetched_bytes_per_cube_day=fetched / cube_days,
    )
    projection = project_l1(rate, workload, cluster)
    value, measured = _l1_build(ours, cubes)
    measured += f", {fetched / 1e6 / ours['seconds']:.2f} MB/s"
    peers = []
    for name, key in (("per-cube stackstac", "peer"), ("whole tiles", "whole_tile")):
        phase = figures.get(key)
        if phase is None:
            continue
        peer_rate, peer_text = _l1_build(phase, cubes)
        if key == "whole_tile" and not phase["whole_tile_in_memory"]:
            peer_text += f" ({phase['days_in_memory']} of {phase['whole_tile_days']} days held)"
        ratio_bytes = phase["fetched"]["cog_bytes"] / max(fetched, 1)
        peers.append(
            {
                "name": name,
                **_figure(peer_rate, "cubes/s", f"{name}: {peer_text}"),
                "ratio": round(value / peer_rate, 3),
                "ratio_is": "cubestream cubes/s / peer cubes/s",
                "fetched_ratio": round(ratio_bytes, 3),
            }
        )
    row = _row(
        "l1",
        "l1",
        projection,
        measured=_figure(value, "cubes/s", measured),
        ceiling=_figure(
            floor["blocks"] / 1e6,
            "MB",
            f"COG blocks under the windows {floor['blocks'] / 1e6:.1f} MB "
            f"(whole COGs {floor['file'] / 1e6:.1f} MB)",
        ),
        ratio_to_ceiling=round(floor["blocks"] / max(fetched, 1), 3),
        ratio_to_ceiling_is="bytes of the blocks under the windows / bytes fetched",
        peers=peers,
    )
    return [row], [projection]


def _startup_per_sample(rows: list[dict[str, Any]]) -> float:
    """Seconds to the first batch per store sample, at the largest store measured (0 if none)."""
    if not rows:
        return 0.0
    largest = max(rows, key=lambda r: (r["samples"], r["first_batch_s"]))
    return float(largest["first_batch_s"]) / int(largest["samples"])


def _loader_rows(
    figures: dict[str, Any], workload: Workload, cluster: ClusterSpec
) -> tuple[list[dict[str, Any]], list[Projection]]:
    settings = figures["settings"]
    rows, projections = [], []
    for store in figures["stores"]:
        ours = store["cubestream"]
        best = max(ours, key=lambda w: ours[w]["epoch_samples_per_s"])
        cpus = figures["machine"]["cpus_usable"]
        usable = [int(w) for w in ours if 0 < int(w) <= cpus]
        most = str(max(usable)) if usable else best
        stored = sum(v["stored_bytes"] for v in store["variables"].values())
        rate = LoaderRate(
            samples_per_s_per_worker=ours[most]["epoch_samples_per_s"] / max(int(most), 1),
            stored_bytes_per_sample=stored / settings["samples"],
            sample_pixels=settings["size"],
            startup_s_per_sample=_startup_per_sample(figures.get("startup", [])),
        )
        projection = project_loader(rate, workload, cluster)
        run, top = ours[best], store["ceiling"]
        paired = settings["samples"] / statistics.median(run["ceiling_seconds_runs"])
        peers = [
            {
                "name": kind,
                **_figure(
                    store[kind][best]["epoch_samples_per_s"],
                    "samples/s",
                    f"{kind}: {store[kind][best]['epoch_samples_per_s']:.1f} samples/s",
                ),
                "ratio": round(
                    run["epoch_samples_per_s"] / store[kind][best]["epoch_samples_per_s"], 3
                ),
                "ratio_is": f"cubestream / {kind}, samples/s, {best} workers",
            }
            for kind in ("xbatcher_map", "xbatcher_iterable")
            if kind in store
        ]
        per_chunk = store["samples_per_chunk"]
        rows.append(
            _row(
                "loader",
                f"loader ({per_chunk}/chunk)",
                projection,
                measured=_figure(
                    run["epoch_samples_per_s"],
                    "samples/s",
                    f"{run['epoch_samples_per_s']:.1f} samples/s, {run['mb_per_s']:.0f} MB/s, "
                    f"{best} workers, {per_chunk} samples/chunk",
                ),
                ceiling=_figure(
                    paired,
                    "samples/s",
                    f"zarr decode {paired:.1f} samples/s in the passes paired with these "
                    f"(alone: {top['epoch_samples_per_s']:.1f} samples/s, "
                    f"{top['mb_per_s']:.0f} MB/s)",
                ),
                ratio_to_ceiling=run["ratio"],
                ratio_to_ceiling_is="median of loader pass rate / zarr pass rate just before",
                peers=peers,
            )
        )
        projections.append(projection)
    return rows, projections


def _train_rows(
    figures: dict[str, Any], workload: Workload, cluster: ClusterSpec
) -> tuple[list[dict[str, Any]], list[Projection]]:
    settings = figures["settings"]
    rows, projections = [], []
    for name, model in figures["models"].items():
        real, memory = model["real_loader"], model["in_memory"]
        rate = TrainRate(
            samples_per_s_per_device=real["samples_per_s"],
            device=settings["device"],
            sample_pixels=settings["size"],
        )
        projection = project_train(rate, workload, cluster, model=name)
        gpu = real["gpu_utilisation"]
        gpu_text = (
            f", GPU {gpu['mean_percent']}%" if gpu["mean_percent"] is not None else ", no GPU"
        )
        peer = model.get("peer")
        peers = (
            [
                {
                    "name": "per-sample zarr dataset",
                    **_figure(
                        peer["samples_per_s"],
                        "samples/s",
                        f"per-sample zarr dataset: {peer['samples_per_s']:.1f} samples/s",
                    ),
                    "ratio": model["ratio_to_peer"],
                    "ratio_is": "real loader / per-sample dataset, samples/s",
                }
            ]
            if peer
            else []
        )
        rows.append(
            _row(
                "train",
                f"train ({name})",
                projection,
                measured=_figure(
                    real["samples_per_s"],
                    "samples/s",
                    f"{real['samples_per_s']:.1f} samples/s ({real['steps_per_s']:.2f} steps/s), "
                    f"data wait {real['data_wait_fraction']:.2f}{gpu_text}",
                ),
                ceiling=_figure(
                    memory["samples_per_s"],
                    "samples/s",
                    f"in-memory batches {memory['samples_per_s']:.1f} samples/s",
                ),
                ratio_to_ceiling=model["ratio_to_in_memory"],
                ratio_to_ceiling_is="step rate with the real loader / with in-memory batches",
                peers=peers,
            )
        )
        projections.append(projection)
    return rows, projections


def _encoding_rows(
    figures: dict[str, Any], workload: Workload, cluster: ClusterSpec
) -> tuple[list[dict[str, Any]], list[Projection]]:
    """Rows of today's store, the chosen encoding and layout: the loader per core, GPU decode."""
    size = figures["settings"]["size"]
    by_name = {c["name"]: c for c in figures["candidates"]}
    rows, projections = [], []
    layout = (figures.get("chosen_layout") or {}).get("name")
    for name in dict.fromkeys(n for n in ("today", figures["chosen"]["name"], layout) if n):
        c = by_name[name]
        ours, top, naive = c["loader_device"], c["ceiling"], c["naive"]
        per_core = ours["samples_per_core_s"]
        rate = LoaderRate(
            samples_per_s_per_worker=per_core,
            stored_bytes_per_sample=c.get("read_mb_per_sample", c["stored_mb_per_sample"]) * 1e6,
            sample_pixels=size,
        )
        projection = project_loader(rate, workload, cluster)
        naive_text = f"naive per-sample zarr: {naive['samples_per_core_s']:.1f} samples/core-s"
        peers = [
            {
                "name": "naive",
                **_figure(naive["samples_per_core_s"], "samples/core-s", naive_text),
                "ratio": c["loader_over_naive"]["per_core"],
                "ratio_is": "loader / naive per-sample dataset, samples per CPU-second",
            },
            {
                "name": "today",
                **_figure(by_name["today"]["loader_device"]["samples_per_core_s"],
                          "samples/core-s", "today's float32 store through the same loader"),
                "ratio": c["vs_today"]["loader_device_samples_per_core_s"],
                "ratio_is": "this encoding / today's store, loader samples per CPU-second",
            },
        ]  # fmt: skip
        rows.append(
            _row(
                "encoding",
                f"encoding {name} ({c['values']}, {c['codec']})",
                projection,
                measured=_figure(
                    per_core,
                    "samples/core-s",
                    f"{per_core:.1f} samples per core-s, {c['stored_mb_per_sample']:.1f} MB "
                    f"per sample ({c['vs_today']['stored_mb_per_sample']:.2f} x today)",
                ),
                ceiling=_figure(
                    top["samples_per_core_s"],
                    "samples/core-s",
                    f"zarr decode {top['samples_per_core_s']:.1f} samples per core-s",
                ),
                ratio_to_ceiling=c["loader_over_ceiling_per_core"],
                ratio_to_ceiling_is="loader samples per CPU-second / zarr's, same store",
                peers=peers,
            )
        )
        projections.append(projection)
    return rows, projections


def _replica(stage: str, figures: dict[str, Any]) -> Workload:
    if stage == "l1":
        counts = figures["sizes"]["cubes_per_tile"]
        days = figures["cubestream"]["days"]
        return replica_workload(
            f"replica {figures['settings']['preset']}",
            len(counts),
            sum(counts.values()),
            round(sum(days.values()) / len(days)),
        )
    samples = figures["settings"]["samples"]
    return replica_workload(f"{samples} synthetic L2 samples", 0, samples, 0)


def summarise(
    stage: str, figures: dict[str, Any], workload: Workload, cluster: ClusterSpec
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The summary rows of a stage's record, and its projection for ``workload``."""
    make = {
        "l1": _l1_rows,
        "loader": _loader_rows,
        "train": _train_rows,
        "encoding": _encoding_rows,
    }[stage]
    rows, projections = make(figures, workload, cluster)
    return rows, {
        "projected": True,
        "workload": workload.to_dict(),
        "replica": _replica(stage, figures).to_dict(),
        "cluster": cluster.to_dict(),
        "stages": [p.to_dict() for p in projections],
    }


def sizes(stage: str, figures: dict[str, Any]) -> dict[str, Any]:
    """The sizes a stage ran at."""
    if stage == "l1":
        return {**figures["sizes"], "days": figures["cubestream"]["days"]}
    settings = figures["settings"]
    keys = ("samples", "size", "batch_size", "samples_per_chunk", "workers", "steps", "models")
    return {key: settings[key] for key in keys if key in settings}


def text(record: dict[str, Any]) -> str:
    """A few lines on a stage's record: each row's figures and its projected hours."""
    lines = []
    for row in record["rows"]:
        peers = "; ".join(f"{p['text']} (x{p['ratio']})" for p in row["peers"]) or "none"
        lines += [
            f"  {row['row']}: {row['measured']['text']}",
            f"    ceiling: {row['ceiling']['text']} -> ratio {row['ratio_to_ceiling']}",
            f"    peers: {peers}",
            f"    projected: {row['projected_hours']:.3g} h for the 12 TB workload "
            f"({row['projected_bound']}-bound)",
        ]
    return "\n".join(lines)
