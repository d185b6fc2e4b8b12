"""`cubestream run` end to end: the replica recipe itself, then resume at stage level.

The replica recipe needs a world two calendar years long (the ``pipeline`` preset): creating it
takes about a minute, so set ``CUBESTREAM_TEST_PIPELINE_REPLICA`` to a directory to keep it
between sessions. The served path runs on the ``tiny`` world of the session.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from cluster.errors import PipelineStageError
from cluster.pipeline import run_pipeline
from cluster.pipeline_state import Step, load_state
from cubestream.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "cluster" / "recipes" / "replica.yaml"


@pytest.fixture(scope="session")
def pipeline_replica(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The recipe's replica world (kept in ``$CUBESTREAM_TEST_PIPELINE_REPLICA`` when set)."""
    from cubestream.replica.create import create_replica
    from cubestream.replica.spec import preset

    name = yaml.safe_load(RECIPE.read_text())["replica"]["preset"]
    kept = os.environ.get("CUBESTREAM_TEST_PIPELINE_REPLICA")
    root = Path(kept) if kept else tmp_path_factory.mktemp("replica") / name
    return create_replica(root, preset(name), workers=2)


def _recipe(tmp_path: Path, replica: Path, **changes: dict[str, Any]) -> Path:
    """The replica recipe with its replica in ``replica`` and sections updated."""
    data = yaml.safe_load(RECIPE.read_text())
    data["replica"]["dir"] = str(replica)
    for section, values in changes.items():
        data[section] = {**data[section], **values}
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _run(path: Path, work: Path, **kwargs: Any) -> tuple[dict[str, Step], str]:
    out = io.StringIO()
    steps = run_pipeline(path, workdir=work, out=out, **kwargs)
    return {step.stage: step for step in steps}, out.getvalue()


def _actions(steps: dict[str, Step]) -> dict[str, str]:
    return {stage: step.action for stage, step in steps.items()}


@pytest.mark.timeout(1800)  # four runs of the pipeline; L1 alone took 4 min on a loaded machine
def test_the_replica_recipe_runs_end_to_end_then_resumes_stage_by_stage(
    pipeline_replica: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the recipe's trainer config is relative to the checkout
    work = tmp_path / "run"
    recipe = _recipe(tmp_path, pipeline_replica)

    # 1. every stage, as its exact command line
    steps, out = _run(recipe, work)
    assert set(_actions(steps).values()) == {"run"}
    state = load_state(work / "pipeline-state.json")
    assert {s: r.status for s, r in state.stages.items()} == dict.fromkeys(steps, "done")
    assert state.stages["l1"].command is not None
    assert " -m cubestream.cli l1 --locations " in state.stages["l1"].command
    assert f"--trainer.default_root_dir {work}/train/rnn" in str(state.stages["train"].command)
    l2 = json.loads((work / "l2.zarr.report.json").read_text())
    assert l2["complete"] and l2["samples"] >= 2
    scores = work / "train" / "rnn" / "scores.json"
    assert scores.is_file() and (work / "train" / "rnn" / "checkpoints" / "last.ckpt").is_file()
    assert "cubestream.cli train fit" in (work / "logs" / "train.log").read_text()

    # 2. again: every stage is skipped, with its reason
    steps, out = _run(recipe, work)
    assert set(_actions(steps).values()) == {"skip"}
    assert "  l2       skipped  done " in out and "same options" in out

    # 3. a wrong l2 option: l2 fails, the stages before it stay done, nothing is lost
    bad = _recipe(tmp_path, pipeline_replica, l2={"windows-per-cube": 0})
    with pytest.raises(PipelineStageError, match=r"stage l2 failed \(exit status 3\)") as error:
        _run(bad, work)
    message = str(error.value)
    assert "windows_per_cube must be at least 1" in message
    assert str(work / "logs" / "l2.log") in message and "it goes on from l2" in message
    state = load_state(work / "pipeline-state.json")
    statuses = {s: r.status for s, r in state.stages.items()}
    assert statuses == {**dict.fromkeys(("replica", "sample", "l1"), "done"), "l2": "failed",
                        "train": "pending", "test": "pending"}  # fmt: skip
    assert scores.is_file()  # the earlier training run is still there

    # 4. fixed with another l2 option: l2, train and test rerun; the rest is skipped
    fixed = _recipe(tmp_path, pipeline_replica, l2={"windows-per-cube": 2})
    steps, out = _run(fixed, work)
    assert _actions(steps) == {**dict.fromkeys(("replica", "sample", "l1"), "skip"),
                               **dict.fromkeys(("l2", "train", "test"), "run")}  # fmt: skip
    assert steps["l2"].reason == "options changed: windows-per-cube: 0 -> 2"  # vs the failed run
    assert json.loads((work / "l2.zarr.report.json").read_text())["samples"] > l2["samples"]
    assert [p.name for p in (work / "train").glob("rnn.before-*")] != []
    assert scores.is_file()
    state = load_state(work / "pipeline-state.json")
    assert {r.status for r in state.stages.values()} == {"done"}


def test_a_served_replica_feeds_l1_and_a_failing_stage_is_resumed_from(
    replica_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The tiny world is served for l1; its three months hold no L2 window, so l2 fails."""
    monkeypatch.chdir(ROOT)
    work = tmp_path / "run"
    data = yaml.safe_load(RECIPE.read_text())
    data["replica"] = {"dir": str(replica_root), "preset": "tiny", "serve": True}
    data["sample"] = {**data["sample"], "seed": 4}
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))

    assert main(["run", str(path), "--workdir", str(work)]) == 1  # ExitCode.FAILED: a stage
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("cubestream: error: stage l2 failed (exit status 3)")
    assert "no window to build" in err and "\n" not in err
    assert "replica serve" in captured.out and "--endpoints" in captured.out
    endpoints = json.loads((work / "endpoints.json").read_text())
    assert endpoints["stac_api"] in str(load_state(work / "pipeline-state.json").get("l1"))
    statuses = {s: r.status for s, r in load_state(work / "pipeline-state.json").stages.items()}
    assert statuses == {"replica": "done", "sample": "done", "l1": "done", "l2": "failed"}

    # the next run goes on from l2 (shown by the dry run: nothing before it reruns)
    steps, _ = _run(path, work, dry_run=True)
    assert _actions(steps) == {**dict.fromkeys(("replica", "sample", "l1"), "skip"),
                               **dict.fromkeys(("l2", "train", "test"), "run")}  # fmt: skip
    assert steps["l2"].reason.startswith("failed last time (cubestream: error: no window")
