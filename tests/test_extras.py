"""Optional features fail naming their extra; the production commands need none of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cubestream._extras import EXTRAS, require_extra
from cubestream.cli import main
from cubestream.errors import CubestreamError, MissingExtraError

ROOT = Path(__file__).resolve().parents[1]
EXTRA_MODULES = (
    "torch", "torchvision", "torchdata", "pytorch_lightning", "lightning", "timm", "deepspeed",
    "tensorboard", "moto", "rustac", "dask_jobqueue",
)  # fmt: skip


def test_a_missing_module_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(MissingExtraError) as caught:
        require_extra("cluster", "a SLURM cluster", "json", "dask_jobqueue")
    message = str(caught.value)
    assert message.startswith("a SLURM cluster needs 'dask_jobqueue', which is not installed")
    assert "[cluster] extra (`pip install 'cubestream[cluster]'`)" in message
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, CubestreamError)
    assert set(EXTRAS) == {"replica", "train", "cluster"}
    with pytest.raises(ValueError, match="no extra 'gpu'"):
        require_extra("gpu", "x", "json")


def test_a_broken_install_is_not_mistaken_for_a_missing_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "halfinstalled").mkdir()
    (tmp_path / "halfinstalled" / "__init__.py").write_text("import not_there_at_all\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as caught:
        require_extra("train", "x", "halfinstalled")
    assert caught.value.name == "not_there_at_all"
    assert not isinstance(caught.value, MissingExtraError)


def test_serving_a_replica_without_moto_names_the_replica_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)
    assert main(["replica", "serve", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert "`cubestream replica serve`) needs 'moto'" in err and "cubestream[replica]" in err


def test_a_batch_cluster_without_dask_jobqueue_names_the_cluster_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cluster.dask import jobqueue_cluster
    from cluster.profiles import load_profile

    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    profile = load_profile("pbs-cpu")
    missing = pytest.raises(MissingExtraError, match=r"profile 'pbs-cpu'.*cubestream\[cluster\]")
    with missing, jobqueue_cluster(profile):
        pass


def test_the_loader_and_the_trainers_without_torchdata_name_the_train_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [
        m for m in sys.modules if m.split(".")[0] == "trainers" or "cubestream.stream" in m
    ]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "torchdata", None)
    with pytest.raises(MissingExtraError, match=r"streaming loader.*cubestream\[train\]"):
        import cubestream.stream  # noqa: F401
    with pytest.raises(MissingExtraError, match=r"the trainers needs 'torchdata'.*\[train\]"):
        import trainers  # noqa: F401


def test_the_production_commands_need_no_extra() -> None:
    """Every production command's parser and stage modules load with every extra blocked."""
    code = f"""
import sys
for name in {EXTRA_MODULES!r}:
    sys.modules[name] = None
from cubestream.cli import main
import cubestream.sample, cubestream.l1.build, cubestream.l2.build, cubestream.inspect
import cluster.pipeline, cluster.dask, cluster.launch
for command in ("sample", "stac", "l1", "l2", "inspect", "run", "cluster"):
    try:
        main([command, "--help"])
    except SystemExit as exc:
        assert exc.code == 0, (command, exc.code)
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
