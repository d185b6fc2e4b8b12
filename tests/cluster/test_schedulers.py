"""The scheduler registry, and PBS against recorded ``qstat -f`` output (tests/data/real/pbs).

The PBS commands are stand-ins on ``PATH`` that print recorded output, so the real code path runs:
the subprocess call, the parser, the state mapping, the waiting loop and the CLI.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cluster.errors import ClusterJobError, ClusterProfileError, JobNotFoundError
from cluster.launch import TrainJob, cancel, log_path, status, submit, wait
from cluster.schedulers import SCHEDULERS, Scheduler, get_scheduler
from cluster.schedulers.pbs import job_state, parse_qstat_full
from cubestream.cli import main

REAL = Path(__file__).resolve().parents[1] / "data" / "real" / "pbs"
RUNNING = REAL / "aiida-core__qstat-running.txt"
QUEUED = REAL / "aiida-core__qstat-queued.txt"
JOB = "171390152.mycluster"
CONFIG = Path(__file__).resolve().parents[2] / "trainers" / "configs" / "rnn.yaml"


def _finished(tmp_path: Path, exit_status: int) -> Path:
    """The recorded running job as ``qstat -f -x`` shows it once finished (ours, derived)."""
    text = RUNNING.read_text().replace("job_state = R", "job_state = F")
    path = tmp_path / f"finished-{exit_status}.txt"
    path.write_text(text + f"    Exit_status = {exit_status}\n")
    return path


def _fake(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)


def _qstat_in_turn(bin_dir: Path, *records: Path) -> Path:
    """A ``qstat`` printing each record in turn (the last one from then on); it logs its args."""
    calls = bin_dir / "qstat.calls"
    lines = [f'[ "$n" = {i} ] && cat {record} && exit 0' for i, record in enumerate(records)]
    _fake(
        bin_dir,
        "qstat",
        f"""\
        echo "$@" >> {calls}
        n=$(($(wc -l < {calls}) - 1))
        {chr(10).join(lines)}
        cat {records[-1]}
        """,
    )
    return calls


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", f"{path}:/usr/bin:/bin")
    return path


def test_every_registered_scheduler_is_a_scheduler() -> None:
    assert set(SCHEDULERS) == {"slurm", "pbs"}
    for name, scheduler in SCHEDULERS.items():
        assert scheduler.name == name
        assert isinstance(scheduler, Scheduler)
    with pytest.raises(ClusterProfileError, match=r"no batch scheduler 'lsf'.*\['pbs', 'slurm'\]"):
        get_scheduler("lsf")


def test_recorded_qstat_records_parse_with_their_continued_lines() -> None:
    jobs = parse_qstat_full(RUNNING.read_text())
    fields = jobs[JOB]
    assert list(jobs) == [JOB] and fields["job_state"] == "R"
    assert fields["Resource_List.select"].endswith(":job_tags=normal:jobfs=104857600")
    assert fields["comment"].endswith("(mycluster-cpu-0686:ncpus=1:mem=512000kb:jobfs=102400kb)")
    assert fields["Variable_List"].endswith("PBS_JOBFS=/jobfs/171390152.mycluster")
    running = job_state(fields)
    assert (running.state, running.final, running.failed) == ("RUNNING", False, False)
    assert running.log == "/path/to/script.sh.o171390152"
    queued = job_state(parse_qstat_full(QUEUED.read_text())[JOB])
    assert (queued.state, queued.final) == ("QUEUED", False)


def test_status_and_the_cli_ask_qstat_on_pbs(
    bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = _qstat_in_turn(bin_dir, QUEUED, RUNNING)
    assert status(JOB, scheduler="pbs") == "QUEUED"
    assert main(["cluster", "status", JOB, "--scheduler", "pbs"]) == 0
    assert capsys.readouterr().out.strip() == "RUNNING"
    assert calls.read_text().splitlines() == [f"-f -x {JOB}"] * 2
    assert log_path(JOB, scheduler="pbs") == Path("/path/to/script.sh.o171390152")


def test_wait_on_pbs_follows_qstat_to_the_end(bin_dir: Path, tmp_path: Path) -> None:
    _qstat_in_turn(bin_dir, QUEUED, RUNNING, _finished(tmp_path, 0))
    assert wait(JOB, poll_s=0.01, timeout_s=30, scheduler="pbs") == "COMPLETED"


def test_a_failed_pbs_job_fails_the_wait_with_its_exit_status(
    bin_dir: Path, tmp_path: Path
) -> None:
    _qstat_in_turn(bin_dir, RUNNING, _finished(tmp_path, 271))
    with pytest.raises(ClusterJobError, match=r"ended FAILED \(reason Job run at .*exit code 271"):
        wait(JOB, poll_s=0.01, timeout_s=30, scheduler="pbs")


def test_a_job_pbs_does_not_know_is_named(bin_dir: Path) -> None:
    _fake(bin_dir, "qstat", 'echo "qstat: Unknown Job Id $3" >&2\nexit 35\n')
    _fake(bin_dir, "qdel", "exit 0\n")
    with pytest.raises(JobNotFoundError, match=r"PBS knows no job 9\.srv \(qstat: Unknown Job"):
        status("9.srv", scheduler="pbs")
    with pytest.raises(JobNotFoundError, match=r"9\.srv"):
        cancel("9.srv", scheduler="pbs")


def test_submit_on_pbs_runs_qsub_on_the_kept_script(bin_dir: Path, tmp_path: Path) -> None:
    seen = bin_dir / "qsub.args"
    _fake(bin_dir, "qsub", f'echo "$@" > {seen}\necho {JOB}\n')
    job = TrainJob(config=CONFIG, workdir=tmp_path / "run", scheduler="pbs")
    assert submit(job) == JOB
    script = tmp_path / "run" / "logs" / "cubestream-train.pbs"
    assert seen.read_text().split() == [str(script)]
    assert script.read_text().startswith("#!/bin/bash") and "#PBS -N cubestream-train" in (
        script.read_text()
    )


def test_the_pipeline_trains_on_pbs_with_qsub_and_waits_with_qstat(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    from cluster._pipeline_batch import follow_train_job
    from cluster.pipeline_config import load_pipeline

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    data = yaml.safe_load((root / "cluster" / "recipes" / "replica.yaml").read_text())
    data["train"] = {**data["train"], "cluster": "pbs-cpu"}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(data))
    spec = load_pipeline(tmp_path / "p.yaml", workdir=tmp_path / "w")
    _fake(bin_dir, "qsub", f"echo {JOB}\n")
    _fake(bin_dir, "scontrol", f"echo scontrol >> {bin_dir}/scontrol.calls\nexit 1\n")
    calls = _qstat_in_turn(bin_dir, RUNNING, _finished(tmp_path, 0))
    commands: list[str] = []
    monkeypatch.setattr("cluster._pipeline_batch.POLL_S", 0.01)

    assert follow_train_job(spec, None, lambda job_id, command: commands.append(command)) == JOB
    [command] = commands
    assert command.startswith("qsub ") and command.endswith(".pbs")
    assert len(calls.read_text().splitlines()) == 2
    assert not (bin_dir / "scontrol.calls").exists()

    # a run stopped while its job ran finds the job again and waits for it, submitting nothing
    calls.unlink()
    _qstat_in_turn(bin_dir, RUNNING, RUNNING, _finished(tmp_path, 0))
    note = f"job {JOB}"
    assert follow_train_job(spec, note, lambda job_id, command: commands.append(command)) == JOB
    assert len(commands) == 1 and len(calls.read_text().splitlines()) == 3
