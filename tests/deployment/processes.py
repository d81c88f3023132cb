"""Processes of the deployment tier, started and ended by PID: a throw-away Redis, and the ledger that proves
nothing is left behind.

The tier starts many processes on loopback (PostgreSQL, Redis, six Airflow components, the task
processes those fork) and binds many free ports. Stopping them is the fixtures' job; :class:`Ledger`
is the proof that they did: at the end of the tier every PID it was given, every descendant seen when
a component was stopped and every process whose environment names the deployment's ``AIRFLOW_HOME``
(a task process re-parented after its supervisor died is still found) must be gone, and nothing may
listen on the ports it was given any more. What it finds it names, and then kills, so that one
failed check does not leave processes running on a shared machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

#: What signalling a process that has already exited raises.
GONE = (ProcessLookupError, psutil.NoSuchProcess)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    """Whether something accepts connections on ``127.0.0.1:port``."""
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def alive(process: psutil.Process) -> bool:
    """Running (a zombie is gone: it holds no resource but its PID until its parent reaps it).

    ``is_running`` compares the start time too, so a PID reused by an unrelated process is not "alive".
    """
    try:
        return bool(process.is_running() and process.status() != psutil.STATUS_ZOMBIE)
    except GONE:
        return False


def terminate_tree(pid: int, grace: float = 5, group: bool = False) -> int:
    """:func:`terminate_trees` of one process."""
    return terminate_trees([pid], grace, group)


def terminate_trees(pids: Iterable[int], grace: float = 5, group: bool = False) -> int:
    """End each process and every descendant; return how many needed a SIGKILL.

    SIGTERM to each process first, alone: a component ends its own children in order (the scheduler its
    executor, a Celery worker its pool, the triggerer its trigger runner). Signalled together with all their
    children, the scheduler, the triggerer and both Celery workers outlived a 5-second grace (seen: SIGKILL
    for each); signalled alone, none did. After ``grace``, SIGTERM to what remains of the descendants (and
    each one's process group if ``group``), and after one more second SIGKILL. Descendants are collected first, by PID:
    Airflow's task supervisor puts each task in a process group of its own, and a child whose parent has
    exited is no longer anyone's descendant.
    """
    roots: dict[int, psutil.Process] = {}
    targets: dict[int, psutil.Process] = {}
    for pid in pids:
        with contextlib.suppress(*GONE):
            roots[pid] = root = psutil.Process(pid)
            targets.update({p.pid: p for p in (root, *root.children(recursive=True))})
    for root in roots.values():
        with contextlib.suppress(*GONE):
            targets.update({p.pid: p for p in root.children(recursive=True)})  # started meanwhile
            root.terminate()
    psutil.wait_procs(list(roots.values()), timeout=grace)
    for pid in roots if group else ():
        with contextlib.suppress(*GONE, PermissionError):
            os.killpg(pid, signal.SIGTERM)  # start_new_session: the group id is the leader's PID
    for target in targets.values():
        with contextlib.suppress(*GONE):
            target.terminate()
    _, remaining = psutil.wait_procs(list(targets.values()), timeout=1)
    for pid in roots if group else ():
        with contextlib.suppress(*GONE, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    for target in remaining:
        with contextlib.suppress(*GONE):
            target.kill()
    psutil.wait_procs(remaining, timeout=5)
    return len(remaining)


@dataclass
class Ledger:
    """Every PID and port the tier started or bound, checked at its end (see the module docstring)."""

    processes: dict[int, tuple[psutil.Process, str]] = field(default_factory=dict)
    ports: dict[int, str] = field(default_factory=dict)
    #: ``AIRFLOW_HOME`` values: a process with one of them in its environment belongs to the tier.
    homes: set[str] = field(default_factory=set)

    def add_process(self, pid: int, what: str, with_descendants: bool = True) -> None:
        with contextlib.suppress(*GONE):
            process = psutil.Process(pid)
            self.processes.setdefault(pid, (process, what))
            if with_descendants:
                for child in process.children(recursive=True):
                    self.processes.setdefault(child.pid, (child, f"{what} (descendant)"))

    def add_port(self, port: int, what: str) -> None:
        self.ports[port] = what

    def _by_environment(self) -> Iterator[psutil.Process]:
        if not self.homes:
            return
        for process in psutil.process_iter():
            with contextlib.suppress(*GONE, psutil.AccessDenied):
                if process.pid != os.getpid() and process.environ().get("AIRFLOW_HOME") in self.homes:
                    yield process

    def leftovers(self) -> list[str]:
        """What is still running or listening, one line each; empty when the tier cleaned up."""
        found: dict[int, str] = {}
        for process, what in self.processes.values():
            if alive(process):
                found[process.pid] = what
        for process in self._by_environment():
            if alive(process):
                found.setdefault(process.pid, "a process of the deployment's AIRFLOW_HOME")
        lines = []
        for pid, what in sorted(found.items()):
            with contextlib.suppress(*GONE):
                lines.append(f"PID {pid} still running: {what}: {' '.join(psutil.Process(pid).cmdline())[:200]}")
        lines += [
            f"port {port} still listening: {what}" for port, what in sorted(self.ports.items()) if listening(port)
        ]
        return lines

    def check(self, timeout: float = 10) -> None:
        """Fail, naming them, if processes or ports are left (after up to ``timeout`` s of exiting); kill them."""
        deadline = time.monotonic() + timeout
        while (problems := self.leftovers()) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not problems:
            return
        for process, _ in self.processes.values():
            if alive(process):
                terminate_tree(process.pid, grace=2)
        for process in self._by_environment():
            terminate_tree(process.pid, grace=2)
        pytest.fail("the deployment tier left these behind (now killed):\n" + "\n".join(problems), pytrace=False)


@dataclass(frozen=True)
class RedisServer:
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        message = "Redis (redis-server) is not installed (make test runs scripts/ensure-redis.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a skipped deployment tier would hide a broken install step
        pytest.skip(message)
    return found


@contextlib.contextmanager
def redis_server(ready_timeout: float = 20) -> Iterator[RedisServer]:
    """A throw-away ``redis-server`` on a free loopback port, no persistence, in a temp dir; stopped by PID."""
    binary = _redis_binary()
    root = Path(tempfile.mkdtemp(prefix="osscse-redis-"))
    port = free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(root), "--save", "", "--appendonly", "no"]
    with (root / "redis.log").open("wb") as log:
        process = subprocess.Popen(
            [binary, *options, "--daemonize", "no", "--logfile", ""],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + ready_timeout
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                text = (root / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server did not listen on {port} (exit {process.poll()}):\n{text[-2000:]}")
            time.sleep(0.05)
        yield RedisServer(port, process.pid)
    finally:
        terminate_tree(process.pid)
        process.wait(timeout=5)
        shutil.rmtree(root, ignore_errors=True)
