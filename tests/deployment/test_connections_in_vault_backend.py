"""Connections that live only in Vault, read through the hashicorp provider's Vault secrets backend.

docs/deployment.md tells users to keep even the connections in Vault (OpenBao here): ``[secrets] backend``
set to ``airflow.providers.hashicorp.secrets.vault.VaultBackend``, the connections as KV v2 secrets at
``<mount_point>/<connections_path>/<conn_id>``, the backend's token allowed only to read them (the page's
policy) and passed as one per-key variable (``AIRFLOW__SECRETS__BACKEND_KWARG__TOKEN``, e.g. from a
Kubernetes secret) rather than inside the JSON.
This test follows exactly that configuration, in a fresh environment with no ``AIRFLOW_CONN_*`` variable
and no metadata DB: ``osscse`` writes an object under a Vault Transit CMK whose ``vault`` connection,
like the ``oss`` one, comes from Vault, and reads it back.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from airflow_provider_osscse.testing.openbao import OpenBaoServer
from airflow_provider_osscse.testing.oss_server import LocalOSSServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"


def documented(lang: str) -> str:
    """The page's only fenced block in ``lang`` (``ini``: the ``[secrets]`` settings; ``hcl``: the policy)."""
    (block,) = re.findall(rf"^```{lang}\n(.*?)^```", DOC.read_text(), re.DOTALL | re.MULTILINE)
    return str(block)


def documented_setting(name: str) -> str:
    """One ``name = value`` line of the page's ``[secrets]`` block."""
    match = re.search(rf"^{name} = (.*)$", documented("ini"), re.MULTILINE)
    assert match, f"docs/deployment.md: no {name} in the [secrets] block"
    return match[1]


#: The page's settings; this test replaces only the address and the auth in ``backend_kwargs`` (a token).
BACKEND = documented_setting("backend")
BACKEND_KWARGS: dict[str, Any] = json.loads(documented_setting("backend_kwargs"))
MOUNT, CONNECTIONS_PATH = BACKEND_KWARGS["mount_point"], BACKEND_KWARGS["connections_path"]
#: The backend's own policy, as the page prints it: read on the connections, nothing else.
BACKEND_POLICY = documented("hcl")


def store_connection(openbao: OpenBaoServer, conn_id: str, connection: dict[str, Any]) -> None:
    """``bao kv put airflow/connections/<conn_id> conn_type=... extra='{...}'``, through hvac."""
    client = openbao.client()
    if f"{MOUNT}/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("kv", path=MOUNT, options={"version": "2"})
    client.secrets.kv.v2.create_or_update_secret(
        path=f"{CONNECTIONS_PATH}/{conn_id}", mount_point=MOUNT, secret=connection
    )


def test_osscse_writes_and_reads_with_oss_and_vault_connections_stored_only_in_vault(
    osscse_services: dict[str, Any], osscse_openbao: OpenBaoServer, tmp_path: Path
) -> None:
    oss: LocalOSSServer = osscse_services["oss"]
    suffix = uuid.uuid4().hex[:8]
    oss_id, vault_id = f"oss_in_vault_{suffix}", f"vault_in_vault_{suffix}"
    extra = {"access_key_id": oss.access_key_id, "access_key_secret": oss.access_key_secret}
    extra |= {"region": oss.region, "endpoint": oss.endpoint}
    store_connection(osscse_openbao, oss_id, {"conn_type": "oss_cse", "extra": json.dumps(extra)})
    host, port = osscse_openbao.address.removeprefix("http://").rsplit(":", 1)
    vault = {"conn_type": "vault", "host": host, "port": port, "password": osscse_openbao.root_token}
    store_connection(osscse_openbao, vault_id, vault | {"extra": json.dumps({"auth_type": "token", "use_tls": False})})

    client = osscse_openbao.client()
    client.sys.create_or_update_policy(name="osscse-test-airflow-connections", policy=BACKEND_POLICY)
    backend_token = client.auth.token.create(policies=["osscse-test-airflow-connections"], ttl="10m")["auth"][
        "client_token"
    ]
    own = ("AIRFLOW", "_AIRFLOW", "OSSCSE_", "PYTEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(own)}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__SECRETS__BACKEND": BACKEND,
        "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(
            {k: v for k, v in BACKEND_KWARGS.items() if k != "role_id"}
            | {"url": osscse_openbao.address, "auth_type": "token"}
        ),
        "AIRFLOW__SECRETS__BACKEND_KWARG__TOKEN": backend_token,
    }
    source, target = tmp_path / "orders.csv", f"oss://{osscse_services['bucket_name']}/vault-backend/{suffix}.csv"
    source.write_bytes(b"id,amount\n1,10\n")
    cmk = f"vault-transit://{vault_id}/transit/osscse-demo"
    osscse = [sys.executable, "-m", "airflow_provider_osscse.cli"]

    put = subprocess.run(
        [*osscse, "put", str(source), target, "--oss-conn-id", oss_id, "--cmk", cmk],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert put.returncode == 0, put.stderr
    cat = subprocess.run(
        [*osscse, "cat", target, "--oss-conn-id", oss_id, "--cmk", cmk],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert cat.returncode == 0, cat.stderr
    assert cat.stdout == source.read_bytes()
    at_rest = oss.stored_object(osscse_services["bucket_name"], f"vault-backend/{suffix}.csv")
    assert at_rest.metadata["x-oss-meta-client-side-encryption-wrap-alg"] == "VAULT/TRANSIT"
    assert at_rest.data != source.read_bytes()
