"""Issue 11: ``osscse`` finds connections where ``airflow connections get`` does, and fast.

Observed before the change: a connection stored in the metadata DB gave ``AirflowNotFoundException``
(the command ran in Airflow's "fallback" process context, which skips the DB), though docs/cli.md
said it worked; malformed JSON in ``AIRFLOW_CONN_OSS_DEFAULT`` said "conn_id isn't defined"; and
every command paid the Airflow import (2.2-3.5 s) before doing anything.

Each test runs the installed console script in a child process with its own ``AIRFLOW_HOME``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_process import osscse
from tests.cli.conftest import BUCKET


@pytest.fixture
def prefix(oss_env: Any, rsa_ref: str, tmp_path: Path) -> str:
    """A prefix holding one small encrypted object, written with the JSON connection ``oss_v4``."""
    name = f"cli-conn/{uuid.uuid4().hex}/"
    src = tmp_path / "one.txt"
    src.write_bytes(b"one")
    done = osscse("put", str(src), f"oss://{BUCKET}/{name}one.txt", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    assert done.returncode == 0, done.stderr
    return name


@pytest.fixture
def oss_fields() -> dict[str, Any]:
    return dict(json.loads(os.environ["AIRFLOW_CONN_OSS_V4"]))


def airflow_home(tmp_path: Path) -> dict[str, str]:
    """An Airflow home of its own, configured like a deployment (not the suite's unit-test mode): a
    SQLite metadata DB and one Fernet key shared by every process, no secrets backend."""
    from cryptography.fernet import Fernet

    home = tmp_path / "airflow-home"
    home.mkdir()
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def airflow(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    airflow_bin = str(Path(sys.executable).with_name("airflow"))
    done = subprocess.run(
        [airflow_bin, *args], env={**os.environ, **env}, capture_output=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done


@pytest.mark.slow
def test_a_connection_in_the_metadata_db_is_found_like_airflow_connections_get(
    oss_fields: dict[str, Any], prefix: str, tmp_path: Path
) -> None:
    env = airflow_home(tmp_path)
    airflow("db", "migrate", env=env)
    airflow("connections", "add", "oss_in_db", "--conn-json", json.dumps(oss_fields), env=env)

    listed = osscse("ls", f"oss://{BUCKET}/{prefix}", "--oss-conn-id", "oss_in_db", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == f"oss://{BUCKET}/{prefix}one.txt\n".encode()


def secrets_file_env(tmp_path: Path, connections: dict[str, Any]) -> dict[str, str]:
    """Airflow's local-filesystem secrets backend serving ``connections`` (JSON file)."""
    path = tmp_path / "connections.json"
    path.write_text(json.dumps(connections))
    return {
        **airflow_home(tmp_path),
        "AIRFLOW__SECRETS__BACKEND": "airflow.secrets.local_filesystem.LocalFilesystemBackend",
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps({"connections_file_path": str(path)}),
    }


def test_a_connection_in_the_configured_secrets_backend_is_found(
    oss_fields: dict[str, Any], prefix: str, tmp_path: Path
) -> None:
    env = secrets_file_env(tmp_path, {"oss_in_backend": oss_fields})
    listed = osscse("ls", f"oss://{BUCKET}/{prefix}", "--oss-conn-id", "oss_in_backend", env=env)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == f"oss://{BUCKET}/{prefix}one.txt\n".encode()


def test_the_secrets_backend_wins_over_the_environment_variable_as_in_airflow(
    oss_fields: dict[str, Any], prefix: str, tmp_path: Path
) -> None:
    """Airflow searches the configured backend first: a stale variable must not shadow it."""
    stale = {**oss_fields, "extra": {**oss_fields["extra"], "access_key_secret": "stale-secret"}}
    env = {**secrets_file_env(tmp_path, {"oss_both": oss_fields}), "AIRFLOW_CONN_OSS_BOTH": json.dumps(stale)}
    listed = osscse("ls", f"oss://{BUCKET}/{prefix}", "--oss-conn-id", "oss_both", env=env)
    assert listed.returncode == 0, listed.stderr


def test_malformed_json_in_the_variable_is_named_with_the_fix(oss_env: Any, tmp_path: Path) -> None:
    env = {**airflow_home(tmp_path), "AIRFLOW_CONN_OSS_BROKEN": '{"conn_type": "oss", "schema": "b",'}
    listed = osscse("ls", f"oss://{BUCKET}/", "--oss-conn-id", "oss_broken", env=env)
    assert listed.returncode == 1 and listed.stdout == b""
    err = listed.stderr.decode()
    assert err.count("\n") == 1, err
    assert "AIRFLOW_CONN_OSS_BROKEN is not valid JSON" in err and "line 1 column" in err


def test_an_undefined_connection_names_every_place_to_define_it(oss_env: Any, tmp_path: Path) -> None:
    listed = osscse("ls", f"oss://{BUCKET}/", "--oss-conn-id", "nowhere", env=airflow_home(tmp_path))
    assert listed.returncode == 1
    err = listed.stderr.decode()
    assert "AIRFLOW_CONN_NOWHERE" in err and "airflow connections add nowhere" in err and "secrets backend" in err


@pytest.mark.parametrize("command", ["inspect", "put"])
def test_inspect_and_put_with_json_connections_do_not_import_airflow(
    command: str, oss_env: Any, rsa_ref: str, prefix: str, tmp_path: Path
) -> None:
    """The start-up budget (bench/cli_startup.py) rests on this: Airflow costs ~3 s to import."""
    src = tmp_path / "kib.bin"
    src.write_bytes(os.urandom(1024))
    uri = f"oss://{BUCKET}/{prefix}" + ("one.txt" if command == "inspect" else "kib.bin")
    argv = (
        ["inspect", uri, "--oss-conn-id", "oss_v4"]
        if command == "inspect"
        else ["put", str(src), uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]
    )
    probe = (
        "import sys\n"
        "from airflow_provider_osscse.cli import main\n"
        f"code = main({argv!r})\n"
        "sys.stderr.write(f'exit={code} airflow={\"airflow\" in sys.modules}\\n')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, **airflow_home(tmp_path)},
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.stderr.decode().strip().endswith("exit=0 airflow=False"), done.stderr.decode()
