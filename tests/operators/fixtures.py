"""Session fixtures shared by the operator, sensor and DAG tests (imported by their conftest files).

Services come from the osscse pytest plugin; this adds what the examples need on top: a bucket,
a Transit key, an RSA key in Vault KV, a decrypt-only Vault connection and a throw-away PostgreSQL.
Seeding is ``scripts/demo_seed.py``, the same code ``make demo`` uses.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_BUCKET = "osscse-test"
TRANSIT_CMK = "vault-transit://vault_default/transit/osscse-demo"
KV_CMK = "vault-kv://vault_default/secret/osscse/etl-rsa"
KV_DECRYPT_CMK = "vault-kv://vault_decrypt/secret/osscse/etl-rsa"


def load_demo_seed() -> ModuleType:
    spec = importlib.util.spec_from_file_location("osscse_demo_seed", REPO / "scripts" / "demo_seed.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


seed = load_demo_seed()


@pytest.fixture(scope="session")
def osscse_services(
    osscse_airflow_connections: dict[str, str], osscse_oss_server: Any, osscse_openbao: Any
) -> Iterator[dict[str, Any]]:
    """Bucket, Transit key, KV RSA key and ``AIRFLOW_CONN_VAULT_DECRYPT`` (a read-only token)."""
    bucket = seed.ensure_bucket(
        osscse_oss_server.endpoint,
        osscse_oss_server.access_key_id,
        osscse_oss_server.access_key_secret,
        osscse_oss_server.region,
        TEST_BUCKET,
    )
    client = osscse_openbao.client()
    seed.ensure_transit_key(client)
    private_pem = seed.ensure_kv_rsa_key(client)
    token = seed.decrypt_only_token(client)
    saved = os.environ.get("AIRFLOW_CONN_VAULT_DECRYPT")
    os.environ["AIRFLOW_CONN_VAULT_DECRYPT"] = seed.vault_connection_json(osscse_openbao.address, token)
    try:
        yield {
            "bucket": bucket,
            "bucket_name": TEST_BUCKET,
            "vault": client,
            "kv_private_pem": private_pem,
            "oss": osscse_oss_server,
        }
    finally:
        if saved is None:
            os.environ.pop("AIRFLOW_CONN_VAULT_DECRYPT", None)
        else:
            os.environ["AIRFLOW_CONN_VAULT_DECRYPT"] = saved


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, Any]]:
    """A throw-away PostgreSQL cluster (see :func:`postgres_cluster`) for the session."""
    with postgres_cluster() as server:
        yield server


@contextlib.contextmanager
def postgres_cluster(*options: str) -> Iterator[dict[str, Any]]:
    """A throw-away PostgreSQL cluster (initdb + pg_ctl) on a free port, stopped by PID.

    PostgreSQL refuses to run as root, so as root the cluster belongs to the ``postgres`` user.
    ``options`` are further ``-c name=value`` server settings. Also the deployment tier's metadata DB
    (tests/deployment), which reads ``pid`` and ``root`` to check that nothing is left behind.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        message = "PostgreSQL is not installed (make test runs scripts/ensure-postgres.sh)"
        if os.environ.get("CI"):
            pytest.fail(message)  # in CI a skipped PostgreSQL test would hide a broken install step
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="osscse-pg-"))
    data, sockets = root / "data", root / "sock"
    sockets.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = _free_port()
    subprocess.run(
        [*prefix, initdb, "-D", str(data), "-U", "osscse", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *prefix,
            pg_ctl,
            "-D",
            str(data),
            "-w",
            "-l",
            str(root / "server.log"),
            "-o",
            " ".join([f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", *options]),
            "start",
        ],
        check=True,
        capture_output=True,
    )
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "osscse", "database": "postgres", "pid": pid, "root": root}
    finally:
        os.kill(pid, signal.SIGINT)  # "fast" shutdown
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)
