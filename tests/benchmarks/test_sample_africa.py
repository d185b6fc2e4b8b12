import json
from pathlib import Path

import pytest
import rasterio

from benchmarks._africa_strata import ensure_strata
from benchmarks.sample_africa import main
from cubestream.sample.area import parse_area

KEYS = {
    "benchmark", "mode", "time", "git", "machine", "versions", "settings", "strata_rasters",
    "sizes", "seconds", "cpu_seconds", "memory_mb", "splits", "boxes_per_second",
}  # fmt: skip
STEPS = {"parse_area", "candidate_boxes", "box_strata", "stratum_keys", "draw", "assign_tracks"}


@pytest.mark.slow
def test_quick_run_appends_one_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache, results = tmp_path / "cache", tmp_path / "out" / "results.jsonl"
    argv = ["--quick", "--workers", "2", "--cache", str(cache), "--results", str(results)]
    main(argv)
    printed = json.loads(capsys.readouterr().out)
    lines = results.read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record == printed
    assert set(record) >= KEYS
    assert record["mode"] == "quick"
    assert set(record["seconds"]["steps"]) >= STEPS
    assert record["seconds"]["steps"]["draw"]["calls"] == 2  # the top-tiles pass and the draw
    assert {"platform", "python", "cpus", "memory_gb", "load_average"} <= set(record["machine"])
    assert {"numpy", "pandas", "rasterio", "pyproj", "shapely"} <= set(record["versions"])
    sizes = record["sizes"]
    assert sizes["sampled_boxes"] == record["settings"]["target"]
    assert sizes["candidate_boxes"] >= sizes["eligible_boxes"] >= sizes["sampled_boxes"] > 0
    memory = record["memory_mb"]
    assert memory["self_peak_rss"] > 0
    assert memory["children_peak_rss"] > 0  # the box_strata workers
    assert memory["descendants_seen"] >= 2
    assert memory["rusage_children_maxrss"] > 0
    assert set(record["splits"]["achieved"]) == {"train", "val", "test"}
    assert not record["strata_rasters"]["cached"]
    assert {p.name for p in cache.iterdir()} >= {"climate.tif", "landcover.tif", "strata.json"}


def test_rasters_are_cached_and_sea_outside_the_area(tmp_path: Path) -> None:
    area = parse_area("36,-1,37,0")
    sources, first = ensure_strata(tmp_path, area, 0.02)
    again, second = ensure_strata(tmp_path, area, 0.02)
    assert again == sources
    assert not first["cached"] and second["cached"]
    with rasterio.open(sources.landcover) as land, rasterio.open(sources.climate) as climate:
        assert (
            land.shape == climate.shape == (56, 56)
        )  # 1 degree + 0.05 margins, edges on the 0.02 lattice
        assert land.read(1)[0, 0] == 80 and climate.read(1)[0, 0] == 0  # margin: sea
        assert land.read(1)[28, 28] > 0 and climate.read(1)[28, 28] > 0  # inside: land
    _, other = ensure_strata(tmp_path, area, 0.05)  # another grid is written afresh
    assert not other["cached"]
    sources.check()
