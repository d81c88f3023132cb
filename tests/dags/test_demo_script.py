"""``make demo`` (scripts/demo.py) as a user runs it: a separate process, its own local services.

Ctrl-C is a SIGINT to the terminal's foreground process group, so the demo is started in a new
session and interrupted with ``killpg``, like a terminal would. The demo prints the PIDs of the
processes it starts (``services: ... pid N``) so that their end can be checked from outside.
Each test runs the demo in its own directory (``OSSCSE_DEMO_DIR``), never the repository's ``.demo/``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.operators.fixtures import REPO

pytestmark = pytest.mark.services  # the demo starts its own OSS, KMS and OpenBao

DEMO = REPO / "scripts" / "demo.py"
#: Printed by the demo when a task of a DAG run starts.
TASK_STARTED = re.compile(r"^\s+task (\S+) started$")
PIDS = re.compile(r"^\s+services: .*$")
TIMEOUT = 90.0


def _demo_env(demo_dir: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without the suite's Airflow, Vault and demo settings (the demo sets its own)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AIRFLOW", "OSSCSE_", "VAULT_", "BAO_", "PYTEST", "_AIRFLOW"))
    }
    env.update({"OSSCSE_DEMO_DIR": str(demo_dir), "PYTHONUNBUFFERED": "1", **extra})
    return env


class DemoProcess:
    """The demo as a child process in its own session; stdout collected line by line on a thread."""

    def __init__(self, demo_dir: Path, **env: str) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, str(DEMO)],
            cwd=REPO,
            env=_demo_env(demo_dir, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def wait_for_line(self, pattern: re.Pattern[str], timeout: float = TIMEOUT) -> int:
        """Index of the first line matching ``pattern``; fails the test if the demo ends or times out first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index, line in enumerate(self.lines):
                    if pattern.search(line):
                        return index
                if self.process.poll() is not None and not self._reader.is_alive():
                    pytest.fail(f"demo exited {self.process.returncode} before {pattern.pattern!r}:\n{self.output}")
                if time.monotonic() > deadline:
                    pytest.fail(f"no {pattern.pattern!r} within {timeout:.0f} s:\n{self.output}")
                self._changed.wait(0.2)

    def wait(self, timeout: float = TIMEOUT) -> int:
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"demo still running after {timeout:.0f} s:\n{self.output}")
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def service_pids(self) -> list[int]:
        """The PIDs from the demo's ``services:`` line (``... pid N ...``)."""
        line = self.lines[self.wait_for_line(PIDS)]
        pids = [int(p) for p in re.findall(r"pid (\d+)", line)]
        assert pids, line
        return pids


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie has ended; only its parent has not collected it yet
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _assert_ended(pids: list[int], output: str) -> None:
    deadline = time.monotonic() + 10
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if _running(p)], f"demo services still running: {pids}\n{output}"


def test_ctrl_c_during_the_first_dag_stops_the_demo_with_130_ends_its_services_and_verifies_nothing(
    tmp_path: Path,
) -> None:
    demo = DemoProcess(tmp_path / "demo")
    try:
        pids = demo.service_pids()
        assert demo.process.pid not in pids  # the child processes it started, not the demo itself
        started = demo.wait_for_line(TASK_STARTED)
        os.killpg(demo.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        code = demo.wait()
    finally:
        demo.kill()
    after = demo.lines[started:]
    assert code == 130, demo.output
    assert not [line for line in after if "verified" in line], demo.output
    assert not [line for line in after if line.startswith("== ")], demo.output  # no further DAG
    assert any("Interrupted" in line for line in after), demo.output
    _assert_ended(pids, demo.output)


def test_a_failing_dag_is_reported_with_its_failed_task_and_the_demo_exits_1(tmp_path: Path) -> None:
    # A CMK reference naming a Transit mount that does not exist, as a typo in OSSCSE_TRANSIT_CMK (which
    # encrypted_transfer reads for its default CMK) would: the DAG's first task fails at once.
    demo = DemoProcess(tmp_path / "demo", OSSCSE_TRANSIT_CMK="vault-transit://vault_default/no-such-mount/osscse-demo")
    try:
        pids = demo.service_pids()
        code = demo.wait()
    finally:
        demo.kill()
    assert code == 1, demo.output
    assert not [line for line in demo.lines if "verified" in line], demo.output
    failed = [line for line in demo.lines if line.startswith("FAILED")]
    assert failed, demo.output
    assert "encrypted_transfer" in failed[-1], demo.output
    assert "encrypt_and_upload" in failed[-1], demo.output
    assert not [line for line in demo.lines if line.startswith("== compliance_export")], demo.output
    _assert_ended(pids, demo.output)
