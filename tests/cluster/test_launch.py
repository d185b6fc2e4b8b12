"""Training jobs: the sbatch and PBS scripts, their validation, the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cluster.errors import SchedulerUnavailableError, TrainJobError
from cluster.launch import TrainJob, render_pbs, render_sbatch, status, submit
from cubestream.cli import main

CONFIG = Path(__file__).parents[2] / "trainers" / "configs" / "rnn.yaml"


def test_the_sbatch_script_asks_for_a_task_per_gpu_a_signal_and_a_requeue(tmp_path: Path) -> None:
    job = TrainJob(
        config=CONFIG,
        nodes=4,
        gpus_per_node=8,
        time="1-00:00:00",
        partition="gpu",
        account="proj",
        workdir=tmp_path,
        memory="400G",
        extra_args=("--x", "1"),
        env={"NCCL_DEBUG": "WARN"},
        prologue=("module load cuda",),
    )
    script = render_sbatch(job)
    for line in (
        "#SBATCH --nodes=4",
        "#SBATCH --ntasks-per-node=8",
        "#SBATCH --gpus-per-node=8",
        "#SBATCH --signal=SIGUSR1@90",
        "#SBATCH --requeue",
        "#SBATCH --partition=gpu",
        "#SBATCH --account=proj",
        "#SBATCH --time=1-00:00:00",
        "#SBATCH --mem=400G",
        f"#SBATCH --output={tmp_path}/logs/%x-%j.out",
        "module load cuda",
        "export NCCL_DEBUG=WARN",
        "--trainer.num_nodes 4",
        "--trainer.devices 8",
        "--trainer.accelerator gpu",
        f"--trainer.callbacks.dirpath={tmp_path}/checkpoints",
        "--x 1",
        "srun --kill-on-bad-exit=1",
        '"${RESUME[@]}"',
    ):
        assert line in script, line
    assert "@@" not in script
    bash = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert bash.returncode == 0, bash.stderr


def test_a_cpu_job_runs_ddp_over_tasks_per_node(tmp_path: Path) -> None:
    script = render_sbatch(TrainJob(config=CONFIG, nodes=2, tasks_per_node=3, workdir=tmp_path))
    assert "#SBATCH --ntasks-per-node=3" in script and "--gpus-per-node" not in script
    assert "--trainer.accelerator cpu" in script and "--trainer.devices 3" in script


def test_the_pbs_script_runs_torchrun_on_every_node(tmp_path: Path) -> None:
    job = TrainJob(
        config=CONFIG,
        nodes=2,
        gpus_per_node=4,
        memory="200gb",
        partition="gpuq",
        workdir=tmp_path,
        scheduler="pbs",
    )
    script = render_pbs(job)
    for line in (
        "#PBS -l select=2:ncpus=4:mpiprocs=4:ngpus=4:mem=200gb",
        "#PBS -q gpuq",
        "#PBS -r y",
        "-m torch.distributed.run",
        "--nnodes=2 --nproc-per-node=4",
        "pbs_tmrsh",
        "--trainer.num_nodes 2",
        f"CKPT_DIR={tmp_path}/checkpoints",
        "--ckpt_path $CKPT_DIR/last.ckpt",
    ):
        assert line in script, line
    bash = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True)
    assert bash.returncode == 0, bash.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"nodes": 0}, r"field 'nodes' is 0"),
        ({"gpus_per_node": 4, "tasks_per_node": 2}, r"one task per GPU"),
        ({"time": "2 hours"}, r"field 'time' is '2 hours'"),
        ({"job_name": "bash"}, r"field 'job_name'"),
        ({"scheduler": "pbs", "time": "1-00:00:00"}, r"PBS takes HH:MM:SS"),
        ({"env": {"NOT-A-NAME": "1"}}, r"not shell variables"),
    ],
)
def test_a_bad_job_names_its_field(change: dict, message: str) -> None:
    with pytest.raises(TrainJobError, match=message):
        TrainJob(config=CONFIG, **change)


def test_dry_run_prints_the_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "cluster",
        "submit",
        "train",
        "--config",
        str(CONFIG),
        "--nodes",
        "2",
        "--tasks-per-node",
        "1",
        "--workdir",
        str(tmp_path),
        "--dry-run",
        "--",
        "--trainer.max_epochs",
        "3",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("#!/bin/bash") and "--trainer.max_epochs 3" in out
    assert not (tmp_path / "logs").exists(), "a dry run writes nothing"


def test_without_slurm_commands_the_error_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SchedulerUnavailableError, match="`scontrol` is not installed"):
        status("1")
    with pytest.raises(SchedulerUnavailableError, match="`sbatch` is not installed"):
        submit(TrainJob(config=CONFIG, workdir=tmp_path))
    assert main(["cluster", "status", "1"]) == 4  # ExitCode.REMOTE: no scheduler
    assert "cubestream: error: `scontrol` is not installed" in capsys.readouterr().err


def test_an_unreachable_controller_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "scontrol"
    fake.write_text(
        "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller"
        " (connect failure)' >&2\nexit 1\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    with pytest.raises(SchedulerUnavailableError, match="Unable to contact slurm controller"):
        status("7")
