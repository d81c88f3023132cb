"""Alibaba Cloud KMS CMK through the real Tea SDK against the local KMS server."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid

import pytest
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi.utils_models import Config

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import (
    InsecureKmsConnectionError,
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceUnavailableError,
    KeyUnwrapError,
)
from airflow_provider_osscse.hooks.alicloud_kms import AlicloudKmsHook
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.reference import resolve_cmk
from airflow_provider_osscse.keys.rotation import rewrap_data_key
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from tests.keys.conftest import FAST_RETRY


def _client(server, ak: str | None = None, secret: str | None = None, endpoint: str | None = None) -> Client:
    return Client(
        Config(
            access_key_id=ak or server.access_key_id,
            access_key_secret=secret or server.access_key_secret,
            endpoint=endpoint or server.endpoint,
            protocol="http",
            region_id=server.region,
        )
    )


@pytest.fixture
def kms_alias(osscse_kms_server) -> str:
    alias = f"alias/cmk-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.create_key(alias=alias)
    return alias


def test_wrap_unwrap_round_trip_in_the_java_go_form(osscse_kms_server, kms_alias: str) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias, endpoint=osscse_kms_server.endpoint)
    data_key = DataKey.generate()
    wrapped = cmk.wrap(data_key)
    assert wrapped.wrap_alg == "KMS/ALICLOUD" and wrapped.cmk_identity == f"kms:{kms_alias}"
    assert wrapped.cmk_version and dict(wrapped.matdesc) == {}  # identity and version are not matdesc
    assert cmk.unwrap(wrapped) == data_key


def test_the_user_matdesc_is_written_as_is(osscse_kms_server, kms_alias: str) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias, matdesc={"team": "orders"})
    wrapped = cmk.wrap(DataKey.generate())
    rewrapped = cmk.rewrap(wrapped)
    assert dict(wrapped.matdesc) == dict(rewrapped.matdesc) == {"team": "orders"}


def test_generate_data_key_gives_a_wrapped_content_key(osscse_kms_server, kms_alias: str) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias)
    data_key, wrapped = cmk.new_data_key()
    assert data_key.iv[8:12] == b"\0\0\0\0" and cmk.unwrap(wrapped) == data_key


def test_oss2_double_base64_form_is_read_back(osscse_kms_server, kms_alias: str) -> None:
    client = _client(osscse_kms_server)
    data_key = DataKey.generate()
    from alibabacloud_kms20160120 import models

    def oss2_style(raw: bytes) -> bytes:
        blob = client.encrypt(
            models.EncryptRequest(key_id=kms_alias, plaintext=base64.b64encode(raw).decode())
        ).body.ciphertext_blob
        header = base64.b64encode(blob.encode())  # oss2 AliKMSProvider: base64 of the blob text
        return base64.b64decode(header)  # what the core hands over

    wrapped = WrappedDataKey("KMS/ALICLOUD", oss2_style(data_key.key), oss2_style(data_key.iv), {})
    assert AlicloudKmsKey(client, key_id=kms_alias).unwrap(wrapped) == data_key


def test_rotation_then_reencrypt_still_unwraps_and_moves_between_keys(osscse_kms_server, kms_alias: str) -> None:
    client = _client(osscse_kms_server)
    cmk = AlicloudKmsKey(client, key_id=kms_alias, endpoint=osscse_kms_server.endpoint)
    data_key = DataKey.generate()
    old = cmk.wrap(data_key)
    osscse_kms_server.rotate_key(kms_alias)
    new = cmk.rewrap(old)
    assert new.wrapped_key != old.wrapped_key
    assert cmk.unwrap(new) == data_key and cmk.unwrap(old) == data_key
    other_id = osscse_kms_server.create_key()
    other = AlicloudKmsKey(client, key_id=other_id, endpoint=osscse_kms_server.endpoint)
    moved = rewrap_data_key(old, source=cmk, target=other)
    assert moved.cmk_identity == f"kms:{other_id}" and other.unwrap(moved) == data_key


def test_kms_to_vault_rotation_unwraps_then_wraps_in_memory(
    osscse_kms_server, kms_alias: str, vault_root, transit_key: str
) -> None:
    kms = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias)
    transit = VaultTransitKey(vault_root, key_name=transit_key)
    data_key = DataKey.generate()
    moved = Keyring(transit, [kms]).rewrap(kms.wrap(data_key))
    assert moved.wrap_alg == "VAULT/TRANSIT" and transit.unwrap(moved) == data_key


def test_bad_credentials_are_a_permission_error_without_the_secret(osscse_kms_server, kms_alias: str) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server, secret="wrong-secret-value"), key_id=kms_alias, retry=FAST_RETRY)
    with pytest.raises(KeyPermissionError, match="rejected the credentials") as info:
        cmk.wrap(DataKey.generate())
    assert "wrong-secret-value" not in str(info.value)


def test_decrypt_only_credential_cannot_encrypt_and_names_the_action(osscse_kms_server, kms_alias: str) -> None:
    """A reader configured by alias also needs DescribeKey (the alias is resolved to pin the key)."""
    osscse_kms_server.add_credential(
        "LTAI-decrypt-only", "decrypt-only-secret", allowed_actions={"Decrypt", "DescribeKey"}
    )
    wrapped = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias).wrap(data_key := DataKey.generate())
    reader = AlicloudKmsKey(
        _client(osscse_kms_server, "LTAI-decrypt-only", "decrypt-only-secret"), key_id=kms_alias, retry=FAST_RETRY
    )
    assert reader.unwrap(wrapped) == data_key
    with pytest.raises(KeyPermissionError, match="may not call kms:Encrypt"):
        reader.wrap(data_key)


def test_missing_key_and_tampered_blob_fail_clearly(osscse_kms_server, kms_alias: str) -> None:
    client = _client(osscse_kms_server)
    with pytest.raises(KeyNotFoundError, match="kms://kms_default/alias/nope"):
        AlicloudKmsKey(client, key_id="alias/nope", retry=FAST_RETRY).wrap(DataKey.generate())
    cmk = AlicloudKmsKey(client, key_id=kms_alias, retry=FAST_RETRY)
    wrapped = cmk.wrap(DataKey.generate())
    tampered = WrappedDataKey(
        "KMS/ALICLOUD", wrapped.wrapped_key[:-1] + bytes([wrapped.wrapped_key[-1] ^ 1]), wrapped.wrapped_iv, {}
    )
    with pytest.raises(KeyUnwrapError):
        cmk.unwrap(tampered)


def test_unreachable_kms_fails_fast_and_does_not_leak_the_request(osscse_kms_server) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server, endpoint="127.0.0.1:1"), key_id="alias/x", retry=FAST_RETRY)
    started = time.monotonic()
    with pytest.raises(
        KeyServiceUnavailableError, match="Alibaba Cloud KMS is unavailable for CMK kms://kms_default/alias/x"
    ) as info:
        cmk.wrap(data_key := DataKey.generate())
    assert time.monotonic() - started < 3
    assert base64.b64encode(data_key.key).decode() not in str(info.value)


def test_kms_reference_resolves_through_the_airflow_connection(osscse_kms_server, kms_alias: str, monkeypatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_KMS_ORDERS",
        json.dumps(
            {
                "conn_type": "alicloud_kms",
                "login": osscse_kms_server.access_key_id,
                "password": osscse_kms_server.access_key_secret,
                "extra": {
                    "region": osscse_kms_server.region,
                    "endpoint": osscse_kms_server.endpoint,
                    "protocol": "http",
                },
            }
        ),
    )
    cmk = resolve_cmk(f"kms://kms_orders/{kms_alias}")
    data_key = DataKey.generate()
    assert cmk.unwrap(cmk.wrap(data_key)) == data_key
    assert AlicloudKmsHook(kms_conn_id="kms_orders").test_connection()[0] is True


def _primary_version(server, alias: str) -> str:
    from alibabacloud_kms20160120 import models

    request = models.DescribeKeyRequest(key_id=alias)
    return _client(server).describe_key(request).body.key_metadata.primary_key_version


def test_wrap_and_generate_record_the_kms_key_version(osscse_kms_server, kms_alias: str) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias)
    version = _primary_version(osscse_kms_server, kms_alias)
    assert cmk.key_version(cmk.wrap(DataKey.generate())) == version
    assert cmk.key_version(cmk.new_data_key()[1]) == version


def test_reencrypt_after_rotation_records_the_new_key_version(osscse_kms_server, kms_alias: str) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias)
    data_key = DataKey.generate()
    old = cmk.wrap(data_key)
    new_version = osscse_kms_server.rotate_key(kms_alias)
    new = cmk.rewrap(old)
    assert cmk.key_version(old) != new_version and cmk.key_version(new) == new_version
    assert cmk.unwrap(new) == data_key


def test_objects_without_a_recorded_version_report_none(osscse_kms_server, kms_alias: str) -> None:
    cmk = AlicloudKmsKey(_client(osscse_kms_server), key_id=kms_alias)
    wrapped = cmk.wrap(DataKey.generate())
    foreign = WrappedDataKey("KMS/ALICLOUD", wrapped.wrapped_key, wrapped.wrapped_iv, {})  # e.g. Java SDK
    assert cmk.key_version(foreign) is None


def test_encryption_context_key_reads_only_blobs_sealed_under_the_same_context(
    osscse_kms_server, kms_alias: str
) -> None:
    from airflow_provider_osscse.keys.alicloud_kms import oss2_passphrase_context

    client = _client(osscse_kms_server)
    with_pw = AlicloudKmsKey(
        client, key_id=kms_alias, encryption_context=oss2_passphrase_context("pw"), retry=FAST_RETRY
    )
    without = AlicloudKmsKey(client, key_id=kms_alias, retry=FAST_RETRY)
    data_key, wrapped = with_pw.new_data_key()
    assert with_pw.unwrap(wrapped) == data_key
    with pytest.raises(KeyUnwrapError):
        without.unwrap(wrapped)
    assert Keyring(without, [with_pw]).unwrap(wrapped) == data_key  # a keyring reads both kinds
    assert "pw" not in repr(with_pw)


def test_reencrypt_from_a_context_key_opens_with_the_source_context(osscse_kms_server, kms_alias: str) -> None:
    from airflow_provider_osscse.keys.alicloud_kms import oss2_passphrase_context

    client = _client(osscse_kms_server)
    with_pw = AlicloudKmsKey(client, key_id=kms_alias, encryption_context=oss2_passphrase_context("pw"))
    plain = AlicloudKmsKey(client, key_id=kms_alias)
    data_key = DataKey.generate()
    moved = plain.reencrypt_from(with_pw.wrap(data_key), source=with_pw)
    assert plain.unwrap(moved) == data_key


def test_sts_connection_wraps_with_its_security_token(osscse_kms_server, kms_alias: str, monkeypatch) -> None:
    access_key_id = f"STS.kms-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.add_credential(access_key_id, "sts-kms-secret", security_token="kms-sts-token")

    def connect(conn_id: str, **extra: str) -> None:
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps(
                {
                    "conn_type": "alicloud_kms",
                    "login": access_key_id,
                    "password": "sts-kms-secret",
                    "extra": {
                        "region": osscse_kms_server.region,
                        "endpoint": osscse_kms_server.endpoint,
                        "protocol": "http",
                        **extra,
                    },
                }
            ),
        )

    connect("kms_sts", security_token="kms-sts-token")
    connect("kms_sts_wrong", security_token="not-the-token")
    cmk = resolve_cmk(f"kms://kms_sts/{kms_alias}")
    data_key = DataKey.generate()
    assert cmk.unwrap(cmk.wrap(data_key)) == data_key
    wrong = AlicloudKmsHook(kms_conn_id="kms_sts_wrong").get_key(kms_alias, retry=FAST_RETRY)
    with pytest.raises(KeyPermissionError, match="rejected the credentials") as info:
        wrong.wrap(data_key)
    assert "not-the-token" not in str(info.value) and "sts-kms-secret" not in str(info.value)


# -- transport: plain http only to loopback -------------------------------------------------------


def _kms_connection(monkeypatch, conn_id: str, server, **extra: str) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}",
        json.dumps(
            {
                "conn_type": "alicloud_kms",
                "login": server.access_key_id,
                "password": server.access_key_secret,
                "extra": {"region": server.region, **extra},
            }
        ),
    )


@pytest.mark.parametrize(
    "endpoint",
    [
        "kms.cn-hangzhou.aliyuncs.com",
        "10.0.0.5:8080",
        "kms.internal:443",
        "http://192.168.1.10",
        "[2001:db8::1]:80",
        "localhost.evil.example",
    ],
)
def test_http_to_a_non_loopback_kms_endpoint_is_refused_naming_the_connection(
    osscse_kms_server, monkeypatch, endpoint: str
) -> None:
    _kms_connection(monkeypatch, "kms_plain_http", osscse_kms_server, endpoint=endpoint, protocol="HTTP")
    hook = AlicloudKmsHook(kms_conn_id="kms_plain_http")
    with pytest.raises(InsecureKmsConnectionError, match="kms_plain_http") as caught:
        hook.get_key("alias/x")
    assert "https" in str(caught.value) and "loopback" in str(caught.value)
    ok, message = hook.test_connection()
    assert ok is False and "kms_plain_http" in message and "https" in message
    with pytest.raises(InsecureKmsConnectionError):
        resolve_cmk("kms://kms_plain_http/alias/x")


def test_http_to_the_default_public_endpoint_is_refused(osscse_kms_server, monkeypatch) -> None:
    _kms_connection(monkeypatch, "kms_http_default", osscse_kms_server, protocol="http")
    with pytest.raises(InsecureKmsConnectionError, match=re.escape("kms.cn-hangzhou.aliyuncs.com")):
        _ = AlicloudKmsHook(kms_conn_id="kms_http_default").client  # building the client refuses


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_http_to_a_loopback_kms_endpoint_is_accepted(osscse_kms_server, kms_alias: str, monkeypatch, host: str) -> None:
    _kms_connection(
        monkeypatch, "kms_loopback", osscse_kms_server, endpoint=f"{host}:{osscse_kms_server.port}", protocol="http"
    )
    cmk = resolve_cmk(f"kms://kms_loopback/{kms_alias}")
    data_key = DataKey.generate()
    assert cmk.unwrap(cmk.wrap(data_key)) == data_key


def test_loopback_detection_covers_ipv6_and_rejects_look_alikes() -> None:
    from airflow_provider_osscse.keys.alicloud_kms import is_loopback_endpoint

    assert all(map(is_loopback_endpoint, ["[::1]:8080", "::1", "127.9.9.9", "LOCALHOST:1", "http://127.0.0.1:5"]))
    assert not any(map(is_loopback_endpoint, ["128.0.0.1", "127.0.0.1.nip.io", "localhost.example", "", "::2"]))
