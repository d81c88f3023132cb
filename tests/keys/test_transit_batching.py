"""Vault Transit serves many objects per call: calls counted at OpenBao's own audit log.

Issue 13: a fleet operation makes one key-service call per group of objects (``batch_input``), not
per object; one object's failure is that object's result, never the others'; a rotation decides
current or stale from headers and the key's newest version, and a Transit → Transit rewrap never
brings a data key to the worker (no ``decrypt`` call at all).
"""

from __future__ import annotations

import dataclasses
import math

import hvac
import pytest

from airflow_provider_osscse.envelope.keywrap import DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.exceptions import KeyPermissionError, KeyUnwrapError, NoMatchingKeyError
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from airflow_provider_osscse.keys.vault_transit_batch import TRANSIT_BATCH_OBJECTS
from airflow_provider_osscse.testing.openbao import OpenBaoAuditLog

OBJECTS = 2 * TRANSIT_BATCH_OBJECTS + 7  # three calls: two full batches and a short one
CALLS = math.ceil(OBJECTS / TRANSIT_BATCH_OBJECTS)


def _calls(audit: OpenBaoAuditLog, op: str, key: str) -> int:
    return audit.requests(f"transit/{op}/{key}")


def test_new_data_keys_wraps_a_group_of_objects_in_one_encrypt_call_per_batch(
    vault_root: hvac.Client, transit_key: str, osscse_openbao_audit: OpenBaoAuditLog
) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    made = cmk.new_data_keys([DataKeyRequest()] * OBJECTS)
    assert len(made) == OBJECTS
    assert _calls(osscse_openbao_audit, "encrypt", transit_key) == CALLS
    assert len({dk.key for dk, _ in made}) == OBJECTS, "every object gets its own data key"
    assert all(w.cmk_version == "v1" and w.cmk_identity == cmk.identity for _, w in made)


def test_unwrap_many_is_one_decrypt_call_per_batch_and_a_corrupted_object_fails_alone(
    vault_root: hvac.Client, transit_key: str, osscse_openbao_audit: OpenBaoAuditLog
) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    made = cmk.new_data_keys([DataKeyRequest()] * OBJECTS)
    wrapped = [w for _, w in made]
    bad = TRANSIT_BATCH_OBJECTS + 3  # in the second call
    wrapped[bad] = dataclasses.replace(wrapped[bad], wrapped_key=b"vault:v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    wrapped[5] = dataclasses.replace(wrapped[5], wrapped_iv=b"\xff not a vault ciphertext")
    outcomes = cmk.unwrap_many(wrapped)
    assert _calls(osscse_openbao_audit, "decrypt", transit_key) == CALLS
    assert isinstance(outcomes[bad], KeyUnwrapError) and isinstance(outcomes[5], KeyUnwrapError)
    for index, ((data_key, _), outcome) in enumerate(zip(made, outcomes, strict=True)):
        if index not in (bad, 5):
            assert outcome == data_key


def test_a_batch_call_that_fails_as_a_whole_is_reported_for_each_of_its_objects(
    vault_root: hvac.Client, transit_key: str, approle_client
) -> None:
    """A token that may not decrypt: every object says so (nothing silently dropped)."""
    made = VaultTransitKey(vault_root, key_name=transit_key).new_data_keys([DataKeyRequest()] * 3)
    reader = VaultTransitKey(approle_client('path "sys/*" { capabilities = ["deny"] }'), key_name=transit_key)
    outcomes = reader.unwrap_many([w for _, w in made])
    assert len(outcomes) == 3 and all(isinstance(o, KeyPermissionError) for o in outcomes)


def test_rewrap_many_after_rotation_uses_batched_transit_rewrap_and_never_decrypts(
    vault_root: hvac.Client, transit_key: str, osscse_openbao_audit: OpenBaoAuditLog
) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    made = cmk.new_data_keys([DataKeyRequest()] * OBJECTS)
    vault_root.secrets.transit.rotate_key(transit_key)
    rotated = VaultTransitKey(vault_root, key_name=transit_key)
    assert rotated.latest_version() == "v2"
    assert not any(rotated.is_current(w, "v2") for _, w in made)
    outcomes = Keyring(rotated).rewrap_many([w for _, w in made])
    assert _calls(osscse_openbao_audit, "rewrap", transit_key) == CALLS
    assert _calls(osscse_openbao_audit, "decrypt", transit_key) == 0, "a data key left Vault"
    assert all(
        isinstance(o, WrappedDataKey) and o.cmk_version == "v2" and rotated.is_current(o, "v2") for o in outcomes
    )
    assert rotated.unwrap_many([o for o in outcomes if isinstance(o, WrappedDataKey)][:3]) == [dk for dk, _ in made[:3]]


def test_latest_version_is_one_key_read_and_current_or_stale_is_then_told_from_headers_alone(
    vault_root: hvac.Client, transit_key: str, osscse_openbao_audit: OpenBaoAuditLog
) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    _, wrapped = cmk.new_data_keys([DataKeyRequest()] * 1)[0]
    reads = osscse_openbao_audit.requests(f"transit/keys/{transit_key}")
    latest = cmk.latest_version()
    assert osscse_openbao_audit.requests(f"transit/keys/{transit_key}") == reads + 1
    calls = osscse_openbao_audit.requests("transit/")
    assert all(cmk.is_current(wrapped, latest) for _ in range(100))
    assert osscse_openbao_audit.requests("transit/") == calls, "is_current called the key service"
    vault_root.secrets.transit.rotate_key(transit_key)
    assert not cmk.is_current(wrapped, cmk.latest_version()), "a rotation is seen by the next read"


def test_keyring_unwraps_each_members_objects_in_its_own_batch_and_reports_unknown_cmks_per_object(
    vault_root: hvac.Client, transit_key: str, osscse_openbao_audit: OpenBaoAuditLog
) -> None:
    transit = VaultTransitKey(vault_root, key_name=transit_key)
    rsa = LocalRsaKey.generate(reference="rsa-batch")
    stranger = LocalRsaKey.generate(reference="rsa-stranger")
    items = [
        *transit.new_data_keys([DataKeyRequest()] * 4),
        rsa.new_data_key(),
        stranger.new_data_key(),
        *transit.new_data_keys([DataKeyRequest()] * 2),
    ]
    before = _calls(osscse_openbao_audit, "decrypt", transit_key)
    outcomes = Keyring(rsa, [transit]).unwrap_many([w for _, w in items])
    assert _calls(osscse_openbao_audit, "decrypt", transit_key) == before + 1
    assert isinstance(outcomes[5], NoMatchingKeyError)
    assert [o for i, o in enumerate(outcomes) if i != 5] == [dk for i, (dk, _) in enumerate(items) if i != 5]


@pytest.mark.parametrize("count", [0, 1])
def test_the_one_object_methods_are_the_batch_of_one(count: int, vault_root: hvac.Client, transit_key: str) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    assert cmk.unwrap_many([]) == [] and cmk.new_data_keys([DataKeyRequest()] * 0) == []
    if count:
        data_key = DataKey.generate()
        assert cmk.unwrap(cmk.wrap(data_key)) == data_key
