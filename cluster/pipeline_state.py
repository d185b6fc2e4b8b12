"""The state of a pipeline run (``<workdir>/pipeline-state.json``) and the plan made from it.

Per stage the state records its status (``pending``, ``running``, ``done``, ``failed``), the
exact command line, start and end times, outputs, and the fingerprint of the options that shape
its outputs. :func:`plan_steps` is pure: from the options, the state and which outputs exist it
decides, per stage, to run it, skip it (done with the same options and outputs present) or keep
it (not selected by ``--from`` / ``--only``), and says why.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, get_args

from cluster.errors import PipelineStateError

__all__ = [
    "STATE_FILE",
    "Action",
    "PipelineState",
    "StageRecord",
    "Status",
    "Step",
    "fingerprint",
    "load_state",
    "now",
    "plan_steps",
    "save_state",
]

STATE_FILE = "pipeline-state.json"
Status = Literal["pending", "running", "done", "failed"]
Action = Literal["run", "skip", "keep"]


@dataclass(frozen=True, kw_only=True)
class StageRecord:
    """What the state file holds of one stage.

    Attributes
    ----------
    status : {"pending", "running", "done", "failed"}
        ``running`` after a run that was killed; ``pending`` after an earlier stage reran.
    fingerprint : str
        Hash of ``options``.
    options : dict
        The options that shape the stage's outputs (as in the YAML, defaults left out).
    command : str, optional
        The exact command line (``shlex``-quoted).
    started, ended : str, optional
        ISO times, UTC.
    seconds : float, optional
        Wall time of the command.
    outputs : tuple of str
        Files and stores the stage wrote.
    returncode : int, optional
        Exit status of the command.
    log : str, optional
        The stage's log file (its whole output).
    note : str, optional
        Why it is pending or failed, or the batch job id.
    """

    status: Status
    fingerprint: str
    options: dict[str, Any] = field(default_factory=dict)
    command: str | None = None
    started: str | None = None
    ended: str | None = None
    seconds: float | None = None
    outputs: tuple[str, ...] = ()
    returncode: int | None = None
    log: str | None = None
    note: str | None = None

    def __post_init__(self) -> None:
        if self.status not in get_args(Status):
            raise PipelineStateError(f"unknown stage status {self.status!r}")

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data."""
        data = asdict(self)
        data["outputs"] = list(self.outputs)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageRecord:
        """A record from :meth:`to_dict`'s data."""
        return cls(**{**data, "outputs": tuple(data.get("outputs", ()))})


@dataclass(frozen=True)
class PipelineState:
    """Every stage's record, by stage name."""

    stages: Mapping[str, StageRecord] = field(default_factory=dict)

    def get(self, stage: str) -> StageRecord | None:
        """The record of ``stage``, if it ever started."""
        return self.stages.get(stage)

    def with_record(self, stage: str, record: StageRecord) -> PipelineState:
        """A new state with ``stage``'s record replaced."""
        return PipelineState({**self.stages, stage: record})

    def invalidated_after(self, stages: Sequence[str], stage: str, why: str) -> PipelineState:
        """A new state with the done stages after ``stage`` set back to pending."""
        later = stages[stages.index(stage) + 1 :]
        out = dict(self.stages)
        for name in later:
            record = out.get(name)
            if record is not None and record.status in ("done", "failed", "running"):
                out[name] = replace(record, status="pending", note=why)
        return PipelineState(out)


@dataclass(frozen=True)
class Step:
    """What the plan does with one stage, and why.

    Attributes
    ----------
    stage : str
        The stage.
    action : {"run", "skip", "keep"}
        Run its command; skip it (done, same options, outputs present); keep it as it is (not
        selected).
    reason : str
        Why, in words.
    fingerprint : str
        The fingerprint of its current options.
    resume : bool
        Its last run was interrupted or failed with these same options: it carries on from
        where it stopped (training from ``last.ckpt``).
    warning : str, optional
        Something to tell the user (a kept stage whose options changed).
    """

    stage: str
    action: Action
    reason: str
    fingerprint: str
    resume: bool = False
    warning: str | None = None


def fingerprint(stage: str, options: Mapping[str, Any]) -> str:
    """A short hash of a stage's output-shaping options."""
    text = json.dumps({"stage": stage, "options": options}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_steps(
    options: Mapping[str, Mapping[str, Any]],
    state: PipelineState,
    present: Mapping[str, bool],
    *,
    start: str | None = None,
    only: str | None = None,
    force: bool = False,
) -> tuple[Step, ...]:
    """Decide, stage by stage, what a run does.

    Parameters
    ----------
    options : mapping of stage to options
        Every stage of the pipeline, in order, with its output-shaping options.
    state : PipelineState
        What earlier runs recorded.
    present : mapping of stage to bool
        Whether each stage's outputs exist.
    start, only : str, optional
        ``--from STAGE`` (run it and those after it) or ``--only STAGE``.
    force : bool
        Run the selected stages even when done.

    Raises
    ------
    PipelineStateError
        ``start``/``only`` is not a stage of the pipeline, or a stage before the selection is
        not done.
    """
    stages = list(options)
    selected = _selection(stages, start, only)
    steps: list[Step] = []
    rerun: str | None = None
    for stage in stages:
        fp = fingerprint(stage, options[stage])
        record = state.get(stage)
        if stage not in selected:
            steps.append(_kept(stage, fp, record, options[stage], selected, stages, rerun))
            continue
        reason = _why_run(record, fp, options[stage], present.get(stage, False), force, rerun)
        if reason is None:
            assert record is not None
            steps.append(Step(stage, "skip", f"done {record.ended or ''}, same options", fp))
            continue
        resume = (
            record is not None
            and record.status in ("running", "failed")
            and record.fingerprint == fp
            and not force
            and rerun is None
        )
        steps.append(Step(stage, "run", reason, fp, resume=resume))
        rerun = stage
    return tuple(steps)


def _selection(stages: list[str], start: str | None, only: str | None) -> list[str]:
    if start and only:
        raise PipelineStateError("give --from or --only, not both")
    name = start or only
    if name is None:
        return stages
    if name not in stages:
        raise PipelineStateError(f"{name!r} is not a stage of this pipeline; its stages: {stages}")
    at = stages.index(name)
    return stages[at:] if start else [name]


def _kept(
    stage: str,
    fp: str,
    record: StageRecord | None,
    options: Mapping[str, Any],
    selected: list[str],
    stages: list[str],
    rerun: str | None,
) -> Step:
    before = stages.index(stage) < stages.index(selected[0])
    if before and (record is None or record.status != "done"):
        status = "never run" if record is None else record.status
        raise PipelineStateError(
            f"stage {stage} is not done ({status}) and {selected[0]} needs its outputs: run it "
            f"first (`cubestream run FILE --from {stage}`)"
        )
    if not before:
        return Step(
            stage,
            "keep",
            "not selected",
            fp,
            warning=f"{stage} is out of date once {rerun} reruns: run --from {stage} after it"
            if rerun and record is not None and record.status == "done"
            else None,
        )
    assert record is not None
    warning = None
    if record.fingerprint != fp:
        changed = _changed(record.options, options)
        warning = (
            f"{stage}'s options changed since it ran ({changed}); its outputs are out of date: "
            f"run --from {stage} to rebuild"
        )
    return Step(stage, "keep", f"not selected (done {record.ended or ''})", fp, warning=warning)


def _why_run(
    record: StageRecord | None,
    fp: str,
    options: Mapping[str, Any],
    present: bool,
    force: bool,
    rerun: str | None,
) -> str | None:
    """Why a selected stage must run, or None when it can be skipped."""
    if force:
        return "forced (--force)"
    if rerun is not None:
        return f"{rerun} reruns before it"
    if record is None:
        return "never run"
    if record.fingerprint != fp:
        return f"options changed: {_changed(record.options, options)}"
    if record.status == "running":
        return "interrupted last time"
    if record.status == "failed":
        return f"failed last time ({record.note or 'see its log'})"
    if record.status == "pending":
        return f"pending ({record.note})" if record.note else "pending"
    if not present:
        return "its outputs are missing"
    return None


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    keys = sorted(k for k in {*old, *new} if old.get(k) != new.get(k))
    return ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys) or "none recorded"


def now() -> str:
    """The current UTC time, ISO, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def load_state(path: Path) -> PipelineState:
    """Read a state file; a missing one is an empty state.

    Raises
    ------
    PipelineStateError
        The file is not a state file of ``cubestream run``.
    """
    if not path.is_file():
        return PipelineState()
    try:
        data = json.loads(path.read_text())
        stages = {name: StageRecord.from_dict(r) for name, r in data["stages"].items()}
    except (ValueError, KeyError, TypeError) as exc:
        raise PipelineStateError(
            f"{path} is not a readable pipeline state ({exc}); move it aside to start the "
            "pipeline over (the stages' own outputs are resumed or reused as they are)"
        ) from None
    return PipelineState(stages)


def save_state(path: Path, state: PipelineState, **about: Any) -> None:
    """Write the state file atomically (a temporary file, then a rename)."""
    data = {**about, "updated": now(), "stages": {k: r.to_dict() for k, r in state.stages.items()}}
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(temporary, path)
