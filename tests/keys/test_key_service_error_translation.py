"""Vault and KMS failures as one line naming the service's address, the key and the connection, and
the likely fix; never the token, the secret or the service's own text.

Real faults: an OpenBao token whose policy lacks a capability, a Transit key that does not exist, a
closed port; a KMS key that does not exist, a KMS credential limited to some actions.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Callable

import hvac
import pytest
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import KeyNotFoundError, KeyPermissionError, KeyServiceUnavailableError
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from tests.keys.conftest import FAST_RETRY

POLICY_DOCS = "docs/key-custody.md, least privilege"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- Vault ----------------------------------------------------------------------------------------


def test_a_token_without_update_on_encrypt_names_capability_path_address_connection_and_policy(
    approle_client: Callable[[str], hvac.Client], transit_key: str, osscse_openbao: OpenBaoServer
) -> None:
    client = approle_client(f'path "transit/keys/{transit_key}" {{ capabilities = ["read"] }}')
    cmk = VaultTransitKey(
        client, key_name=transit_key, reference=f"vault-transit://vault_writer/transit/{transit_key}", retry=FAST_RETRY
    )
    with pytest.raises(KeyPermissionError) as caught:
        cmk.wrap(DataKey.generate())
    message = str(caught.value)
    assert (
        f"the Vault token of connection 'vault_writer' lacks the 'update' capability on 'transit/encrypt/{transit_key}'"
        in message
    )
    assert f"Vault at {osscse_openbao.address}" in message
    assert f'add `path "transit/encrypt/{transit_key}" {{ capabilities = ["update"] }}` to its policy' in message
    assert POLICY_DOCS in message
    assert str(client.token) not in message


def test_unwrapping_under_a_missing_transit_key_names_the_key_the_address_and_the_fix(
    vault_root: hvac.Client, osscse_openbao: OpenBaoServer
) -> None:
    name = f"gone-{uuid.uuid4().hex[:8]}"
    cmk = VaultTransitKey(vault_root, key_name=name, reference=f"vault-transit://vault_default/transit/{name}")
    wrapped = WrappedDataKey("VAULT/TRANSIT", b"vault:v1:AAAA", b"vault:v1:AAAA", {})
    with pytest.raises(KeyNotFoundError) as caught:
        cmk.unwrap(wrapped)
    message = str(caught.value)
    assert f"the Vault key at 'transit/decrypt/{name}' does not exist" in message
    assert f"Vault at {osscse_openbao.address}, connection 'vault_default'" in message
    assert "check the key name in the CMK reference" in message


def test_an_unreachable_vault_names_its_address_the_failure_and_the_connection() -> None:
    port = closed_port()
    client = hvac.Client(url=f"http://127.0.0.1:{port}", token="s.never-shown-token")
    cmk = VaultTransitKey(
        client, key_name="orders", reference="vault-transit://vault_ops/transit/orders", retry=FAST_RETRY
    )
    with pytest.raises(KeyServiceUnavailableError) as caught:
        cmk.wrap(DataKey.generate())
    message = str(caught.value)
    assert f"cannot reach Vault at http://127.0.0.1:{port} (connection refused)" in message
    assert "check the host and port of connection 'vault_ops'" in message
    assert "never-shown-token" not in message


# -- Alibaba Cloud KMS ----------------------------------------------------------------------------


def _client(server, *, ak: str | None = None, secret: str | None = None, endpoint: str | None = None) -> Client:
    return Client(
        Config(
            access_key_id=ak or server.access_key_id,
            access_key_secret=secret or server.access_key_secret,
            endpoint=endpoint or server.endpoint,
            protocol="http",
            region_id=server.region,
        )
    )


def test_a_missing_kms_key_names_the_key_the_endpoint_the_connection_and_the_fix(osscse_kms_server) -> None:
    key_id = f"key-{uuid.uuid4()}"
    cmk = AlicloudKmsKey(_client(osscse_kms_server), key_id=key_id, reference=f"kms://kms_orders/{key_id}")
    with pytest.raises(KeyNotFoundError) as caught:
        cmk.wrap(DataKey.generate())
    message = str(caught.value)
    assert (
        f"KMS at http://{osscse_kms_server.endpoint} has no enabled key '{key_id}' (Forbidden.KeyNotFound)" in message
    )
    assert (
        "check the key id or alias in the CMK reference, the region and endpoint of connection 'kms_orders'" in message
    )


def test_kms_credentials_without_an_action_name_it_the_key_the_endpoint_and_the_ram_policy(osscse_kms_server) -> None:
    key_id = osscse_kms_server.create_key()
    access_key_id, secret = f"LTAIencryptonly{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    osscse_kms_server.add_credential(access_key_id, secret, allowed_actions={"Encrypt"})
    cmk = AlicloudKmsKey(
        _client(osscse_kms_server, ak=access_key_id, secret=secret),
        key_id=key_id,
        reference=f"kms://kms_writer/{key_id}",
    )
    with pytest.raises(KeyPermissionError) as caught:
        cmk.unwrap(AlicloudKmsKey(_client(osscse_kms_server), key_id=key_id).wrap(DataKey.generate()))
    message = str(caught.value)
    assert f"the KMS credentials of connection 'kms_writer' may not call kms:Decrypt on key '{key_id}'" in message
    assert f"at http://{osscse_kms_server.endpoint} (Forbidden.NoPermission)" in message
    assert "RAM policy" in message and POLICY_DOCS in message and secret not in message


def test_an_unreachable_kms_names_its_endpoint_the_action_and_the_connection(osscse_kms_server) -> None:
    endpoint = f"127.0.0.1:{closed_port()}"
    cmk = AlicloudKmsKey(
        _client(osscse_kms_server, endpoint=endpoint), key_id="key-x", reference="kms://kms_ops/key-x", retry=FAST_RETRY
    )
    with pytest.raises(KeyServiceUnavailableError) as caught:
        cmk.wrap(DataKey.generate())
    message = str(caught.value)
    assert f"cannot reach KMS at http://{endpoint} (Encrypt: connection refused)" in message  # wrap() encrypts
    assert "check the endpoint and region of connection 'kms_ops'" in message
