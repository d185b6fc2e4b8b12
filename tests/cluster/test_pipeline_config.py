"""The pipeline YAML: the shipped recipes load, and every mistake names its key and file."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.errors import PipelineConfigError, PipelineConfigNotFoundError
from cluster.pipeline_config import (
    L1Options,
    L2Options,
    SampleOptions,
    load_pipeline,
    option_values,
)
from cluster.pipeline_train import CHECKPOINT_DIR
from cubestream.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "cluster" / "recipes"
RNN = str(ROOT / "trainers" / "configs" / "rnn.yaml")


def _minimal() -> dict[str, Any]:
    return {
        "workdir": "run",
        "replica": {"preset": "small"},
        "sample": {"target": 4},
        "l1": {},
        "l2": {"windows-per-cube": 2},
        "train": {"config": RNN},
    }


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize("name", ["replica.yaml", "africa.yaml"])
def test_the_shipped_recipes_load(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    spec = load_pipeline(RECIPES / name)
    assert spec.stages[-3:] == ("l2", "train", "test")
    assert spec.workdir.is_absolute()


def test_the_africa_recipe_runs_l1_and_l2_on_slurm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    spec = load_pipeline(RECIPES / "africa.yaml")
    assert spec.replica is None
    assert spec.l1.cluster != "local" and spec.l2.cluster != "local"
    assert spec.sample.target == 23_864 and spec.sample.top_tiles == 200


def test_a_minimal_pipeline_and_its_defaults(tmp_path: Path) -> None:
    spec = load_pipeline(_write(tmp_path, _minimal()), workdir=tmp_path / "elsewhere")
    assert spec.workdir == tmp_path / "elsewhere"
    assert spec.stages == ("replica", "sample", "l1", "l2", "train")
    assert spec.replica_dir == tmp_path / "elsewhere" / "replica"
    assert spec.train_name == "rnn" and spec.l1.cluster == "local"
    assert option_values(spec.l2) == {"windows-per-cube": 2}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"l2": {"windows_per_cub": 2}},
         r"l2\.windows-per-cub is not a known key \(did you mean 'windows-per-cube'"),
        ({"sample": {}}, r"sample\.target is missing \(required\)"),
        ({"sample": {"target": "many"}}, r"sample\.target is 'many'; it must be a whole number"),
        ({"l1": {"start": "2020-13-01"}}, r"l1\.start is '2020-13-01'; write a day as YYYY-MM-DD"),
        ({"l1": {"tiles": "37MBU"}}, r"l1\.tiles is '37MBU'; it must be a list"),
        ({"l2": {"era5-point": "far"}},
         r"l2\.era5-point is 'far'; use one of \['nearest', 'window_mean'\]"),
        ({"l2": {"kndvi-normalise": "yes"}},
         r"l2\.kndvi-normalise is 'yes'; it must be true or false"),
        ({"train": {"config": RNN, "time": 14400}},
         r"train\.time is 14400; it must be a string \(YAML reads"),
        ({"train": None}, r"train is missing"),
        ({"stages": {}}, r"stages is not a known key"),
        ({"workdir": None}, r"workdir is missing"),
        ({"l1": {"cluster": "no-such-profile"}},
         r"l1\.cluster is 'no-such-profile': no cluster profile named"),
        ({"train": {"config": RNN, "args": ["--data.store", "x"]}},
         r"train\.args holds '--data\.store'"),
        ({"train": {"config": RNN, "nodes": 0}}, r"train\.nodes is 0; it must be at least 1"),
    ],
)  # fmt: skip
def test_a_wrong_key_is_named_with_the_file(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, {**_minimal(), **change})
    with pytest.raises(PipelineConfigError, match=message) as error:
        load_pipeline(path)
    assert str(path) in str(error.value)


def test_without_a_replica_the_sources_are_required(tmp_path: Path) -> None:
    data = _minimal()
    del data["replica"]
    with pytest.raises(PipelineConfigError, match=r"sample\.climate is missing: without a replica"):
        load_pipeline(_write(tmp_path, data))
    data["sample"] = {"target": 4, "climate": "c.tif", "landcover": "l.tif", "geomorphons": "g.tif"}
    with pytest.raises(PipelineConfigError, match=r"l1\.stac is missing"):
        load_pipeline(_write(tmp_path, data))


def test_missing_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(PipelineConfigNotFoundError, match="pipeline file not found"):
        load_pipeline(tmp_path / "nothing.yaml")
    data = {**_minimal(), "train": {"config": "no/such/config.yaml"}}
    with pytest.raises(PipelineConfigNotFoundError, match=r"train\.config names no/such/config"):
        load_pipeline(_write(tmp_path, data))
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(PipelineConfigError, match="a pipeline file is a mapping"):
        load_pipeline(tmp_path / "list.yaml")


def test_a_trainer_config_that_writes_outside_its_root_is_refused(tmp_path: Path) -> None:
    trainer = yaml.safe_load(Path(RNN).read_text())
    trainer["trainer"]["callbacks"][1]["init_args"]["dirpath"] = "/somewhere/else"
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(trainer))
    data = {**_minimal(), "train": {"config": str(tmp_path / "t.yaml")}}
    with pytest.raises(PipelineConfigError, match=r"callbacks\[1\]\.init_args\.dirpath"):
        load_pipeline(_write(tmp_path, data))
    del trainer["trainer"]["callbacks"][1]
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(trainer))
    with pytest.raises(PipelineConfigError, match="no ModelCheckpoint callback with save_last"):
        load_pipeline(_write(tmp_path, data))


def test_a_bad_config_through_the_cli_is_one_line_and_status_3(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, {**_minimal(), "l2": {"windows": 2}})
    assert main(["run", str(path), "--dry-run"]) == 3  # ExitCode.INPUT
    err = capsys.readouterr().err.strip()
    assert err.startswith("cubestream: error:") and "l2.windows is not a known key" in err
    assert "\n" not in err


@pytest.mark.parametrize(
    ("options", "command"), [(SampleOptions, "sample"), (L1Options, "l1"), (L2Options, "l2")]
)
def test_every_stage_option_is_a_flag_of_its_command(options: type, command: str) -> None:
    """The YAML keys mirror the commands' flags: each must exist there (``--cluster`` too)."""
    sub = next(
        a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)
    ).choices[command]
    dests = {a.dest for a in sub._actions}
    assert {f.name for f in dataclasses.fields(options)} <= dests


def test_checkpoints_lie_where_the_trainers_put_them() -> None:
    from trainers.cli import CHECKPOINT_DIR as TRAINERS

    assert CHECKPOINT_DIR == TRAINERS
