"""The plugin's local services take random credentials every session, never fixed published strings.

Observed before: the OSS and KMS servers always accepted ``LTAI-local-test-key`` /
``local-oss-secret-for-tests`` (and the KMS pair alike), so any local process could use a test
session's services on loopback with secrets printed in the source.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_provider_osscse.testing import pytest_plugin
from airflow_provider_osscse.testing.openbao import OpenBaoServer

#: The fixed values earlier versions used.
FORMER_FIXED = {"LTAI-local-test-key", "local-oss-secret-for-tests", "LTAI-local-kms-key", "local-kms-secret-for-tests"}

INNER_TEST = """
import json, os

def test_report(osscse_oss_server, osscse_kms_server):
    with open(os.environ["OSSCSE_REPORT"], "w") as out:
        json.dump([osscse_oss_server.access_key_id, osscse_oss_server.access_key_secret,
                   osscse_kms_server.access_key_id, osscse_kms_server.access_key_secret], out)
"""


def _one_session(folder: Path) -> list[str]:
    """Run a tiny pytest session of its own (the plugin loads through its entry point)."""
    folder.mkdir()
    (folder / "test_inner.py").write_text(INNER_TEST)
    report = folder / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(folder), str(folder)],
        cwd=folder,
        env={**_env(), "OSSCSE_REPORT": str(report)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(report.read_text())


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def test_every_session_gets_its_own_random_oss_and_kms_credentials(tmp_path: Path) -> None:
    first, second = _one_session(tmp_path / "a"), _one_session(tmp_path / "b")
    assert not set(first) & FORMER_FIXED and not set(second) & FORMER_FIXED
    assert all(a != b for a, b in zip(first, second, strict=True)), "a credential repeated across sessions"
    oss_id, oss_secret, kms_id, kms_secret = first
    assert oss_id != kms_id and oss_secret != kms_secret
    assert oss_id.startswith("LTAI") and len(oss_secret) >= 30


def test_this_sessions_services_and_connections_use_the_random_credentials(
    osscse_airflow_connections: dict[str, str],
    osscse_oss_server: Any,
    osscse_kms_server: Any,
    osscse_openbao: Any,
) -> None:
    secrets_in_use = {
        osscse_oss_server.access_key_id,
        osscse_oss_server.access_key_secret,
        osscse_kms_server.access_key_id,
        osscse_kms_server.access_key_secret,
    }
    assert not secrets_in_use & FORMER_FIXED and len(secrets_in_use) == 4
    assert len(osscse_openbao.root_token) >= 32
    oss = json.loads(osscse_airflow_connections["AIRFLOW_CONN_OSS_DEFAULT"])["extra"]
    kms = json.loads(osscse_airflow_connections["AIRFLOW_CONN_KMS_DEFAULT"])
    vault = json.loads(osscse_airflow_connections["AIRFLOW_CONN_VAULT_DEFAULT"])
    assert (oss["access_key_id"], oss["access_key_secret"]) == (
        osscse_oss_server.access_key_id,
        osscse_oss_server.access_key_secret,
    )
    assert (kms["login"], kms["password"]) == (osscse_kms_server.access_key_id, osscse_kms_server.access_key_secret)
    assert vault["password"] == osscse_openbao.root_token


def test_the_plugin_exports_no_fixed_credentials() -> None:
    constants = {name for name, value in vars(pytest_plugin).items() if name.isupper() and isinstance(value, str)}
    assert constants == {"REGION"}
    pairs = {pytest_plugin.new_access_key() for _ in range(50)}
    assert len(pairs) == 50 and len({key_id for key_id, _ in pairs}) == 50


def test_openbao_root_tokens_differ_between_instances() -> None:
    assert OpenBaoServer().root_token != OpenBaoServer().root_token
