"""Shared fixtures for transfer tests (hook, CLI): a bucket on the local OSS server, v1/v4 connections, CMKs.

Imported by the conftest of each test package that needs them, so the fixtures are defined once.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

BUCKET = "hook-tests"
KIB = 1024
#: Small multipart settings so multipart paths run in milliseconds.
PART = 100 * KIB
THRESHOLD = 200 * KIB


def oss_conn(server: Any, **extra: str) -> str:
    return json.dumps(
        {
            "conn_type": "oss",
            "schema": BUCKET,
            "extra": {
                "auth_type": "AK",
                "access_key_id": server.access_key_id,
                "access_key_secret": server.access_key_secret,
                "region": server.region,
                "endpoint": server.endpoint,
                **extra,
            },
        }
    )


@pytest.fixture(scope="session")
def oss_env(osscse_airflow_connections: dict[str, str], osscse_oss_server: Any) -> Iterator[Any]:
    """The local OSS server with a test bucket and connections ``oss_v4`` and ``oss_v1``."""
    osscse_oss_server.create_bucket(BUCKET)
    os.environ["AIRFLOW_CONN_OSS_V4"] = oss_conn(osscse_oss_server)
    os.environ["AIRFLOW_CONN_OSS_V1"] = oss_conn(osscse_oss_server, signature_version="v1")
    yield osscse_oss_server
    os.environ.pop("AIRFLOW_CONN_OSS_V4", None)
    os.environ.pop("AIRFLOW_CONN_OSS_V1", None)


def _write_rsa(path: Path) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return f"rsa-file://{path}"


@pytest.fixture(scope="session")
def rsa_ref(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _write_rsa(tmp_path_factory.mktemp("rsa") / "cmk.pem")


@pytest.fixture(scope="session")
def other_rsa_ref(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _write_rsa(tmp_path_factory.mktemp("rsa2") / "other.pem")


@pytest.fixture(scope="session")
def transit_ref(osscse_openbao: Any, osscse_airflow_connections: dict[str, str]) -> Callable[[str], str]:
    """A factory creating a fresh Transit key in OpenBao and returning its reference."""
    import hvac

    client = hvac.Client(url=osscse_openbao.address, token=osscse_openbao.root_token)
    if "transit/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("transit", path="transit")

    def make(name: str) -> str:
        client.secrets.transit.create_key(name)
        return f"vault-transit://vault_default/transit/{name}"

    make.client = client  # type: ignore[attr-defined]
    return make


@pytest.fixture
def make_hook(oss_env: Any, rsa_ref: str) -> Callable[..., EncryptedOSSHook]:
    def make(conn_id: str = "oss_v4", **kwargs: Any) -> EncryptedOSSHook:
        kwargs.setdefault("cmk", rsa_ref)
        kwargs.setdefault("multipart_threshold", THRESHOLD)
        kwargs.setdefault("part_size", PART)
        return EncryptedOSSHook(conn_id, **kwargs)

    return make
