"""Rendering of batch job scripts: the template language and the values every scheduler shares."""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cluster.launch import TrainJob

__all__ = ["TEMPLATES", "common_values", "render", "shell_lines"]

TEMPLATES = Path(__file__).with_name("templates")


class _Script(Template):
    delimiter = "@@"


def common_values(job: TrainJob, prefix: str) -> dict[str, str]:
    """The template values of ``job`` every scheduler's script has (``prefix``: ``#SBATCH``)."""
    exports = [f"export {k}={shlex.quote(str(v))}" for k, v in job.env.items()]
    return {
        "job_name": job.job_name,
        "nodes": str(job.nodes),
        "tasks_per_node": str(job.tasks),
        "cpus_per_task": str(job.cpus_per_task),
        "time": job.time,
        "log_dir": str(job.log_dir),
        "directives": "\n".join(f"{prefix} {d}" for d in job.extra_directives),
        "prologue": "\n".join(job.prologue),
        "env": "\n".join(exports),
        "root_dir": shlex.quote(str(job.workdir.absolute())),
        "ckpt_dir": shlex.quote(str(job.ckpt_dir)),
        "submit_dir": shlex.quote(str(Path.cwd())),
    }


def shell_lines(command: list[str]) -> str:
    """A shell command, one option (with its value) per continued line."""
    lines: list[list[str]] = [[]]
    for arg in command:
        if arg.startswith("--") and lines[-1]:
            lines.append([])
        lines[-1].append(shlex.quote(arg))
    return " \\\n    ".join(" ".join(line) for line in lines)


def render(name: str, values: Mapping[str, str]) -> str:
    """The template ``templates/<name>`` filled with ``values``."""
    text = _Script((TEMPLATES / name).read_text()).substitute(values)
    return re.sub(r"\n{3,}", "\n\n", text)
