"""The level-1 benchmark runs end to end on the tiny replica and records what it promises."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from benchmarks._cog_blocks import cog_bytes, data_blocks
from benchmarks._decode_ceiling import CogBlocks, decode_ceiling
from benchmarks.l1_bytes import imaged_cubes, main
from cubestream.replica import layout
from cubestream.replica.spec import ReplicaSpec, load_spec

KEYS = {
    "benchmark", "time", "git", "machine", "versions", "settings", "replica", "sizes",
    "cubestream", "cog_floor", "peer", "ratios", "cubestream_local", "decode_ceiling",
    "peer_local",
}  # fmt: skip
PHASE = {
    "seconds", "seconds_runs", "cluster_start_seconds", "peak_rss_mb_per_worker", "fetched",
    "load_average_before", "load_average_after",
}  # fmt: skip
RATIOS = {
    "fetched_over_blocks", "fetched_over_whole", "peer_seconds_over_cubestream",
    "s3_share_of_ceiling", "local_share_of_ceiling", "peer_seconds_over_local",
    "peer_local_seconds_over_local",
}  # fmt: skip


@pytest.mark.slow
def test_two_cubes_append_one_record(replica_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "results" / "l1.jsonl"
    argv = ["--replica", str(replica_root), "--cubes", "2", "--out", str(out)]
    record = main([*argv, "--workdir", str(tmp_path / "work")])
    lines = out.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == json.loads(json.dumps(record))
    assert set(record) >= KEYS
    assert record["sizes"]["cubes"] == 2
    for phase in ("cubestream", "peer"):
        assert set(record[phase]) >= PHASE
        assert len(record[phase]["peak_rss_mb_per_worker"]) == 2
        assert record[phase]["fetched"]["cog_bytes"] > 0
        assert record[phase]["fetched"]["errors"] == 0
    floor = record["cog_floor"]
    assert floor["file"] > floor["blocks"] > 0 and floor["header"] > 0
    assert floor["cogs"] == record["cubestream"]["fetched"]["cogs_read"]
    assert set(record["ratios"]) >= RATIOS
    local = record["cubestream_local"]
    assert set(local) >= PHASE and local["fetched"]["cog_bytes"] == 0  # read from the files
    peer_local = record["peer_local"]
    assert set(peer_local) >= PHASE and peer_local["fetched"]["cog_bytes"] == 0
    assert peer_local["items_per_cube"] == record["peer"]["items_per_cube"]
    assert record["cubestream"]["s3_server_cpu_seconds"] > 0
    assert record["cubestream"]["workers_cpu_seconds"] > 0
    for tile, chunks in record["cubestream"]["s2_chunks"].items():  # as the store got them
        days = record["cubestream"]["days"][tile]
        assert chunks[0] == 1 and chunks[1] <= record["settings"]["days_per_chunk"]
        assert -(-days // chunks[1]) * chunks[1] - days < -(-days // chunks[1])  # even
    ceiling = record["decode_ceiling"]
    assert ceiling["blocks"] == floor["block_count"]
    assert ceiling["rasterio_1"]["decoded_mb"] == ceiling["rasterio_all"]["decoded_mb"] > 0
    assert {"cpus", "memory_gb", "load_average"} <= set(record["machine"])
    assert {"stackstac", "gdal", "dask"} <= set(record["versions"])


def test_imaged_cubes_lie_in_the_imaged_window(replica_root: Path) -> None:
    spec = load_spec(replica_root)
    every = imaged_cubes(spec, None)
    win = spec.data_windows["37MBU"]
    assert len(every) == (win.height // 128) * (win.width // 128)
    assert (every["row"] * 128 >= win.row).all() and (every["col"] * 128 >= win.col).all()
    some = imaged_cubes(spec, 3, seed=1)
    assert len(some) == 3 and set(some["cube_id"]) <= set(every["cube_id"])


def test_blocks_under_a_window(replica_root: Path) -> None:
    spec = load_spec(replica_root)
    cube = imaged_cubes(spec, 1).iloc[0]
    path = next((replica_root / layout.OBJECTS_DIR).rglob("B04.tif"))
    bounds = (cube["x_min"], cube["y_min"], cube["x_max"], cube["y_max"])
    one = cog_bytes(path, [bounds])
    assert one.block_count == 1  # a 128 px box lies within one 1024 px block
    assert 0 < one.header < one.file and 0 < one.blocks < one.file
    assert cog_bytes(path, [bounds, bounds]).blocks_per_window == 2 * one.blocks


def test_decode_ceiling_decodes_the_blocks_under_a_window(replica_root: Path) -> None:
    spec = load_spec(replica_root)
    cube = imaged_cubes(spec, 1).iloc[0]
    paths = sorted((replica_root / layout.OBJECTS_DIR).rglob("B04.tif"))[:3]
    bounds = (cube["x_min"], cube["y_min"], cube["x_max"], cube["y_max"])
    cogs = [CogBlocks(path=path, blocks=data_blocks(path, [bounds])) for path in paths]
    assert [len(cog.blocks) for cog in cogs] == [1, 1, 1]
    ceiling = decode_ceiling(cogs, threads=2)
    assert ceiling["blocks"] == 3 and ceiling["threads_all"] == 2
    block_mb = round(3 * 1024 * 1024 * 2 / 1e6, 1)  # three uint16 blocks of 1024 x 1024 px
    for name in ("rasterio_1", "rasterio_all", "libdeflate_1", "libdeflate_all"):
        assert ceiling[name]["decoded_mb"] == block_mb
        assert ceiling[name]["seconds"] > 0


def test_end_shortens_the_replica_and_caches_it_apart(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import benchmarks.l1_bytes as l1_bytes
    from cubestream.replica import create

    made: dict[str, ReplicaSpec] = {}

    def fake(root: Path, spec: ReplicaSpec) -> Path:
        made["spec"] = spec
        return root

    monkeypatch.setattr(create, "create_replica", fake)
    argv = ["--resolution", "native", "--end", "2021-12-31", "--cache", str(tmp_path)]
    settings = l1_bytes._arguments(argv)
    assert l1_bytes._replica(settings) == tmp_path / "replica-tiny-native-to2021-12-31"
    spec = made["spec"]
    assert spec.end == dt.date(2021, 12, 31) and spec.resolution == "native"


def test_flags_make_the_settings() -> None:
    from typing import get_args

    from benchmarks.l1_bytes import Settings, _arguments
    from cubestream.replica.spec import PRESETS, PresetName

    assert get_args(PresetName) == tuple(PRESETS)
    assert _arguments([]) == Settings()
    argv = [
        "--preset", "tile", "--no-peer", "--no-local", "--no-ceiling", "--whole-tile",
        "--gdal", "GDAL_CACHEMAX=512", "--gdal", "A=b=c", "--resolution", "30m",
        "--reader", "stackstac", "--end", "2021-12-31", "--cubes", "3", "--threads", "2",
    ]  # fmt: skip
    settings = _arguments(argv)
    assert (settings.peer, settings.local, settings.ceiling, settings.whole_tile) == (
        False, False, False, True,
    )  # fmt: skip
    assert settings.gdal == {"GDAL_CACHEMAX": "512", "A": "b=c"}
    assert (settings.preset, settings.resolution, settings.reader) == ("tile", "30m", "stackstac")
    assert (settings.end, settings.cubes, settings.threads) == (dt.date(2021, 12, 31), 3, 2)
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        _arguments(["--gdal", "GDAL_CACHEMAX"])
    with pytest.raises(SystemExit):
        _arguments(["--preset", "huge"])
