"""The plan of `cubestream run` (pure), the state file, the commands and the dry run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.errors import PipelineStateError
from cluster.pipeline import run_pipeline, stage_options
from cluster.pipeline_commands import flags, l1_command, served_sources
from cluster.pipeline_config import CommandOptions, load_pipeline
from cluster.pipeline_state import (
    PipelineState,
    StageRecord,
    fingerprint,
    load_state,
    plan_steps,
    save_state,
)
from cubestream.cli import main

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "cluster" / "recipes" / "replica.yaml"
STAGES = ("sample", "l1", "l2", "train")
OPTIONS: dict[str, dict[str, Any]] = {s: {"seed": 0} for s in STAGES}
ALL = dict.fromkeys(STAGES, True)


def _done(options: dict[str, dict[str, Any]] = OPTIONS, **status: str) -> PipelineState:
    records = {
        stage: StageRecord(
            status=status.get(stage, "done"),  # type: ignore[arg-type]
            fingerprint=fingerprint(stage, options[stage]),
            options=options[stage],
            ended="2026-01-01T00:00:00+00:00",
        )
        for stage in STAGES
    }
    return PipelineState(records)


def _actions(steps: tuple[Any, ...]) -> dict[str, str]:
    return {step.stage: step.action for step in steps}


def test_a_fresh_pipeline_runs_every_stage() -> None:
    steps = plan_steps(OPTIONS, PipelineState(), {})
    assert _actions(steps) == dict.fromkeys(STAGES, "run")
    assert steps[0].reason == "never run" and steps[1].reason == "sample reruns before it"


def test_a_done_pipeline_skips_every_stage_and_says_why() -> None:
    steps = plan_steps(OPTIONS, _done(), ALL)
    assert _actions(steps) == dict.fromkeys(STAGES, "skip")
    assert all("same options" in step.reason for step in steps)


def test_a_changed_option_reruns_its_stage_and_those_after_it() -> None:
    changed = {**OPTIONS, "l2": {"seed": 0, "windows-per-cube": 2}}
    steps = plan_steps(changed, _done(), ALL)
    assert _actions(steps) == {"sample": "skip", "l1": "skip", "l2": "run", "train": "run"}
    assert steps[2].reason == "options changed: windows-per-cube: None -> 2"
    assert steps[3].reason == "l2 reruns before it"


def test_missing_outputs_rerun_the_stage() -> None:
    steps = plan_steps(OPTIONS, _done(), {**ALL, "l1": False})
    assert _actions(steps) == {"sample": "skip", "l1": "run", "l2": "run", "train": "run"}
    assert steps[1].reason == "its outputs are missing"


def test_a_failed_stage_runs_again_and_resumes() -> None:
    steps = plan_steps(OPTIONS, _done(l2="failed", train="pending"), ALL)
    assert _actions(steps) == {"sample": "skip", "l1": "skip", "l2": "run", "train": "run"}
    assert steps[2].resume and steps[2].reason.startswith("failed last time")
    assert not steps[3].resume


def test_an_interrupted_training_resumes_unless_its_options_changed() -> None:
    assert plan_steps(OPTIONS, _done(train="running"), ALL)[3].resume
    changed = {**OPTIONS, "train": {"seed": 1}}
    step = plan_steps(changed, _done(train="running"), ALL)[3]
    assert step.action == "run" and not step.resume


def test_force_from_and_only() -> None:
    assert _actions(plan_steps(OPTIONS, _done(), ALL, force=True)) == dict.fromkeys(STAGES, "run")
    steps = plan_steps(OPTIONS, _done(), ALL, start="l2", force=True)
    assert _actions(steps) == {"sample": "keep", "l1": "keep", "l2": "run", "train": "run"}
    steps = plan_steps(OPTIONS, _done(), ALL, only="l2", force=True)
    assert _actions(steps) == {"sample": "keep", "l1": "keep", "l2": "run", "train": "keep"}
    assert steps[3].warning == "train is out of date once l2 reruns: run --from train after it"


def test_a_stage_needed_first_must_be_done() -> None:
    with pytest.raises(PipelineStateError, match=r"stage l1 is not done \(failed\) and l2 needs"):
        plan_steps(OPTIONS, _done(l1="failed"), ALL, only="l2")
    with pytest.raises(PipelineStateError, match="'l3' is not a stage of this pipeline"):
        plan_steps(OPTIONS, _done(), ALL, start="l3")


def test_a_kept_stage_with_changed_options_is_warned_about() -> None:
    changed = {**OPTIONS, "sample": {"seed": 7}}
    steps = plan_steps(changed, _done(), ALL, start="l2")
    assert steps[0].action == "keep"
    assert steps[0].warning is not None and "seed: 0 -> 7" in steps[0].warning


def test_the_state_file_round_trips_and_a_corrupt_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "pipeline-state.json"
    assert load_state(path) == PipelineState()
    state = _done()
    save_state(path, state, pipeline="p")
    assert load_state(path) == state
    assert json.loads(path.read_text())["pipeline"] == "p"
    path.write_text("{not json")
    with pytest.raises(PipelineStateError, match="is not a readable pipeline state"):
        load_state(path)


def test_an_upstream_rerun_sets_the_later_stages_back_to_pending() -> None:
    state = _done().invalidated_after(list(STAGES), "l1", "l1 reran")
    assert [state.stages[s].status for s in STAGES] == ["done", "done", "pending", "pending"]
    assert state.stages["l2"].note == "l1 reran"


def test_flags_mirror_the_options() -> None:
    options = CommandOptions(
        "l2", {"windows_per_cube": 2, "invalid_scl": (0, 1, 3), "kndvi_normalise": True}
    )
    assert flags(options, skip=("cluster",)) == [
        "--windows-per-cube", "2", "--invalid-scl", "0,1,3", "--kndvi-normalise",
    ]  # fmt: skip


def test_l1_takes_the_replica_sources_unless_the_yaml_gives_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    data = yaml.safe_load(RECIPE.read_text())
    data["l1"] = {**data["l1"], "end": "2020-12-31", "cluster": "slurm-cpu"}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    spec = load_pipeline(tmp_path / "p.yaml", workdir=tmp_path / "w")
    replica = tmp_path / "w" / "replica"
    sources = served_sources(replica, ("2020-01-01", "2021-12-31"))
    command = l1_command(spec, sources)
    assert command[command.index("--end") + 1] == "2020-12-31"
    assert command[command.index("--start") + 1] == "2020-01-01"
    assert command[command.index("--stac") + 1] == str(replica / "stac" / "items.ndjson")
    assert command[-2:] == ["--cluster", "slurm-cpu"] and "--endpoints" not in command


def test_stage_options_cover_the_trainer_config_but_not_how_a_stage_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    options = stage_options(load_pipeline(RECIPE))
    assert "config-sha256" in options["train"]
    assert not {"workers", "threads", "memory-limit", "cluster"} & set(options["l1"])


def test_the_dry_run_prints_the_plan_and_every_command_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    work = tmp_path / "w"
    assert main(["run", str(RECIPE), "--dry-run", "--workdir", str(work)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == f"pipeline replica ({RECIPE}), workdir {work}"
    assert "  replica  run      never run" in lines
    commands = [line for line in lines if line.startswith("$ ")]
    assert [c.split()[5] for c in commands] == ["create", "--replica", "--locations", "--l1",
                                                "fit", "test"]  # fmt: skip
    assert f"--trainer.default_root_dir {work}/train/rnn" in commands[4]
    assert f"--ckpt_path {work}/train/rnn/checkpoints/last.ckpt" in commands[5]
    assert not work.exists()


def test_the_dry_run_of_the_africa_recipe_shows_the_batch_job(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    run_pipeline(ROOT / "cluster" / "recipes" / "africa.yaml", dry_run=True)
    out = capsys.readouterr().out
    assert "--cluster slurm-cpu" in out
    assert "#SBATCH --nodes=2" in out and "#SBATCH --partition=gpu" in out
