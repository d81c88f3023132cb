"""The deployment tier's own machinery: the ledger that proves nothing is left behind, the throw-away Redis,
and the failure report naming the component whose log to read. The ledger's checks run here against
processes and ports made to be left behind (a ``sleep``, a listening socket), not only at the end of the
tier, where they pass silently when all is well."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.deployment.airflow_deployment import AirflowDeployment, DeploymentSettings
from tests.deployment.diagnostics import where_to_look
from tests.deployment.processes import Ledger, alive, listening, redis_server


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


def test_ledger_names_a_process_left_running_then_kills_it(sleeper: subprocess.Popen[bytes]) -> None:
    ledger = Ledger()
    ledger.add_process(sleeper.pid, "a sleeper")
    assert [f"PID {sleeper.pid} still running: a sleeper: sleep 60"] == ledger.leftovers()
    with pytest.raises(pytest.fail.Exception, match=rf"left these behind \(now killed\):\nPID {sleeper.pid} "):
        ledger.check(timeout=0.2)
    sleeper.wait(timeout=5)  # killed by the check
    assert ledger.leftovers() == []


def test_ledger_finds_an_orphan_by_the_airflow_home_in_its_environment(tmp_path: Path) -> None:
    """A task process whose parents died is no one's descendant; its environment still names the home."""
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path)}
    pid_file = tmp_path / "orphan.pid"
    subprocess.run(["sh", "-c", f"sleep 60 & echo $! > {pid_file}"], env=env, check=True)  # the shell exits
    orphan = psutil.Process(int(pid_file.read_text()))
    try:
        ledger = Ledger(homes={str(tmp_path)})
        assert [f"PID {orphan.pid} still running: a process of the deployment's AIRFLOW_HOME: sleep 60"] == (
            ledger.leftovers()
        )
        with pytest.raises(pytest.fail.Exception):
            ledger.check(timeout=0.2)
        assert not alive(orphan)
    finally:
        if alive(orphan):
            orphan.kill()


def test_ledger_names_a_port_still_listening() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        ledger = Ledger(ports={port: "a test socket"})
        assert ledger.leftovers() == [f"port {port} still listening: a test socket"]
    assert ledger.leftovers() == []


@pytest.mark.services
def test_redis_server_answers_on_a_free_port_and_is_gone_with_its_port_afterwards() -> None:
    import redis

    with redis_server() as server:
        assert redis.Redis(port=server.port).ping()
        process = psutil.Process(server.pid)
        assert process.name() == "redis-server", process.cmdline()
    deadline = time.monotonic() + 5
    while (alive(process) or listening(server.port)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(process) and not listening(server.port)


def test_failure_report_says_which_component_exited_and_to_read_its_log_first(tmp_path: Path) -> None:
    settings = DeploymentSettings(executor="LocalExecutor", metadata_db="sqlite")
    deployment = AirflowDeployment(tmp_path, {}, {}, settings)
    deployment.processes["scheduler"] = exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    deployment.processes["triggerer"] = running = subprocess.Popen(["sleep", "60"])
    try:
        exited.wait(timeout=30)
        lines = where_to_look(deployment, [])
    finally:
        running.kill()
        running.wait()
    log_dir = tmp_path / "component-logs"
    assert f"airflow scheduler (EXITED with 3: read this log first): {log_dir}/scheduler.log" in lines
    assert f"airflow triggerer (running, PID {running.pid}): {log_dir}/triggerer.log" in lines
    assert f"airflow api-server (stopped): {log_dir}/api-server.log" in lines
