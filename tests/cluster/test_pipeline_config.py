"""The pipeline YAML: the shipped recipes load, and every mistake names its key and file."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.errors import PipelineConfigError, PipelineConfigNotFoundError
from cluster.pipeline_commands import flags
from cluster.pipeline_config import (
    COMMAND_CONFIGS,
    SET_BY_PIPELINE,
    command_params,
    load_pipeline,
    option_values,
)
from cluster.pipeline_train import CHECKPOINT_DIR
from cubestream.cli import build_parser, main
from cubestream.execution import ClientOptions
from cubestream.l1.config import L1Config
from cubestream.options import from_args, params

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
    assert spec.sample.get("target") == 23_864 and spec.sample.get("top_tiles") == 200


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


def _subparser(command: str) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]  # type: ignore[no-any-return]


@pytest.mark.parametrize("command", ["sample", "l1", "l2"])
def test_every_config_field_is_a_flag_and_a_yaml_key(command: str) -> None:
    """Declared once: each option field of the stage's configs is a flag and a pipeline key."""
    flags = {a.dest: a for a in _subparser(command)._actions}
    keys = command_params(command)
    for cls in COMMAND_CONFIGS[command]:
        for p in params(cls):
            assert p.name in flags, f"{cls.__name__}.{'.'.join(p.path)} has no flag"
            assert flags[p.name].help == p.flag.help
            in_yaml = p.flag.pipeline and p.name not in SET_BY_PIPELINE[command]
            assert (p.name in keys) == in_yaml, f"{p.name} in the {command} YAML: {in_yaml}"
    # the nested configs' fields too, under the flag name they declare
    wanted = {"sample": "top_tiles", "l1": "dem", "l2": "era5_point"}[command]
    assert wanted in keys and ("on_missing" in keys) == (command == "l1")


@pytest.mark.parametrize(
    ("command", "argv", "field", "value"),
    [
        ("l1", ["--dem", "srtm/"], ("auxiliary", "srtm"), "srtm/"),
        ("l1", ["--srtm", "srtm/"], ("auxiliary", "srtm"), "srtm/"),
        ("l1", ["--on-missing", "exclude"], ("integrity", "on_missing"), "exclude"),
        ("l1", ["--tiles", "37MBU", "37MCU"], ("tiles",), ("37MBU", "37MCU")),
        ("l1", ["--tiles"], ("tiles",), None),
        ("l1", [], ("read_block",), None),
        ("l1", ["--read-block", "1024"], ("read_block",), 1024),
        ("l2", ["--invalid-scl", "0,3"], ("invalid_scl",), (0, 3)),
        ("l2", ["--kndvi-normalise"], ("kndvi_normalise",), True),
        ("l2", ["--start", "2020-02-01"], ("start",), dt.date(2020, 2, 1)),
    ],
)
def test_the_flags_build_the_config(
    command: str, argv: list[str], field: tuple[str, ...], value: Any
) -> None:
    required = {
        "l1": ["--locations", "l.parquet", "--stac", "i.ndjson", "--out", "o.zarr",
               "--start", "2020-01-01", "--end", "2020-12-31"],
        "l2": ["--l1", "l1.zarr", "--locations", "l.parquet", "--out", "o.zarr"],
    }[command]  # fmt: skip
    args = build_parser().parse_args([command, *required, *argv])
    config = from_args(COMMAND_CONFIGS[command][0], args)
    got = config
    for name in field:
        got = getattr(got, name)
    assert got == value
    assert from_args(ClientOptions, args).threads == (2 if command == "l1" else 1)


@pytest.mark.parametrize(
    ("section", "typo", "message"),
    [
        ("sample", {"target": 4, "top-tile": 3},
         r"sample\.top-tile is not a known key \(did you mean 'top-tiles'"),
        ("sample", {"target": 4, "out": "x"}, r"sample\.out is not a known key"),
        ("l1", {"max-cloud-covr": 20},
         r"l1\.max-cloud-covr is not a known key \(did you mean 'max-cloud-cover'"),
        ("l1", {"dme": "x"}, r"l1\.dme is not a known key \(did you mean 'dem'"),
        ("l1", {"locations": "x"}, r"l1\.locations is not a known key"),
        ("l1", {"scheduler": "tcp://x"}, r"l1\.scheduler is not a known key"),
        ("l1", {"dem-source": "lidar"}, r"l1\.dem-source is 'lidar'; use one of \['auto'"),
        ("l1", {"read-block": 10.5}, r"l1\.read-block is 10\.5; it must be a whole number"),
        ("l2", {"threads": "two"}, r"l2\.threads is 'two'; it must be a whole number"),
        ("l2", {"invalid-scl": [0, "cloud"]},
         r"l2\.invalid-scl\[1\] is 'cloud'; it must be a whole number"),
    ],
)  # fmt: skip
def test_a_yaml_typo_gets_a_clear_error(
    tmp_path: Path, section: str, typo: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, {**_minimal(), section: typo})
    with pytest.raises(PipelineConfigError, match=message) as error:
        load_pipeline(path)
    assert str(path) in str(error.value)


def test_the_sample_flags_build_the_sample_config() -> None:
    from cubestream.sample.options import SampleOptions

    argv = ["sample", "--out", "s.parquet", "--target", "40", "--climate", "c.tif",
            "--landcover", "l.tif", "--geomorphons", "g.tif", "--val", "0.05",
            "--allocation", "equalised", "--max-water", "0.3"]  # fmt: skip
    config = from_args(SampleOptions, build_parser().parse_args(argv)).config()
    assert config.target == 40 and config.area == "africa"
    assert config.splits.shares == pytest.approx({"train": 0.75, "val": 0.05, "test": 0.2})
    assert config.allocation.method == "equalised" and config.strata.max_water_fraction == 0.3


def test_yaml_values_become_the_flags_of_the_command(tmp_path: Path) -> None:
    data = {**_minimal(), "l1": {"srtm": "d/", "on-missing": "exclude", "workers": 3,
                                 "start": dt.date(2020, 1, 2), "tiles": ["37MBU"]}}  # fmt: skip
    spec = load_pipeline(_write(tmp_path, data))
    assert option_values(spec.l1, outputs_only=True) == {
        "dem": "d/", "on-missing": "exclude", "start": "2020-01-02", "tiles": ["37MBU"],
    }  # fmt: skip
    command = flags(spec.l1)
    for pair in (["--dem", "d/"], ["--on-missing", "exclude"], ["--workers", "3"]):
        assert " ".join(pair) in " ".join(command)
    args = build_parser().parse_args(
        ["l1", "--locations", "l", "--out", "o", "--stac", "s", "--end", "2020-12-31", *command]
    )
    config = from_args(L1Config, args)
    assert config.auxiliary.srtm == "d/" and config.integrity.on_missing == "exclude"
    assert config.start == dt.date(2020, 1, 2) and config.tiles == ("37MBU",)


def test_checkpoints_lie_where_the_trainers_put_them() -> None:
    from trainers.cli import CHECKPOINT_DIR as TRAINERS

    assert CHECKPOINT_DIR == TRAINERS
