"""`cubestream bench` parses to the suite or to the report; `bench report` draws a history."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import cli as bench_cli
from benchmarks.report import END, START
from benchmarks.suite import PRESETS, SuiteSettings
from cubestream.cli import build_parser, main


def test_bench_alone_runs_the_whole_suite_at_tiny_size() -> None:
    args = build_parser().parse_args(["bench"])
    assert args.func is bench_cli._run
    settings = bench_cli._settings(args)
    assert settings.stages == ("l1", "loader", "train", "encoding") and settings.preset == "tiny"
    assert settings.cluster.nodes == 1 and settings.cluster.gpus_per_node == 0
    assert settings == SuiteSettings() and not args.no_report


def test_bench_run_takes_stages_sizes_and_a_cluster(tmp_path: Path) -> None:
    argv = ["bench", "run", "--stages", "train", "--preset", "small", "--nodes", "8"]
    argv += ["--cores-per-node", "64", "--gpus-per-node", "4", "--storage-gbps", "20"]
    argv += ["--history", str(tmp_path / "h.jsonl"), "--out", str(tmp_path / "r")]
    args = build_parser().parse_args(argv)
    assert args.func is bench_cli._run
    settings = bench_cli._settings(args)
    assert settings.stages == ("train",) and settings.preset == "small"
    assert settings.history == tmp_path / "h.jsonl" and settings.cluster == bench_cli._cluster(args)
    cluster = bench_cli._cluster(args)
    assert (cluster.nodes, cluster.cores_per_node, cluster.gpus_per_node) == (8, 64, 4)
    assert cluster.storage_gbps == 20.0 and cluster.cores == 512
    assert args.history == tmp_path / "h.jsonl" and args.out == tmp_path / "r"


def test_unknown_stage_is_refused() -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--stages", "l3"])


def test_the_cli_names_every_preset() -> None:
    assert set(bench_cli.PRESET_NAMES) == set(PRESETS)


def test_bench_report_draws_the_history_and_fills_the_readme(
    history: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"## Benchmarks\n{START}\n{END}\n")
    out = tmp_path / "report"
    argv = ["bench", "report", "--history", str(history), "--out", str(out)]
    assert main([*argv, "--readme", str(readme)]) == 0
    assert (out / "latest.png").exists() and (out / "table.md").exists()
    assert "| train (noop) |" in readme.read_text()
    assert "updated the table" in capsys.readouterr().out
