"""KMS CMKs are pinned: the key KMS names in every Decrypt/ReEncrypt answer must be the configured one.

A KMS ``CiphertextBlob`` names its own key, so ``Decrypt`` needs no ``KeyId``: any credential allowed
to decrypt under *several* keys (one role serving two tenants) opens a blob of either. Without a
check, an object sealed under ``alias/tenant-b`` whose headers are relabelled to tenant-a's identity
is opened by a reader configured only for tenant-a (a confused deputy), and ``ReEncrypt`` would
launder tenant-b's data key into a tenant-a blob. Everything here runs through the real Tea SDK
against the local KMS server.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import KeyPermissionError, KeyUnwrapError, KmsKeyMismatchError
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey, kms_identity
from airflow_provider_osscse.keys.rotation import rewrap_data_key
from airflow_provider_osscse.testing.kms_server import LocalKMSServer
from tests.keys.conftest import FAST_RETRY


def _client(server: LocalKMSServer, ak: str | None = None, secret: str | None = None) -> Client:
    return Client(
        Config(
            access_key_id=ak or server.access_key_id,
            access_key_secret=secret or server.access_key_secret,
            endpoint=server.endpoint,
            protocol="http",
            region_id=server.region,
        )
    )


def _tenants(server: LocalKMSServer) -> tuple[str, str, str, str]:
    """(alias a, key id a, alias b, key id b): two tenants' keys in one KMS, one credential for both."""
    suffix = uuid.uuid4().hex[:8]
    alias_a, alias_b = f"alias/tenant-a-{suffix}", f"alias/tenant-b-{suffix}"
    return alias_a, server.create_key(alias=alias_a), alias_b, server.create_key(alias=alias_b)


def _relabel(wrapped: WrappedDataKey, identity: str) -> WrappedDataKey:
    """What an attacker with write access to the bucket does: the headers now name another CMK."""
    return dataclasses.replace(wrapped, cmk_identity=identity)


def test_reader_for_tenant_a_refuses_a_blob_sealed_under_tenant_b_relabelled_to_a(
    osscse_kms_server: LocalKMSServer,
) -> None:
    alias_a, key_a, alias_b, key_b = _tenants(osscse_kms_server)
    client = _client(osscse_kms_server)
    sealed_by_b = AlicloudKmsKey(client, key_id=alias_b).wrap(DataKey.generate())
    relabelled = _relabel(sealed_by_b, kms_identity(alias_a))
    reader_a = AlicloudKmsKey(client, key_id=alias_a, retry=FAST_RETRY)
    assert reader_a.matches(relabelled)  # the headers say tenant-a: only KMS's answer can tell
    with pytest.raises(KmsKeyMismatchError) as caught:
        reader_a.unwrap(relabelled)
    assert isinstance(caught.value, KeyUnwrapError)
    message = str(caught.value)
    assert alias_a in message and key_a in message and key_b in message and "Decrypt" in message


def test_reader_configured_by_key_id_refuses_another_keys_blob_without_describe_key(
    osscse_kms_server: LocalKMSServer,
) -> None:
    """A key id needs no resolution: a Decrypt-only credential suffices and the pin still holds."""
    _, key_a, alias_b, _ = _tenants(osscse_kms_server)
    ak = f"LTAI-decrypt-{uuid.uuid4().hex[:6]}"
    osscse_kms_server.add_credential(ak, "decrypt-secret", allowed_actions={"Decrypt"})
    data_key = DataKey.generate()
    own = AlicloudKmsKey(_client(osscse_kms_server), key_id=key_a).wrap(data_key)
    foreign = _relabel(AlicloudKmsKey(_client(osscse_kms_server), key_id=alias_b).wrap(data_key), kms_identity(key_a))
    reader = AlicloudKmsKey(_client(osscse_kms_server, ak, "decrypt-secret"), key_id=key_a, retry=FAST_RETRY)
    assert reader.unwrap(own) == data_key
    with pytest.raises(KmsKeyMismatchError, match=key_a):
        reader.unwrap(foreign)


def test_alias_is_resolved_once_per_provider_with_describe_key(osscse_kms_server: LocalKMSServer) -> None:
    alias_a, key_a, _, _ = _tenants(osscse_kms_server)
    counted = _CountingClient(_client(osscse_kms_server))
    writer = AlicloudKmsKey(_client(osscse_kms_server), key_id=alias_a)
    objects = [writer.wrap(DataKey.generate()) for _ in range(3)]
    reader = AlicloudKmsKey(counted, key_id=alias_a)
    for wrapped in objects:
        reader.unwrap(wrapped)
    assert counted.calls == {"DescribeKey": 1, "Decrypt": 6}
    assert reader.pinned_key_id == key_a


def test_writer_pins_from_its_first_encrypt_answer_and_needs_no_describe_key(
    osscse_kms_server: LocalKMSServer,
) -> None:
    """Writers learn the key id from GenerateDataKey/Encrypt (least privilege: no kms:DescribeKey)
    and name that id afterwards, so re-pointing the alias later cannot fork the key mid-run."""
    alias_a, key_a, _, _ = _tenants(osscse_kms_server)
    ak = f"LTAI-writer-{uuid.uuid4().hex[:6]}"
    osscse_kms_server.add_credential(ak, "writer-secret", allowed_actions={"GenerateDataKey", "Encrypt"})
    counted = _CountingClient(_client(osscse_kms_server, ak, "writer-secret"))
    writer = AlicloudKmsKey(counted, key_id=alias_a, retry=FAST_RETRY)
    writer.new_data_key()
    assert writer.pinned_key_id == key_a
    data_key, wrapped = writer.new_data_key()
    assert "DescribeKey" not in counted.calls
    assert AlicloudKmsKey(_client(osscse_kms_server), key_id=key_a).unwrap(wrapped) == data_key


def test_reader_without_describe_key_permission_names_the_action(osscse_kms_server: LocalKMSServer) -> None:
    alias_a, _, _, _ = _tenants(osscse_kms_server)
    wrapped = AlicloudKmsKey(_client(osscse_kms_server), key_id=alias_a).wrap(DataKey.generate())
    ak = f"LTAI-nodescribe-{uuid.uuid4().hex[:6]}"
    osscse_kms_server.add_credential(ak, "nodescribe-secret", allowed_actions={"Decrypt"})
    reader = AlicloudKmsKey(_client(osscse_kms_server, ak, "nodescribe-secret"), key_id=alias_a, retry=FAST_RETRY)
    with pytest.raises(KeyPermissionError, match="kms:DescribeKey"):
        reader.unwrap(wrapped)


def test_rewrap_by_tenant_a_refuses_a_relabelled_tenant_b_blob(osscse_kms_server: LocalKMSServer) -> None:
    """ReEncrypt is the same confused deputy: it would launder tenant-b's data key into tenant-a."""
    alias_a, key_a, alias_b, key_b = _tenants(osscse_kms_server)
    client = _client(osscse_kms_server)
    relabelled = _relabel(AlicloudKmsKey(client, key_id=alias_b).wrap(DataKey.generate()), kms_identity(alias_a))
    rotator_a = AlicloudKmsKey(client, key_id=alias_a, retry=FAST_RETRY)
    with pytest.raises(KmsKeyMismatchError) as caught:
        rotator_a.rewrap(relabelled)
    message = str(caught.value)
    assert "ReEncrypt" in message and alias_a in message and key_a in message and key_b in message


def test_moving_between_two_kms_keys_checks_the_source_key(osscse_kms_server: LocalKMSServer) -> None:
    alias_a, _, alias_b, key_b = _tenants(osscse_kms_server)
    client = _client(osscse_kms_server)
    key_a_cmk = AlicloudKmsKey(client, key_id=alias_a, endpoint=osscse_kms_server.endpoint, retry=FAST_RETRY)
    key_b_cmk = AlicloudKmsKey(client, key_id=alias_b, endpoint=osscse_kms_server.endpoint, retry=FAST_RETRY)
    data_key = DataKey.generate()
    sealed_by_b = key_b_cmk.wrap(data_key)
    moved = rewrap_data_key(sealed_by_b, source=key_b_cmk, target=key_a_cmk)  # the legitimate move
    assert moved.cmk_identity == kms_identity(alias_a) and key_a_cmk.unwrap(moved) == data_key
    third = AlicloudKmsKey(
        client, key_id=osscse_kms_server.create_key(), endpoint=osscse_kms_server.endpoint, retry=FAST_RETRY
    )
    with pytest.raises(KmsKeyMismatchError, match=key_b):  # claims to come from tenant-a; KMS says b
        third.reencrypt_from(_relabel(sealed_by_b, kms_identity(alias_a)), source=key_a_cmk)


# -- a KMS answering ReEncrypt in the published shape (no SourceKeyId) ---------------------------------


@pytest.fixture
def published_kms() -> Iterator[LocalKMSServer]:
    """A second local KMS whose ReEncrypt answers only ``KeyId``/``KeyVersionId``, as the published
    API reference (and every generated SDK model) describes: the key that decrypted the original."""
    with LocalKMSServer("LTAI-published", "published-secret", reencrypt_names_source=False) as server:
        yield server


def test_published_shape_reencrypt_is_pinned_on_the_key_that_decrypted(published_kms: LocalKMSServer) -> None:
    alias_a, _, alias_b, key_b = _tenants(published_kms)
    client = _client(published_kms)
    cmk_a = AlicloudKmsKey(client, key_id=alias_a, endpoint=published_kms.endpoint, retry=FAST_RETRY)
    cmk_b = AlicloudKmsKey(client, key_id=alias_b, endpoint=published_kms.endpoint, retry=FAST_RETRY)
    data_key = DataKey.generate()
    own = cmk_a.wrap(data_key)
    published_kms.rotate_key(alias_a)
    rewrapped = cmk_a.rewrap(own)
    assert cmk_a.unwrap(rewrapped) == data_key
    assert rewrapped.cmk_version is None  # the answer names the old version only: the new one is unknown
    moved = rewrap_data_key(cmk_b.wrap(data_key), source=cmk_b, target=cmk_a)
    assert cmk_a.unwrap(moved) == data_key
    with pytest.raises(KmsKeyMismatchError, match=key_b):
        cmk_a.rewrap(_relabel(cmk_b.wrap(data_key), kms_identity(alias_a)))


class _CountingClient:
    """Counts ``call_api`` by KMS action (the provider's only entry point into the Tea client)."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self.calls: dict[str, int] = {}

    def call_api(self, params: Any, request: Any, runtime: Any) -> Any:
        self.calls[params.action] = self.calls.get(params.action, 0) + 1
        return self._client.call_api(params, request, runtime)
