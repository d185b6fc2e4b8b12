"""make gpu-check on a machine without CUDA: the dry run plans and imports every step; the real
run says there is no CUDA device and exits 3 without running anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks import gpu_check


def test_the_dry_run_plans_every_step_and_imports_their_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "check.json"
    status = gpu_check.main(["--dry-run", "--out", str(out), "--workdir", str(tmp_path)])
    record = json.loads(out.read_text())
    assert status == 0, record["import_failures"]
    names = [step["name"] for step in record["steps"]]
    assert names == list(gpu_check.STEPS)
    expected = ["fit_rnn", "fit_context_rnn", "ddp_nccl", "zero1", "zero2", "zero3"]
    assert all(name in names for name in (*expected, "pinned_loader", "bench", "gpu_tests"))
    assert {step["status"] for step in record["steps"]} == {"planned"}
    assert record["dry_run"] is True and record["import_failures"] == []
    assert record["cuda"] is torch.cuda.is_available()
    assert "11 steps planned" in capsys.readouterr().out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_nothing_runs_and_the_exit_status_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "check.json"
    status = gpu_check.main(["--out", str(out), "--workdir", str(tmp_path)])
    assert status == gpu_check.EXIT_NO_CUDA == 3
    record = json.loads(out.read_text())
    assert record["cuda"] is False and record["passed"] is False
    assert "no CUDA device" in record["cuda_reason"]
    assert "no CUDA device" in capsys.readouterr().out
    assert not (tmp_path / "l2.zarr").exists()  # nothing was run


def test_steps_to_skip_must_exist() -> None:
    assert gpu_check.plan(["bench", "gpu_tests"])[-1] == "pinned_loader"
    with pytest.raises(ValueError, match="unknown steps"):
        gpu_check.plan(["nope"])
