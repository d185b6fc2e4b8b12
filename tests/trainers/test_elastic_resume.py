"""`cubestream train fit` resumed from a mid-epoch checkpoint on another number of processes.

DDP over gloo on CPU, run as a user runs it (``python -m cubestream.cli train fit``, Lightning
launching the second process): 2 processes -> 1 and 1 -> 2. Every rank records the samples
of each training batch with its global step (``cluster.testing.SeenSamples``); the batches
trained before the checkpoint and those of the resumed run together hold every training sample
of the epoch exactly once, and the epoch after it is whole on the new number of processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml

from cluster.testing import read_seen
from cubestream.l2.synthetic import write_synthetic_l2

TRAIN = [s for s in range(20) if s % 5 < 3]  # 12 training samples: splits train x3, val, test


def _config(root: Path, store: Path, devices: int, epochs: int) -> Path:
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": devices,
            "strategy": "ddp" if devices > 1 else "auto",
            "max_epochs": epochs,
            "logger": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
            "limit_val_batches": 0,
            "default_root_dir": str(root),
            "callbacks": [
                {"class_path": "cluster.testing.SeenSamples", "init_args": {"out": str(root)}},
                {
                    "class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
                    "init_args": {
                        "dirpath": str(root / "ckpt"),
                        "filename": "{step}",
                        "every_n_train_steps": 2,
                        "save_top_k": -1,
                    },
                },
            ],
        },
        "model": {
            "model": {
                "class_path": "trainers.models.RNN",
                "init_args": {"hidden": 8, "weather_hidden": 8},
            },
            "train_pixels": 64,
            "scheduler": "constant",
        },
        "data": {"store": str(store), "batch_size": 1, "num_workers": 0},
    }
    path = root / "config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config))
    return path


def _fit(*args: str) -> None:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "cubestream.cli", "train", "fit", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize(("saved", "resumed"), [(2, 1), (1, 2)])
def test_fit_resumes_mid_epoch_on_another_number_of_processes(
    tmp_path: Path, saved: int, resumed: int
) -> None:
    store = write_synthetic_l2(tmp_path / "l2.zarr", samples=20, size=32)
    first, second = tmp_path / "first", tmp_path / "second"
    _fit("--config", str(_config(first, store, saved, 1)))
    checkpoint = first / "ckpt" / "step=2.ckpt"
    _fit("--config", str(_config(second, store, resumed, 2)), "--ckpt_path", str(checkpoint))

    before = read_seen(first)
    after = read_seen(second)
    assert sorted(before) == list(range(saved)) and sorted(after) == list(range(resumed))
    assert {r["world_size"] for rank in after.values() for r in rank} == {resumed}
    kept = [r for rank in before.values() for r in rank if r["step"] < 2]  # in the checkpoint
    rest = [r for rank in after.values() for r in rank if r["epoch"] == 0]
    epoch0 = Counter(s for r in kept + rest for s in r["samples"])
    assert epoch0 == Counter(TRAIN), "epoch 0: lost or repeated samples"
    assert min(r["step"] for r in rest) == 2  # resumed, not restarted
    epoch1 = [s for rank in after.values() for r in rank if r["epoch"] == 1 for s in r["samples"]]
    assert sorted(epoch1) == TRAIN  # the next epoch, whole on the new number of processes
