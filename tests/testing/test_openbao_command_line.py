"""``python -m airflow_provider_osscse.testing.openbao``: a dev OpenBao for a shell, like the OSS and KMS
servers' command lines. It prints the exports that point ``bao``, hvac and Airflow at the server,
stays in the foreground, and stops the server on Ctrl-C."""

from __future__ import annotations

import json
import os
import select
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import hvac
import pytest

from airflow_provider_osscse.testing.openbao import OpenBaoServer

pytestmark = pytest.mark.services  # starts OpenBao through its command line

LAUNCHER = [sys.executable, "-m", "airflow_provider_osscse.testing.openbao"]


def _start(*args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    return subprocess.Popen([*LAUNCHER, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env)


def _exports(process: subprocess.Popen[bytes], timeout: float = 30) -> list[str]:
    """What the launcher prints on stdout once the server is healthy: all of it, until it has been
    quiet for half a second (read from the pipe itself, so no buffer hides a line from select)."""
    assert process.stdout is not None
    fd, data = process.stdout.fileno(), b""
    while select.select([fd], [], [], 0.5 if data else timeout)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    assert data, f"the launcher printed nothing within {timeout:.0f} s"
    return data.decode().splitlines(keepends=True)


def _healthy(address: str) -> bool:
    try:
        with urllib.request.urlopen(f"{address}/v1/sys/health", timeout=2) as response:  # loopback
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def test_prints_the_exports_for_bao_hvac_and_airflow_and_stops_the_server_on_ctrl_c() -> None:
    process = _start("--conn-id", "vault_default")
    try:
        lines = _exports(process)
        assert [line.split("=", 1)[0] for line in lines] == [
            "export VAULT_ADDR",
            "export VAULT_TOKEN",
            "export AIRFLOW_CONN_VAULT_DEFAULT",
        ], lines
        # What a shell gets from pasting them: bao itself (the CLI the docs use) talks to the server.
        shell = subprocess.run(
            ["bash", "-c", "".join(lines) + 'bao token lookup >/dev/null && echo "$VAULT_ADDR" && echo "$VAULT_TOKEN"'],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")},
        )
        address, token = shell.stdout.split()
        assert address.startswith("http://127.0.0.1:") and token.startswith("osscse-dev-")
        assert hvac.Client(url=address, token=token).is_authenticated()
        connection = json.loads(shlex.split(lines[2].removeprefix("export "))[0].split("=", 1)[1])
        assert connection["conn_type"] == "vault" and connection["password"] == token
        assert f"http://{connection['host']}:{connection['port']}" == address
        assert process.poll() is None, "the launcher must stay in the foreground"
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        _, stderr_bytes = process.communicate(timeout=20)
    stderr = stderr_bytes.decode()
    assert process.returncode == 0, stderr
    assert "Ctrl-C" in stderr and token not in stderr  # the hint goes to stderr; the token only to stdout
    deadline = time.monotonic() + 5
    while _healthy(address) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _healthy(address), "OpenBao still answers after the launcher stopped"


def test_a_busy_port_exits_1_with_one_line_and_prints_no_exports(osscse_openbao: OpenBaoServer) -> None:
    busy_port = osscse_openbao.address.rsplit(":", 1)[1]
    process = _start("--port", busy_port, "--root-token", "osscse-dev-fixed-token")
    stdout, stderr_bytes = process.communicate(timeout=30)
    stderr = stderr_bytes.decode()
    assert process.returncode == 1
    assert stdout == b""
    assert stderr.startswith(f"error: cannot listen on 127.0.0.1:{busy_port}: ")
    assert len(stderr.strip().splitlines()) == 1
