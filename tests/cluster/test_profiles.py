"""Cluster profiles: the shipped ones load, bad fields are named, dask-jobqueue gets them right."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.dask import profile_client
from cluster.errors import ClusterProfileError, ClusterProfileNotFoundError
from cluster.profiles import ClusterProfile, load_profile, shipped_profiles
from cubestream._dask import dask_client


def test_every_shipped_profile_loads() -> None:
    names = shipped_profiles()
    assert {"local", "slurm-cpu", "pbs-cpu", "local-slurm", "hpc-example"} <= set(names)
    for name in names:
        profile = load_profile(name)
        assert profile.name == name and profile.jobs >= 1
    hpc = load_profile("hpc-example")
    assert hpc.kind == "slurm" and hpc.workers == 16 * 6 and hpc.threads_per_worker == 8
    assert hpc.worker_args()[-4:] == ["--lifetime", "700m", "--lifetime-stagger", "10m"]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: slurm\ncores: 0\n", r"field 'cores' is 0; it must be a whole number"),
        ("kind: slurm\nmemory: lots\n", r"field 'memory' is 'lots'; write a size"),
        ("kind: slurm\nwalltime: 2h\n", r"field 'walltime' is '2h'; write it as \[D-\]HH:MM:SS"),
        ("kind: pbs\nwalltime: 1-00:00:00\n", r"PBS takes HH:MM:SS"),
        ("kind: sge\n", r"field 'kind' is 'sge'; use one of"),
        ("cores: 2\n", r"field 'kind' is missing"),
        ("kind: slurm\ncors: 2\n", r"unknown fields \['cors'\]"),
        ("kind: slurm\nprocesses: 4\ncores: 2\n", r"'processes' \(4\) exceeds cores \(2\)"),
        ("kind: slurm\njob-extra-directives: --exclusive\n", r"must be a list of strings"),
        (
            "kind: slurm\nwalltime: '01:00:00'\nlifetime: 2h\n",
            r"'lifetime' plus its stagger \(7200 s\) is not below the walltime",
        ),
        ("- a\n- b\n", r"must be a YAML mapping"),
    ],
)
def test_a_bad_profile_names_its_field(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ClusterProfileError, match=message):
        load_profile(_write(tmp_path, text))


def test_an_unknown_profile_lists_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(
        ClusterProfileNotFoundError, match=r"no cluster profile named 'nope'.*local"
    ):
        load_profile("nope")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_profile(tmp_path / "missing.yaml")


def test_dask_jobqueue_renders_the_profiles_settings(tmp_path: Path) -> None:
    from dask_jobqueue.pbs import PBSJob
    from dask_jobqueue.slurm import SLURMJob

    text = (
        "kind: slurm\njobs: 3\ncores: 8\nmemory: 32GB\nprocesses: 2\nwalltime: '02:00:00'\n"
        "queue: cpu\naccount: proj\njob-extra-directives: ['--exclusive']\n"
        "job-script-prologue: ['module load gdal']\nlifetime: 110m\nlifetime-stagger: 5m\n"
    )
    profile = load_profile(_write(tmp_path, text))
    script = SLURMJob(scheduler="tcp://127.0.0.1:8786", name="w", **profile.jobqueue_kwargs())
    text = script.job_script()
    for line in (
        "#SBATCH -p cpu",
        "#SBATCH -A proj",
        "#SBATCH --cpus-per-task=8",
        "#SBATCH -t 02:00:00",
        "#SBATCH --exclusive",
        "module load gdal",
        "--nworkers 2",
        "--nthreads 4",
        "--lifetime 110m",
        "--lifetime-stagger 5m",
    ):
        assert line in text, line
    pbs = ClusterProfile.from_dict({**profile.to_dict(), "kind": "pbs", "name": "p"})
    text = PBSJob(scheduler="tcp://127.0.0.1:8786", name="w", **pbs.jobqueue_kwargs()).job_script()
    assert "#PBS -q cpu" in text and "#PBS -l walltime=02:00:00" in text and "ncpus=8" in text


def test_a_local_profile_gives_a_local_cluster_of_its_size(tmp_path: Path) -> None:
    path = _write(tmp_path, "kind: local\njobs: 2\ncores: 2\nprocesses: 1\nmemory: 1GB\n")
    profile = load_profile(path)
    with profile_client(profile) as client:
        workers = client.scheduler_info()["workers"].values()
        assert [w["nthreads"] for w in workers] == [2, 2]
        assert {w["memory_limit"] for w in workers} == {10**9}
    with dask_client(cluster=str(path)) as client:
        assert len(client.scheduler_info()["workers"]) == 2
    with (
        pytest.raises(ClusterProfileError, match="not both"),
        dask_client("tcp://x:1", cluster="local"),
    ):
        pass
