"""Small interfaces instead of type switches: what a CMK needs travels in a request, and rewrap is a
method every CMK implements, so keyrings and caches around a CMK change nothing about how it works.

Calls are counted where the services see them: every HTTP request of the hvac client (OpenBao) and
every KMS action of the Tea client (the local KMS server).
"""

from __future__ import annotations

import dataclasses
import uuid

import hvac
import pytest
from alibabacloud_kms20160120.client import Client as KmsClient
from alibabacloud_tea_openapi.utils_models import Config

from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.envelope.writer import EnvelopeWriter
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey
from airflow_provider_osscse.keys.caching_cmk import with_data_key_cache
from airflow_provider_osscse.keys.data_key_cache import DataKeyCacheLimits
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.unwrap_cache import UnwrapCacheLimits
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from tests.keys.rsa_forms import pem
from tests.keys.test_data_key_cache import CountingAdapter, CountingKmsClient

SMALL = 1024


def _cached(cmk: Cmk) -> Cmk:
    """``cmk`` behind both caches, as a hook built with ``data_key_cache=`` holds it."""
    return with_data_key_cache(cmk, DataKeyCacheLimits(), unwrap_limits=UnwrapCacheLimits())


def _counted_vault(server: OpenBaoServer, vault_root: hvac.Client) -> hvac.Client:
    return hvac.Client(url=server.address, token=vault_root.token, adapter=CountingAdapter)


def _calls(client: hvac.Client, op: str, key_name: str) -> int:
    return client.adapter.calls[f"POST v1/transit/{op}/{key_name}"]  # type: ignore[attr-defined, no-any-return]


def test_a_keyring_of_cached_transit_keys_rewraps_inside_vault_and_never_decrypts(
    osscse_openbao: OpenBaoServer,
    vault_root: hvac.Client,
    transit_key: str,
) -> None:
    client = _counted_vault(osscse_openbao, vault_root)
    writer = VaultTransitKey(client, key_name=transit_key)
    data_key = DataKey.generate()
    old = writer.wrap(data_key)
    vault_root.secrets.transit.rotate_key(transit_key)
    rotator = Keyring(_cached(VaultTransitKey(client, key_name=transit_key)))
    client.adapter.calls.clear()  # type: ignore[attr-defined]
    new = rotator.rewrap(old)
    assert new.wrapped_key.startswith(b"vault:v2:") and new.cmk_version == "v2"
    assert _calls(client, "rewrap", transit_key) == 1
    assert _calls(client, "decrypt", transit_key) == 0 and _calls(client, "encrypt", transit_key) == 0
    assert writer.unwrap(new) == data_key


def test_between_two_transit_keys_the_data_key_is_unwrapped_then_wrapped_once(
    osscse_openbao: OpenBaoServer,
    vault_root: hvac.Client,
    transit_key: str,
) -> None:
    other = f"{transit_key}-target"
    vault_root.secrets.transit.create_key(other)
    client = _counted_vault(osscse_openbao, vault_root)
    source, target = VaultTransitKey(client, key_name=transit_key), VaultTransitKey(client, key_name=other)
    data_key = DataKey.generate()
    wrapped = source.wrap(data_key)
    client.adapter.calls.clear()  # type: ignore[attr-defined]
    moved = Keyring(_cached(target), [_cached(source)]).rewrap(wrapped)
    assert moved.cmk_identity == f"vault-transit:transit/{other}"
    assert (_calls(client, "decrypt", transit_key), _calls(client, "encrypt", other)) == (1, 1)
    assert _calls(client, "rewrap", other) == _calls(client, "rewrap", transit_key) == 0
    assert target.unwrap(moved) == data_key


@pytest.fixture
def kms_pair(osscse_kms_server) -> tuple[CountingKmsClient, AlicloudKmsKey, AlicloudKmsKey]:
    """Two keys of one KMS, reached through one counted client."""
    aliases = [f"alias/cmk-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    for alias in aliases:
        osscse_kms_server.create_key(alias=alias)
    counted = CountingKmsClient(
        KmsClient(
            Config(
                access_key_id=osscse_kms_server.access_key_id,
                access_key_secret=osscse_kms_server.access_key_secret,
                endpoint=osscse_kms_server.endpoint,
                protocol="http",
                region_id=osscse_kms_server.region,
            )
        )
    )
    a, b = (AlicloudKmsKey(counted, key_id=alias, endpoint=osscse_kms_server.endpoint) for alias in aliases)
    return counted, a, b


def test_a_keyring_of_cached_kms_keys_moves_data_keys_with_reencrypt_and_never_decrypts(
    kms_pair: tuple[CountingKmsClient, AlicloudKmsKey, AlicloudKmsKey],
) -> None:
    counted, source, target = kms_pair
    data_key = DataKey.generate()
    wrapped = source.wrap(data_key)
    counted.calls.clear()
    moved = Keyring(_cached(target), [_cached(source)]).rewrap(wrapped)
    assert counted.calls["ReEncrypt"] == 2  # the data key and the IV
    assert counted.calls["Decrypt"] == counted.calls["Encrypt"] == 0  # (DescribeKey resolves the target's pin)
    assert moved.cmk_identity == target.identity
    assert target.unwrap(moved) == data_key


def test_a_cmk_overriding_nothing_rewraps_by_unwrap_and_wrap_through_the_wrappers(
    osscse_openbao: OpenBaoServer,
    vault_root: hvac.Client,
    transit_key: str,
) -> None:
    client = _counted_vault(osscse_openbao, vault_root)
    rsa = LocalRsaKey(private_key_pem=pem(0, "pkcs8"), reference="rsa-0")
    transit = VaultTransitKey(client, key_name=transit_key)
    data_key = DataKey.generate()
    moved = Keyring(_cached(transit), [_cached(rsa)]).rewrap(rsa.wrap(data_key))
    assert moved.wrap_alg == "VAULT/TRANSIT" and _calls(client, "rewrap", transit_key) == 0
    assert transit.unwrap(moved) == data_key


def test_the_data_key_request_reaches_the_cache_through_a_keyring_and_the_writer() -> None:
    """The object's size travels in the request whatever holds the cache: objects share its data key."""
    rsa = LocalRsaKey(private_key_pem=pem(1, "pkcs8"), reference="rsa-1")
    keyring = Keyring(_cached(rsa))
    request = DataKeyRequest(plaintext_size=SMALL)
    writers = [EnvelopeWriter(keyring, object_name=f"o{i}", data_key_request=request) for i in range(3)]
    wrapped: list[WrappedDataKey] = [w.wrapped for w in writers]
    assert len({w.wrapped_key for w in wrapped}) == 1, "one cached data key for three small objects"
    assert len({w.wrapped_iv for w in wrapped}) == 3, "each object its own IV"
    unknown_size = [keyring.new_data_key(DataKeyRequest())[1] for _ in range(2)] + [keyring.new_data_key()[1]]
    assert len({w.wrapped_key for w in unknown_size}) == 3, "no size, no sharing"
    assert all(rsa.unwrap(w).key == rsa.unwrap(wrapped[0]).key for w in wrapped)


def test_a_data_key_request_is_frozen_and_optional_in_every_field() -> None:
    request = DataKeyRequest()
    assert request.plaintext_size is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.plaintext_size = 1  # type: ignore[misc]
