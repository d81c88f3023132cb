"""pytest plugin (entry point ``pytest11``): session-scoped local services and Airflow connections.

Fixtures (all session-scoped, each service started once on a free loopback port and stopped by PID
at the end of the session):

``osscse_oss_server``
    A :class:`~airflow_provider_osscse.testing.oss_server.LocalOSSServer`, credentials
    ``osscse_oss_server.access_key_id`` / ``.access_key_secret``, endpoint ``.endpoint``.
``osscse_kms_server``
    A :class:`~airflow_provider_osscse.testing.kms_server.LocalKMSServer`.
``osscse_openbao``
    A running :class:`~airflow_provider_osscse.testing.openbao.OpenBaoServer` (real OpenBao).
``osscse_airflow_connections``
    Sets ``AIRFLOW_CONN_OSS_DEFAULT``, ``AIRFLOW_CONN_VAULT_DEFAULT`` and ``AIRFLOW_CONN_KMS_DEFAULT``
    to point at the three services and returns a dict of connection id to URI/JSON.

Credentials (OSS and KMS access keys, the OpenBao root token) are random for every session: the
services listen on loopback, where any local user or process could otherwise reach them with a
fixed, published secret. Tests take them from the fixtures (``osscse_oss_server.access_key_secret``,
``osscse_openbao.root_token``, ...) or from the Airflow connections, never from constants.

Service imports are lazy so that merely having the plugin installed costs nothing.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_provider_osscse.testing.kms_server import LocalKMSServer
    from airflow_provider_osscse.testing.openbao import OpenBaoAuditLog, OpenBaoServer
    from airflow_provider_osscse.testing.oss_server import LocalOSSServer

REGION = "cn-hangzhou"


def new_access_key() -> tuple[str, str]:
    """A random (access key id, access key secret) pair shaped like Alibaba Cloud's.

    The id is not secret but random too, so that two sessions never share a credential.
    """
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    key_id = "LTAI" + "".join(secrets.choice(alphabet) for _ in range(20))
    return key_id, "".join(secrets.choice(alphabet) for _ in range(30))


@pytest.fixture(scope="session")
def osscse_oss_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalOSSServer]:
    from airflow_provider_osscse.testing.oss_server import LocalOSSServer

    access_key_id, access_key_secret = new_access_key()
    server = LocalOSSServer(
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        region=REGION,
        data_dir=tmp_path_factory.mktemp("oss-data"),
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def osscse_kms_server() -> Iterator[LocalKMSServer]:
    from airflow_provider_osscse.testing.kms_server import LocalKMSServer

    access_key_id, access_key_secret = new_access_key()
    server = LocalKMSServer(access_key_id=access_key_id, access_key_secret=access_key_secret, region=REGION)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def osscse_openbao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenBaoServer]:
    from airflow_provider_osscse.testing.openbao import OpenBaoServer

    server = OpenBaoServer(
        root_token=f"osscse-dev-{secrets.token_urlsafe(24)}",
        audit_log=tmp_path_factory.mktemp("openbao-audit") / "audit.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def osscse_openbao_audit(osscse_openbao: OpenBaoServer) -> OpenBaoAuditLog:
    """The session OpenBao's file audit log: ``.requests("transit/decrypt/<key>")`` counts the calls
    the server served. Use a key of the test's own, so other tests' calls are not counted."""
    return osscse_openbao.audit


def airflow_connection_env(
    oss: LocalOSSServer | None = None,
    openbao: OpenBaoServer | None = None,
    kms: LocalKMSServer | None = None,
    *,
    bucket: str | None = None,
) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` variables (JSON form) for connections pointing at the local services."""
    env: dict[str, str] = {}
    if oss is not None:
        env["AIRFLOW_CONN_OSS_DEFAULT"] = json.dumps(
            {
                "conn_type": "oss",
                "schema": bucket,
                # No ``auth_type``: "AK" is the default, and Airflow's masker warns about masking a
                # value that short (it masks every extra of a connection it fetches).
                "extra": {
                    "access_key_id": oss.access_key_id,
                    "access_key_secret": oss.access_key_secret,
                    "region": oss.region,
                    "endpoint": oss.endpoint,
                },
            }
        )
    if openbao is not None:
        from airflow_provider_osscse.testing.openbao import airflow_connection_json

        env["AIRFLOW_CONN_VAULT_DEFAULT"] = airflow_connection_json(openbao)
    if kms is not None:
        env["AIRFLOW_CONN_KMS_DEFAULT"] = json.dumps(
            {
                "conn_type": "alicloud_kms",
                "login": kms.access_key_id,
                "password": kms.access_key_secret,
                "extra": {"region": kms.region, "endpoint": kms.endpoint, "protocol": "http"},
            }
        )
    return env


@pytest.fixture(scope="session")
def osscse_airflow_connections(
    osscse_oss_server: LocalOSSServer,
    osscse_openbao: OpenBaoServer,
    osscse_kms_server: LocalKMSServer,
) -> Iterator[dict[str, str]]:
    env = airflow_connection_env(osscse_oss_server, osscse_openbao, osscse_kms_server)
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
