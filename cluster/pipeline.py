"""``cubestream run PIPELINE.yaml``: sample -> l1 -> l2 -> train (-> test), resumable.

:func:`run_pipeline` reads like the run:

1. load and check the pipeline YAML (:mod:`cluster.pipeline_config`);
2. read ``<workdir>/pipeline-state.json`` and plan: per stage, run it, skip it (done with the
   same options and its outputs present) or keep it (not selected), each with its reason
   (:func:`cluster.pipeline_state.plan_steps`); a stage that runs makes those after it run too;
3. print the plan (with ``dry_run``, the commands too, and stop);
4. run each stage as its exact ``cubestream <stage> ...`` command line (printed, recorded, its
   output also kept in ``<workdir>/logs/<stage>.log``), recording it running, then done or
   failed. A failed stage stops the run; the stages before it stay done, and the next run
   starts from it.

Chunk-level resume is the stages' own: L1 and L2 finish only what is missing, training goes on
from ``last.ckpt`` when its last run was interrupted or failed. A replica section creates the
replica (a no-op when it exists) and serves it over loopback while ``l1`` runs. Training on a
``slurm`` profile is a batch job (:mod:`cluster.launch`) the run waits for.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

from cluster.errors import PipelineStageError, PipelineStateError
from cluster.pipeline_commands import (
    Layout,
    Sources,
    l1_command,
    l2_command,
    outputs,
    replica_command,
    sample_command,
    served_sources,
    test_command,
    train_command,
    train_layout_of,
)
from cluster.pipeline_config import (
    LOCAL,
    PipelineSpec,
    load_pipeline,
    option_values,
)
from cluster.pipeline_state import (
    PipelineState,
    StageRecord,
    Step,
    load_state,
    now,
    plan_steps,
    save_state,
)

__all__ = ["run_pipeline", "stage_options"]

Write = Callable[[str], None]


def run_pipeline(
    path: str | Path,
    *,
    workdir: str | Path | None = None,
    start: str | None = None,
    only: str | None = None,
    dry_run: bool = False,
    force: bool = False,
    out: TextIO | None = None,
) -> tuple[Step, ...]:
    """Run (or finish) the pipeline of a YAML file.

    Parameters
    ----------
    path : str or Path
        The pipeline YAML.
    workdir : str or Path, optional
        Put the outputs here instead of the file's ``workdir``.
    start, only : str, optional
        Run from this stage on (``--from``), or only this stage (``--only``).
    dry_run : bool
        Print the plan and the commands; run and write nothing.
    force : bool
        Run the selected stages even when done (their own resume still applies).
    out : TextIO, optional
        Where the plan and the stages' output go (default: standard output).

    Returns
    -------
    tuple of Step
        The plan that was carried out.

    Raises
    ------
    PipelineConfigError
        The YAML is wrong (the message names the key).
    PipelineStateError
        A stage needed first is not done, or the workdir is in use by another run.
    PipelineStageError
        A stage's command failed (the message has its log and what to do).
    """
    write = _writer(out)
    spec = load_pipeline(path, workdir=workdir)
    layout = Layout(spec.workdir)
    state = load_state(layout.state)
    options = stage_options(spec)
    present: dict[str, bool] = {s: all(p.exists() for p in outputs(spec, s)) for s in spec.stages}
    steps = plan_steps(options, state, present, start=start, only=only, force=force)
    _print_plan(spec, steps, write)
    if dry_run:
        for step in steps:
            if step.action == "run":
                write(_dry_command(spec, step))
        return steps
    layout.workdir.mkdir(parents=True, exist_ok=True)
    with _locked(layout.workdir):
        _Run(spec, layout, state, options, write).carry_out(steps)
    write(f"pipeline {spec.name}: every stage done; state in {layout.state}\n")
    return steps


def stage_options(spec: PipelineSpec) -> dict[str, dict[str, Any]]:
    """Per stage, the options that shape its outputs (what its fingerprint covers).

    Training also covers the trainer YAML's text, so an edited config retrains.
    """
    out: dict[str, dict[str, Any]] = {
        stage: option_values(spec.options(stage), outputs_only=True) for stage in spec.stages
    }
    text = Path(spec.train.config).absolute().read_bytes()
    out["train"]["config-sha256"] = hashlib.sha256(text).hexdigest()[:16]
    return out


def _writer(out: TextIO | None) -> Write:
    def write(text: str) -> None:
        stream = out or sys.stdout
        stream.write(text)
        stream.flush()

    return write


def _print_plan(spec: PipelineSpec, steps: tuple[Step, ...], write: Write) -> None:
    write(f"pipeline {spec.name} ({spec.source}), workdir {spec.workdir}\n")
    for step in steps:
        verb = {"run": "run", "skip": "skipped", "keep": "kept"}[step.action]
        resume = ", resumes from last.ckpt" if step.resume and step.stage == "train" else ""
        write(f"  {step.stage:<8} {verb:<8} {step.reason}{resume}\n")
    for step in steps:
        if step.warning:
            write(f"  warning: {step.warning}\n")


def _period(spec: PipelineSpec) -> tuple[str, str]:
    from cluster._pipeline_replica import preset_period

    return preset_period(spec.options("replica").preset)


def _dry_sources(spec: PipelineSpec) -> Sources | None:
    if spec.replica is None:
        return None
    from cubestream.layout import BUCKET

    served = spec.replica.serve
    return served_sources(
        _replica_dir(spec),
        _period(spec),
        stac="http://127.0.0.1:<port>" if served else None,
        bucket=BUCKET if served else None,
        endpoints=Layout(spec.workdir).endpoints,
    )


def _dry_command(spec: PipelineSpec, step: Step) -> str:
    """The command of a step, or for training on a batch cluster the script it submits."""
    if step.stage != "train" or _train_kind(spec) == LOCAL:
        return f"$ {shlex.join(_command(spec, step, _dry_sources(spec)))}\n"
    from cluster._pipeline_batch import train_job
    from cluster.launch import submit
    from cluster.profiles import load_profile

    script = submit(train_job(spec, load_profile(spec.train.cluster)), dry_run=True)
    return f"# train: a batch job on {spec.train.cluster}; the script it submits:\n{script}\n"


def _train_kind(spec: PipelineSpec) -> str:
    if spec.train.cluster == LOCAL:
        return LOCAL
    from cluster.profiles import load_profile

    return str(load_profile(spec.train.cluster).kind)


def _replica_dir(spec: PipelineSpec) -> Path:
    root = spec.replica_dir
    assert root is not None
    return root


def _command(spec: PipelineSpec, step: Step, sources: Sources | None) -> list[str]:
    stage = step.stage
    if stage == "replica":
        return replica_command(spec)
    if stage == "sample":
        return sample_command(spec)
    if stage == "l1":
        return l1_command(spec, sources)
    if stage == "l2":
        return l2_command(spec)
    if stage == "train":
        return train_command(spec, resume=step.resume)
    return test_command(spec)


@contextlib.contextmanager
def _locked(workdir: Path) -> Iterator[None]:
    """Hold ``<workdir>/.pipeline.lock`` so that two runs never share a workdir."""
    with (workdir / ".pipeline.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            raise PipelineStateError(
                f"another `cubestream run` is using {workdir} ({lock.read().strip()}); wait for "
                "it to end, or give this run another workdir (--workdir)"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        lock.flush()
        yield


class _Run:
    """Carries out a plan, keeping the state file up to date after every change."""

    def __init__(
        self,
        spec: PipelineSpec,
        layout: Layout,
        state: PipelineState,
        options: dict[str, dict[str, Any]],
        write: Write,
    ) -> None:
        self.spec, self.layout, self.state = spec, layout, state
        self.options, self.write = options, write

    def carry_out(self, steps: tuple[Step, ...]) -> None:
        for step in steps:
            if step.action != "run":
                continue
            if step.stage == "l1" and self.spec.replica is not None:
                with self._replica_sources() as sources:
                    self._stage(step, sources)
            else:
                self._stage(step, None)

    def _save(self, stage: str, record: StageRecord) -> None:
        self.state = self.state.with_record(stage, record)
        save_state(
            self.layout.state,
            self.state,
            pipeline=self.spec.name,
            config=str(self.spec.source),
            workdir=str(self.spec.workdir),
        )

    def _stage(self, step: Step, sources: Sources | None) -> None:
        stage = step.stage
        if stage == "train":
            self._set_aside_old_training(step)
        batch = stage == "train" and _train_kind(self.spec) != LOCAL
        command = [] if batch else _command(self.spec, step, sources)
        log = self.layout.log(stage)
        started = now()
        earlier = self.state.get(stage)
        record = StageRecord(
            status="running",
            fingerprint=step.fingerprint,
            options=self.options[stage],
            command=shlex.join(command) if command else None,
            started=started,
            log=str(log),
            note=earlier.note if batch and step.resume and earlier is not None else None,
        )
        self.state = self.state.invalidated_after(
            list(self.spec.stages), stage, f"{stage} reran at {started}"
        )
        self._save(stage, record)
        self.write(f"== {stage}: {step.reason}\n")
        clock = time.perf_counter()
        try:
            if batch:
                self._batch_train(record, clock)
            else:
                self.write(f"$ {shlex.join(command)}\n")
                code, last = _tee(command, log, self.write)
                if code != 0:
                    self._fail(stage, record, code, last, clock)
        except KeyboardInterrupt:
            current = self.state.get(stage) or record
            note = current.note if batch else "interrupted (Ctrl-C)"
            self._save(stage, _ended(current, "failed", clock, note=note))
            raise
        record = self.state.get(stage) or record
        missing = [str(p) for p in outputs(self.spec, stage) if not p.exists()]
        if missing:
            self._fail(stage, record, 0, f"it left no {', '.join(missing)}", clock)
        written = tuple(str(p) for p in outputs(self.spec, stage))
        done = _ended(record, "done", clock, note=record.note)
        self._save(stage, replace(done, outputs=written, returncode=0))
        self.write(f"== {stage}: done in {time.perf_counter() - clock:.1f} s\n")

    def _fail(
        self, stage: str, record: StageRecord, code: int, last: str, clock: float
    ) -> NoReturn:
        self._save(stage, replace(_ended(record, "failed", clock, note=last), returncode=code))
        raise PipelineStageError(
            f"stage {stage} failed (exit status {code}): {last}; its log: {record.log}; the "
            f"stages before it are kept. Fix the cause (the {stage} section of "
            f"{self.spec.source}, or its inputs) and rerun `cubestream run {self.spec.source}`: "
            f"it goes on from {stage}"
        )

    def _set_aside_old_training(self, step: Step) -> None:
        """A fresh training run moves an earlier run's folder aside (it is kept, not deleted)."""
        root = train_layout_of(self.spec).root
        if step.resume or not root.is_dir() or not any(root.iterdir()):
            return
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        aside = root.with_name(f"{root.name}.before-{stamp}")
        root.rename(aside)
        self.write(f"train: the earlier run under {root} is kept as {aside}\n")

    @contextlib.contextmanager
    def _replica_sources(self) -> Iterator[Sources]:
        """The replica's sources: served over loopback for the duration, or as files."""
        root = _replica_dir(self.spec)
        period = _period(self.spec)
        if not self.spec.options("replica").serve:
            yield served_sources(root, period)
            return
        from cluster._pipeline_replica import serving

        log = self.layout.workdir / "replica-access.log"
        command = ["cubestream", "replica", "serve", str(root), "--access-log", str(log)]
        self.write(f"$ {shlex.join(command)}  # for the duration of l1\n")
        with serving(root, log) as endpoints:
            self.layout.endpoints.write_text(endpoints.to_json() + "\n")
            yield served_sources(
                root,
                period,
                stac=endpoints.stac_api,
                bucket=endpoints.bucket,
                endpoints=self.layout.endpoints,
            )

    def _batch_train(self, record: StageRecord, clock: float) -> None:
        """Submit the training as a batch job (or find the one in flight) and wait for it."""
        from cluster._pipeline_batch import follow_train_job
        from cubestream.errors import CubestreamError

        def submitted(job_id: str, command: str) -> None:
            self._save("train", replace(record, command=command, note=f"job {job_id}"))
            script = command.split(" ", 1)[1]
            self.write(f"train: submitted {script} as job {job_id}; waiting for it\n")

        try:
            follow_train_job(self.spec, record.note, submitted)
        except CubestreamError as exc:  # the cluster's errors, each with its own message
            self._fail("train", self.state.get("train") or record, 1, str(exc), clock)


def _ended(record: StageRecord, status: Any, clock: float, note: str | None = None) -> StageRecord:
    seconds = round(time.perf_counter() - clock, 1)
    return replace(record, status=status, ended=now(), seconds=seconds, note=note)


def _env() -> dict[str, str]:
    """The environment, with this checkout first on ``PYTHONPATH`` (installed or not)."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, path]))}


def _tee(command: list[str], log: Path, write: Write) -> tuple[int, str]:
    """Run ``command``, its output to ``write`` and appended to ``log``; status, last error."""
    log.parent.mkdir(parents=True, exist_ok=True)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    tail = ""
    with log.open("a", encoding="utf-8") as file:
        file.write(f"\n$ {shlex.join(command)}  # {now()}\n")
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_env()
        )
        assert process.stdout is not None
        try:
            while chunk := os.read(process.stdout.fileno(), 1 << 16):
                text = decoder.decode(chunk)
                file.write(text)
                write(text)
                tail = (tail + text)[-8000:]
        finally:
            try:
                code = process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
            process.stdout.close()
    return code, _last_error(tail)


def _last_error(tail: str) -> str:
    lines = [line.strip() for line in tail.replace("\r", "\n").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("cubestream: error:")]
    return (errors or lines or ["no output"])[-1]
