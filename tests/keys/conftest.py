"""Shared fixtures for CMK tests: a configured OpenBao (transit, approle, kv), fast retry policy."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import hvac
import pytest

from airflow_provider_osscse.keys.retry import RetryPolicy
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from tests.transfer_fixtures import oss_env  # noqa: F401 - a pytest fixture (least-privilege tests)

#: Keeps "unreachable service" tests to milliseconds.
FAST_RETRY = RetryPolicy(attempts=3, initial_backoff=0.01, max_backoff=0.02, max_total_seconds=1.0)


@pytest.fixture(scope="session")
def vault_root(osscse_openbao: OpenBaoServer) -> hvac.Client:
    """Root client of the session OpenBao with ``transit/`` and AppRole enabled (once)."""
    client = osscse_openbao.client()
    mounts = client.sys.list_mounted_secrets_engines()["data"]
    if "transit/" not in mounts:
        client.sys.enable_secrets_engine("transit")
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    return client


@pytest.fixture
def transit_key(vault_root: hvac.Client) -> str:
    """A fresh Transit key name (tests rotate keys, so each gets its own)."""
    name = f"cmk-{uuid.uuid4().hex[:8]}"
    vault_root.secrets.transit.create_key(name)
    return name


@pytest.fixture(scope="session")
def approle_client(vault_root: hvac.Client, osscse_openbao: OpenBaoServer) -> Callable[[str], hvac.Client]:
    """``make(policy_hcl)`` → an hvac client logged in through AppRole with only that policy."""

    def make(policy_hcl: str) -> hvac.Client:
        role = f"role-{uuid.uuid4().hex[:8]}"
        vault_root.sys.create_or_update_policy(role, policy_hcl)
        vault_root.auth.approle.create_or_update_approle(role, token_policies=[role], token_ttl="10m")
        role_id = vault_root.auth.approle.read_role_id(role)["data"]["role_id"]
        secret_id = vault_root.auth.approle.generate_secret_id(role)["data"]["secret_id"]
        client = hvac.Client(url=osscse_openbao.address)
        client.auth.approle.login(role_id=role_id, secret_id=secret_id)
        return client

    return make
