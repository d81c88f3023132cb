"""Keyring selection by matdesc and rotation across CMKs (cache tests: ``test_data_key_cache.py``)."""

from __future__ import annotations

import hvac
import pytest

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import NoMatchingKeyError
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.rotation import rewrap_data_key, rewrap_to_latest
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from tests.keys.counting_key import CountingKey
from tests.keys.rsa_forms import pem


def _rsa(seed: int, **matdesc: str) -> LocalRsaKey:
    return LocalRsaKey(private_key_pem=pem(seed, "pkcs8"), reference=f"rsa-{seed}", matdesc=matdesc)


def test_keyring_picks_the_cmk_named_by_matdesc(vault_root: hvac.Client, transit_key: str) -> None:
    vault_root.secrets.transit.create_key(f"{transit_key}-b")
    a = CountingKey(VaultTransitKey(vault_root, key_name=transit_key))
    b = CountingKey(VaultTransitKey(vault_root, key_name=f"{transit_key}-b"))
    keyring = Keyring(a, [b])
    data_key = DataKey.generate()
    wrapped_b = b.wrap(data_key)
    assert keyring.unwrap(wrapped_b) == data_key
    assert (a.unwraps, b.unwraps) == (0, 1)
    assert keyring.wrap(data_key).cmk_identity == f"vault-transit:transit/{transit_key}"


def test_keyring_refuses_an_object_naming_a_cmk_it_does_not_hold(vault_root: hvac.Client, transit_key: str) -> None:
    keyring = Keyring(VaultTransitKey(vault_root, key_name=transit_key))
    foreign = WrappedDataKey("VAULT/TRANSIT", b"vault:v1:x", b"vault:v1:y", cmk_identity="vault-transit:transit/other")
    with pytest.raises(NoMatchingKeyError, match="vault-transit:transit/other"):
        keyring.unwrap(foreign)


def test_official_sdk_objects_without_matdesc_fall_back_by_wrap_alg_within_the_bound() -> None:
    keys = [CountingKey(_rsa(seed)) for seed in (0, 1, 2)]
    data_key = DataKey.generate()
    sdk_like = keys[2].wrap(data_key)
    sdk_like = WrappedDataKey(sdk_like.wrap_alg, sdk_like.wrapped_key, sdk_like.wrapped_iv, {})
    assert Keyring(keys[0], keys[1:], max_fallback_attempts=3).unwrap(sdk_like) == data_key
    bounded = Keyring(keys[0], keys[1:], max_fallback_attempts=2)
    before = [k.unwraps for k in keys]
    with pytest.raises(Exception, match="none of 2 candidate"):
        bounded.unwrap(sdk_like)
    assert [k.unwraps - b for k, b in zip(keys, before, strict=True)] == [1, 1, 0]


def test_fallback_prefers_the_member_sharing_the_objects_matdesc_entries() -> None:
    first, second = CountingKey(_rsa(0, desc="a")), CountingKey(_rsa(1, desc="b"))
    data_key = DataKey.generate()
    wrapped = second.wrap(data_key)  # LocalRsaKey writes {"desc": "b"} as an official SDK would
    assert Keyring(first, [second], max_fallback_attempts=1).unwrap(wrapped) == data_key
    assert first.unwraps == 0


def test_rotation_moves_an_rsa_wrapped_key_to_vault_transit_in_memory(
    vault_root: hvac.Client, transit_key: str
) -> None:
    rsa_key, transit = _rsa(0), VaultTransitKey(vault_root, key_name=transit_key)
    data_key = DataKey.generate()
    moved = rewrap_data_key(rsa_key.wrap(data_key), source=rsa_key, target=transit)
    assert moved.wrap_alg == "VAULT/TRANSIT" and transit.unwrap(moved) == data_key


def test_rotation_within_one_transit_key_uses_vault_rewrap(vault_root: hvac.Client, transit_key: str) -> None:
    transit = CountingKey(VaultTransitKey(vault_root, key_name=transit_key))
    data_key = DataKey.generate()
    old = transit.wrap(data_key)
    vault_root.secrets.transit.rotate_key(transit_key)
    keyring = Keyring(transit.inner)
    new = keyring.rewrap(old)
    assert new.wrapped_key.startswith(b"vault:v2:") and transit.inner.unwrap(new) == data_key
    assert rewrap_to_latest(new, transit.inner).wrapped_key.startswith(b"vault:v2:")
    assert transit.unwraps == 0
