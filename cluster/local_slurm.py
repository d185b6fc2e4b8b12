"""A real SLURM on this machine: munge, slurmctld and two slurmd emulating two nodes on loopback.

Tests and the demo use it as the replica of a production cluster. Debian's packages (``munge``,
``slurmctld``, ``slurmd``, ``slurm-client``; SLURM 22.05 on bookworm) are installed with apt-get
when missing (as root). Everything else lives in one directory: the munge key and socket
(``AuthInfo=socket=...``), ``slurm.conf``, the controller's state, one spool directory per node
(``SlurmdSpoolDir=.../%n``), pid and log files. No system file is touched.

Two nodes on one host: Debian's SLURM is not built with ``--enable-multiple-slurmd``, so the nodes
are told apart the way such a build allows: each node has its own ``NodeHostname`` (``node1``,
``node2``) and ``Port``, and ``NodeAddr=127.0.0.1``; ``slurmd -N nodeX`` runs as that node. SLURM
reaches every node through its NodeAddr, so no ``/etc/hosts`` edit is needed; jobs find the
address of their first node with ``scontrol show node`` (see the training script).
Each node has 1 CPU (a 2-core machine runs 2 nodes x 1 task) and a small ``RealMemory``.

From the shell: ``cubestream cluster local-slurm start|status|stop --dir DIR``, then
``export SLURM_CONF=DIR/slurm.conf``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cluster import _scheduler
from cluster.errors import LocalSlurmError

__all__ = ["PACKAGES", "LocalSlurm", "ensure_installed"]

PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
"""Debian packages of the local SLURM."""
_COMMANDS = {"munged": "munge", "slurmctld": "slurmctld", "slurmd": "slurmd", "sbatch": "sbatch"}
_MARKER = "local-slurm.json"

_CONF = """\
# The local SLURM of cubestream (cluster/local_slurm.py): {nodes} nodes on loopback.
ClusterName=cubestream
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={dir}/munge/munge.socket
CredType=cred/munge
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool/%n
SlurmctldPidFile={dir}/run/slurmctld.pid
SlurmdPidFile={dir}/run/slurmd-%n.pid
SlurmctldLogFile={dir}/log/slurmctld.log
SlurmdLogFile={dir}/log/slurmd-%n.log
TmpFS={dir}/tmp
# No cgroups in a container: track processes by their parents, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
# Nodes come back by themselves; jobs can be requeued; finished jobs stay known for a day
# (there is no slurmdbd, so `scontrol show job` is where their final state is read).
ReturnToService=2
JobRequeue=1
MinJobAge=86400
KillWait=5
SlurmdTimeout=30
{node_lines}
PartitionName=debug Nodes={node_range} Default=YES MaxTime=INFINITE State=UP
"""


def ensure_installed() -> None:
    """Install Debian's munge and SLURM packages with apt-get when a command is missing.

    Raises
    ------
    LocalSlurmError
        They are missing and cannot be installed (not root, no apt-get, apt-get failed).
    """
    missing = [cmd for cmd in _COMMANDS if shutil.which(cmd) is None]
    if not missing:
        return
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y " + " ".join(PACKAGES)
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise LocalSlurmError(
            f"the local SLURM needs {missing}, which are not installed, and this process cannot "
            f"install them (needs root and apt-get): run `{install}` as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *PACKAGES]):
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
        if done.returncode != 0:
            output = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
            raise LocalSlurmError(
                f"`{' '.join(command)}` failed (exit {done.returncode}) while installing the "
                f"local SLURM:\n{output}"
            )
    still = [cmd for cmd in _COMMANDS if shutil.which(cmd) is None]
    if still:
        raise LocalSlurmError(f"apt-get installed {list(PACKAGES)} but {still} are still missing")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class LocalSlurm:
    """munge, slurmctld and ``nodes`` slurmd on loopback, all state in one directory.

    Parameters
    ----------
    directory : str or Path, optional
        Where the configuration, state and logs go; a new temporary directory by default
        (removed by :meth:`stop`).
    nodes : int
        Emulated nodes (``node1``...).
    cpus_per_node, memory_mb : int
        What each node offers (``CPUs``, ``RealMemory``).
    timeout_s : float
        How long :meth:`start` waits for every node to be idle.
    install : bool
        Install the Debian packages when missing (:func:`ensure_installed`).

    Examples
    --------
    >>> with LocalSlurm() as slurm:  # doctest: +SKIP
    ...     subprocess.run(["sinfo"], env={**os.environ, **slurm.env})
    """

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        nodes: int = 2,
        cpus_per_node: int = 1,
        memory_mb: int = 4096,
        timeout_s: float = 60.0,
        install: bool = True,
    ) -> None:
        if nodes < 1 or cpus_per_node < 1 or memory_mb < 256:
            raise LocalSlurmError(
                f"nodes ({nodes}), cpus_per_node ({cpus_per_node}) must be at least 1 and "
                f"memory_mb ({memory_mb}) at least 256"
            )
        self._temporary = directory is None
        self.dir = Path(directory or tempfile.mkdtemp(prefix="cubestream-slurm-")).absolute()
        self.nodes = nodes
        self.cpus_per_node = cpus_per_node
        self.memory_mb = memory_mb
        self.timeout_s = timeout_s
        self.install = install
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def conf(self) -> Path:
        """The ``slurm.conf`` of this SLURM."""
        return self.dir / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """What the SLURM commands need in their environment (``SLURM_CONF``)."""
        return {"SLURM_CONF": str(self.conf)}

    @property
    def node_names(self) -> list[str]:
        """The emulated nodes."""
        return [f"node{i}" for i in range(1, self.nodes + 1)]

    def __enter__(self) -> LocalSlurm:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LocalSlurm:
        """Write the configuration, start munged, slurmctld and every slurmd, wait until idle."""
        if self.install:
            ensure_installed()
        if (self.dir / _MARKER).exists() and self._running():
            raise LocalSlurmError(
                f"a local SLURM already runs from {self.dir}; stop it first "
                f"(`cubestream cluster local-slurm stop --dir {self.dir}`)"
            )
        self._write_files()
        try:
            self._launch("munged", self._munged_command())
            self._wait_for(self.dir / "munge" / "munge.socket", "munged")
            self._launch("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            self._wait_for_controller()
            for node in self.node_names:
                self._launch(f"slurmd-{node}", ["slurmd", "-D", "-N", node, "-f", str(self.conf)])
            self._wait_until_idle()
        except BaseException:
            self.stop()
            raise
        return self

    def _write_files(self) -> None:
        spools = [f"spool/{n}" for n in self.node_names]
        for sub in ("munge", "state", "run", "log", "tmp", *spools):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "munge").chmod(0o711)
        key = self.dir / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        ports = [_free_port() for _ in range(self.nodes + 1)]
        node_lines = "\n".join(
            f"NodeName={name} NodeHostname={name} NodeAddr=127.0.0.1 Port={port} "
            f"CPUs={self.cpus_per_node} RealMemory={self.memory_mb} State=UNKNOWN"
            for name, port in zip(self.node_names, ports[1:], strict=True)
        )
        self.conf.write_text(
            _CONF.format(
                nodes=self.nodes,
                dir=self.dir,
                ctld_port=ports[0],
                node_lines=node_lines,
                node_range=f"node[1-{self.nodes}]" if self.nodes > 1 else "node1",
            )
        )
        self._save_marker()

    def _munged_command(self) -> list[str]:
        munge = self.dir / "munge"
        return [
            "munged", "--foreground", "--force",
            f"--socket={munge / 'munge.socket'}",
            f"--key-file={munge / 'munge.key'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'munged.seed'}",
            f"--log-file={self.dir / 'log' / 'munged.log'}",
        ]  # fmt: skip

    def _launch(self, name: str, command: list[str]) -> None:
        out = (self.dir / "log" / f"{name}.out").open("ab")
        env = {**os.environ, **self.env}
        self._processes[name] = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        out.close()
        self._save_marker()

    def _save_marker(self) -> None:
        pids = {name: p.pid for name, p in self._processes.items()}
        record = {"conf": str(self.conf), "pids": pids}
        (self.dir / _MARKER).write_text(json.dumps(record, indent=1))

    def _check_alive(self) -> None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                raise LocalSlurmError(
                    f"{name} of the local SLURM exited with status {process.returncode}:\n"
                    f"{self.log_tail()}"
                )

    def _wait_for(self, path: Path, name: str) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not path.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise LocalSlurmError(f"{name} did not create {path}:\n{self.log_tail()}")
            time.sleep(0.1)

    def _wait_for_controller(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while True:
            self._check_alive()
            try:
                self._slurm(["scontrol", "ping"])
                return
            except (subprocess.CalledProcessError, LocalSlurmError):
                if time.monotonic() > deadline:
                    raise LocalSlurmError(
                        f"slurmctld does not answer after {self.timeout_s:.0f} s:\n"
                        f"{self.log_tail()}"
                    ) from None
            time.sleep(0.3)

    def _wait_until_idle(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        states: dict[str, str] = {}
        while True:
            self._check_alive()
            states = self.node_states()
            if states and all(s.startswith("idle") for s in states.values()):
                return
            if time.monotonic() > deadline:
                raise LocalSlurmError(
                    f"the nodes of the local SLURM are not idle after {self.timeout_s:.0f} s "
                    f"({states}):\n{self.log_tail()}"
                )
            time.sleep(0.3)

    def _slurm(self, command: list[str], timeout_s: float = 15.0) -> str:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            timeout=timeout_s,
        )
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, command, done.stdout, done.stderr)
        return done.stdout

    def node_states(self) -> dict[str, str]:
        """``{node: state}`` as ``sinfo`` reports them (``idle``, ``alloc``, ``down*``...)."""
        try:
            out = self._slurm(["sinfo", "-h", "-N", "-o", "%N %t"])
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            return {}
        return dict(line.split(None, 1) for line in out.splitlines() if line.strip())

    def status(self) -> str:
        """A summary: the directory, the daemons alive, and ``sinfo``."""
        pids = self._recorded_pids()
        alive = {name: _alive(pid) for name, pid in pids.items()}
        lines = [f"local SLURM in {self.dir}", f"export SLURM_CONF={self.conf}"]
        lines += [f"{name}: {'running' if up else 'not running'}" for name, up in alive.items()]
        lines += [f"{node}: {state}" for node, state in self.node_states().items()]
        return "\n".join(lines)

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of every daemon's log."""
        parts = []
        for path in sorted((self.dir / "log").glob("*")):
            parts.append(f"--- {path} ---\n{_scheduler.tail(path, lines)}")
        return "\n".join(parts) or f"(no logs in {self.dir / 'log'})"

    def _recorded_pids(self) -> dict[str, int]:
        if self._processes:
            return {name: p.pid for name, p in self._processes.items()}
        try:
            record: dict[str, Any] = json.loads((self.dir / _MARKER).read_text())
        except (OSError, ValueError):
            return {}
        return {str(k): int(v) for k, v in record.get("pids", {}).items()}

    def _running(self) -> bool:
        return any(_alive(pid) for pid in self._recorded_pids().values())

    def stop(self) -> None:
        """Cancel every job, stop the daemons, remove the directory (if it holds a local SLURM)."""
        pids = self._recorded_pids()
        if pids.get("slurmctld") and _alive(pids["slurmctld"]):
            self._cancel_jobs()
        order = [n for n in pids if n.startswith("slurmd")] + ["slurmctld", "munged"]
        for name in order:
            pid = pids.get(name)
            if pid and _alive(pid) and str(self.dir) in _cmdline(pid):
                self._terminate(name, pid)
        self._processes.clear()
        if (self.dir / _MARKER).exists() or self._temporary:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _cancel_jobs(self) -> None:
        try:
            jobs = self._slurm(["squeue", "-h", "-o", "%i"]).split()
            if jobs:
                self._slurm(["scancel", *jobs])
            deadline = time.monotonic() + 20
            while self._slurm(["squeue", "-h", "-o", "%i"]).split():
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
            pass  # the daemons go anyway

    def _terminate(self, name: str, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)
        process = self._processes.get(name)
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                break
            time.sleep(0.1)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        if process is not None:
            process.wait(timeout=10)
