"""Vault Transit CMK against a real OpenBao: round trips, least privilege, rotation, outages."""

from __future__ import annotations

import json
import pickle
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlsplit

import hvac
import hvac.exceptions
import pytest
import requests

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import (
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceError,
    KeyServiceUnavailableError,
    KeyUnwrapError,
)
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from tests.keys.conftest import FAST_RETRY


def test_wrap_then_unwrap_returns_the_same_content_key(vault_root: hvac.Client, transit_key: str) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    data_key = DataKey.generate()
    wrapped = cmk.wrap(data_key)
    assert wrapped.wrap_alg == "VAULT/TRANSIT"
    assert wrapped.wrapped_key.startswith(b"vault:v1:") and wrapped.wrapped_iv.startswith(b"vault:v1:")
    assert cmk.unwrap(wrapped) == data_key
    assert cmk.key_version(wrapped) == "v1"


def test_objects_name_the_key_identity_and_version_not_the_connection_and_matdesc_is_only_the_users(
    vault_root: hvac.Client, transit_key: str
) -> None:
    cmk = VaultTransitKey(
        vault_root,
        key_name=transit_key,
        reference=f"vault-transit://my_conn/transit/{transit_key}",
        matdesc={"team": "orders"},
    )
    assert cmk.identity == f"vault-transit:transit/{transit_key}"
    wrapped = cmk.new_data_key()[1]
    assert dict(wrapped.matdesc) == {"team": "orders"}
    assert wrapped.cmk_identity == f"vault-transit:transit/{transit_key}" and wrapped.cmk_version == "v1"
    assert "my_conn" not in json.dumps([dict(wrapped.matdesc), wrapped.cmk_identity, wrapped.cmk_version])
    other_conn = VaultTransitKey(vault_root, key_name=transit_key, reference="vault-transit://x/transit/k")
    assert other_conn.matches(wrapped)
    assert not VaultTransitKey(vault_root, key_name=f"{transit_key}-other").matches(wrapped)
    assert VaultTransitKey(vault_root, key_name=transit_key).wrap(DataKey.generate()).matdesc == {}


def test_batched_iv_wrapping_carries_identity_and_the_shared_version(vault_root: hvac.Client, transit_key: str) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key, matdesc={"team": "orders"})
    data_key = DataKey.generate()
    first = cmk.wrap_ivs(data_key.key, [data_key.iv])
    more = cmk.wrap_ivs(data_key.key, [DataKey.generate().iv], reuse=first[0])
    for wrapped in first + more:
        assert (wrapped.cmk_identity, wrapped.cmk_version) == (cmk.identity, "v1")
        assert dict(wrapped.matdesc) == {"team": "orders"}
    assert cmk.unwrap(first[0]) == data_key
    assert more[0].wrapped_key == first[0].wrapped_key


def test_encrypt_only_token_wraps_but_cannot_unwrap_and_says_which_capability_is_missing(
    vault_root: hvac.Client, transit_key: str, approle_client: Callable[[str], hvac.Client]
) -> None:
    writer = approle_client(
        f'path "transit/encrypt/{transit_key}" {{ capabilities = ["update"] }}\n'
        f'path "transit/keys/{transit_key}" {{ capabilities = ["read"] }}'
    )
    cmk = VaultTransitKey(writer, key_name=transit_key, retry=FAST_RETRY)
    wrapped = cmk.wrap(DataKey.generate())
    with pytest.raises(KeyPermissionError, match=f"lacks the 'update' capability on 'transit/decrypt/{transit_key}'"):
        cmk.unwrap(wrapped)


def test_decrypt_only_token_unwraps_but_cannot_wrap(
    vault_root: hvac.Client, transit_key: str, approle_client: Callable[[str], hvac.Client]
) -> None:
    data_key = DataKey.generate()
    wrapped = VaultTransitKey(vault_root, key_name=transit_key).wrap(data_key)
    reader = approle_client(f'path "transit/decrypt/{transit_key}" {{ capabilities = ["update"] }}')
    cmk = VaultTransitKey(reader, key_name=transit_key, retry=FAST_RETRY)
    assert cmk.unwrap(wrapped) == data_key
    with pytest.raises(KeyPermissionError, match=f"transit/keys/{transit_key}"):  # refused before encrypting
        cmk.wrap(data_key)
    with pytest.raises(hvac.exceptions.Forbidden):  # and Vault would refuse the encrypt itself
        reader.secrets.transit.encrypt_data(transit_key, plaintext="AAAA")


def test_writer_token_without_read_on_the_key_is_refused_before_encrypting_and_told_the_policy_line(
    vault_root: hvac.Client, transit_key: str, approle_client: Callable[[str], hvac.Client]
) -> None:
    writer = approle_client(f'path "transit/encrypt/{transit_key}" {{ capabilities = ["update"] }}')
    cmk = VaultTransitKey(
        writer, key_name=transit_key, retry=FAST_RETRY, reference=f"vault-transit://vault_writer/transit/{transit_key}"
    )
    with pytest.raises(KeyPermissionError) as info:
        cmk.wrap(DataKey.generate())
    message = str(info.value)
    assert f"lacks the 'read' capability on 'transit/keys/{transit_key}'" in message
    assert "'vault_writer'" in message and f'path "transit/keys/{transit_key}"' in message
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_missing_key_is_refused_before_any_encrypt_and_never_created(vault_root: hvac.Client) -> None:
    """A root token may upsert on encrypt: a typo'd key name must fail, not fork key custody."""
    name = f"typo-{uuid.uuid4().hex[:8]}"
    cmk = VaultTransitKey(
        vault_root, key_name=name, reference=f"vault-transit://vault_default/transit/{name}", retry=FAST_RETRY
    )
    data_key = DataKey.generate()
    for attempt in (lambda: cmk.wrap(data_key), cmk.new_data_key, lambda: cmk.wrap_ivs(data_key.key, [data_key.iv])):
        with pytest.raises(KeyNotFoundError) as info:
            attempt()
        message = str(info.value)
        assert f"Transit key '{name}' does not exist on mount 'transit'" in message
        assert "Vault connection 'vault_default'" in message
        assert f"bao write -f transit/keys/{name}" in message and f"vault write -f transit/keys/{name}" in message
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault_root.secrets.transit.read_key(name)


def test_missing_mount_is_key_not_found_naming_the_mount(vault_root: hvac.Client) -> None:
    cmk = VaultTransitKey(vault_root, mount="no-such-transit", key_name="orders", retry=FAST_RETRY)
    with pytest.raises(KeyNotFoundError, match="on mount 'no-such-transit'"):
        cmk.wrap(DataKey.generate())


def test_key_existence_is_read_once_per_instance_and_only_a_positive_answer_is_kept(
    osscse_openbao: OpenBaoServer, vault_root: hvac.Client
) -> None:
    name = f"later-{uuid.uuid4().hex[:8]}"
    session = requests.Session()
    seen: list[str] = []
    session.hooks["response"].append(lambda r, *a, **k: seen.append(f"{r.request.method} {urlsplit(r.url).path}"))
    client = hvac.Client(url=osscse_openbao.address, token=osscse_openbao.root_token, session=session)
    cmk = VaultTransitKey(client, key_name=name, retry=FAST_RETRY)
    with pytest.raises(KeyNotFoundError):
        cmk.wrap(DataKey.generate())
    vault_root.secrets.transit.create_key(name)  # the operator fixes it; the same instance now works
    for _ in range(3):
        cmk.wrap(DataKey.generate())
    cmk.wrap_ivs(DataKey.generate().key, [DataKey.generate().iv])
    assert seen.count(f"GET /v1/transit/keys/{name}") == 2  # the refusal, then one positive answer
    assert seen.count(f"POST /v1/transit/encrypt/{name}") == 4


def test_a_signing_only_key_is_refused_for_wrapping(vault_root: hvac.Client) -> None:
    name = f"sign-{uuid.uuid4().hex[:8]}"
    vault_root.secrets.transit.create_key(name, key_type="ed25519")
    with pytest.raises(KeyServiceError, match="type 'ed25519', which cannot encrypt"):
        VaultTransitKey(vault_root, key_name=name, retry=FAST_RETRY).wrap(DataKey.generate())


def test_reader_and_rotator_need_no_read_on_the_key(
    vault_root: hvac.Client, transit_key: str, approle_client: Callable[[str], hvac.Client]
) -> None:
    data_key = DataKey.generate()
    wrapped = VaultTransitKey(vault_root, key_name=transit_key).wrap(data_key)
    vault_root.secrets.transit.rotate_key(transit_key)
    rotator = VaultTransitKey(
        approle_client(f'path "transit/rewrap/{transit_key}" {{ capabilities = ["update"] }}'),
        key_name=transit_key,
        retry=FAST_RETRY,
    )
    rewrapped = rotator.rewrap(wrapped)
    assert rewrapped.cmk_version == "v2"
    with pytest.raises(KeyPermissionError, match=f"transit/decrypt/{transit_key}"):
        rotator.unwrap(rewrapped)
    reader = VaultTransitKey(
        approle_client(f'path "transit/decrypt/{transit_key}" {{ capabilities = ["update"] }}'),
        key_name=transit_key,
        retry=FAST_RETRY,
    )
    assert reader.unwrap(rewrapped) == data_key


def test_rewrap_moves_to_the_new_version_and_keeps_the_objects_user_matdesc(
    vault_root: hvac.Client, transit_key: str
) -> None:
    writer = VaultTransitKey(vault_root, key_name=transit_key, matdesc={"team": "orders"})
    data_key = DataKey.generate()
    written = writer.wrap(data_key)
    unrecorded = WrappedDataKey("VAULT/TRANSIT", written.wrapped_key, written.wrapped_iv, {"team": "orders"})
    vault_root.secrets.transit.rotate_key(transit_key)
    rotator = VaultTransitKey(vault_root, key_name=transit_key, matdesc={"other": "entry"})
    for source in (written, unrecorded):
        new = rotator.rewrap(source)
        assert new.wrapped_key.startswith(b"vault:v2:") and new.cmk_version == "v2"
        assert new.cmk_identity == f"vault-transit:transit/{transit_key}"
        assert dict(new.matdesc) == {"team": "orders"}
        assert rotator.unwrap(new) == data_key


def test_key_version_reads_the_ciphertext_prefix_also_for_objects_without_a_recorded_version(
    vault_root: hvac.Client, transit_key: str
) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    wrapped = cmk.wrap(DataKey.generate())
    unrecorded = WrappedDataKey("VAULT/TRANSIT", wrapped.wrapped_key, wrapped.wrapped_iv, {})
    assert unrecorded.cmk_version is None and cmk.key_version(unrecorded) == "v1"
    mislabelled = WrappedDataKey("VAULT/TRANSIT", wrapped.wrapped_key, wrapped.wrapped_iv, {}, cmk_version="v9")
    assert cmk.key_version(mislabelled) == "v1"  # the ciphertext, not an unauthenticated header, decides


def test_rotation_then_rewrap_moves_to_v2_without_exposing_the_key_and_old_still_unwraps(
    vault_root: hvac.Client, transit_key: str
) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    data_key = DataKey.generate()
    old = cmk.wrap(data_key)
    vault_root.secrets.transit.rotate_key(transit_key)
    new = cmk.rewrap(old)
    assert new.wrapped_key.startswith(b"vault:v2:") and cmk.key_version(new) == "v2"
    assert cmk.unwrap(new) == data_key
    assert cmk.unwrap(old) == data_key


def test_wrong_transit_key_fails_with_unwrap_error(vault_root: hvac.Client, transit_key: str) -> None:
    vault_root.secrets.transit.create_key(f"{transit_key}-other")
    wrapped = VaultTransitKey(vault_root, key_name=transit_key).wrap(DataKey.generate())
    wrong = VaultTransitKey(vault_root, key_name=f"{transit_key}-other", retry=FAST_RETRY)
    with pytest.raises(KeyUnwrapError, match="could not unwrap"):
        wrong.unwrap(wrapped)
    garbage = WrappedDataKey("VAULT/TRANSIT", b"\xff\x00", b"x", {})
    with pytest.raises(KeyUnwrapError):
        wrong.unwrap(garbage)


def test_missing_transit_key_is_key_not_found(vault_root: hvac.Client) -> None:
    wrapped = WrappedDataKey("VAULT/TRANSIT", b"vault:v1:AAAA", b"vault:v1:AAAA", {})
    with pytest.raises(KeyNotFoundError, match="does not exist"):
        VaultTransitKey(vault_root, key_name="no-such-key", retry=FAST_RETRY).unwrap(wrapped)


def test_unreachable_vault_fails_fast_after_bounded_retries() -> None:
    client = hvac.Client(url="http://127.0.0.1:1", token="s.not-a-real-token-but-secret")
    cmk = VaultTransitKey(
        client, key_name="orders", reference="vault-transit://vault_default/transit/orders", retry=FAST_RETRY
    )
    started = time.monotonic()
    with pytest.raises(
        KeyServiceUnavailableError,
        match=r"Vault is unavailable for CMK vault-transit://vault_default/transit/orders after 3 attempt",
    ) as info:
        cmk.wrap(DataKey.generate())
    assert time.monotonic() - started < 2
    assert "not-a-real-token" not in str(info.value)


def test_error_text_never_contains_plaintext_of_other_batch_items(vault_root: hvac.Client, transit_key: str) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key, retry=FAST_RETRY)
    data_key = DataKey.generate()
    good = cmk.wrap(data_key)
    half_bad = WrappedDataKey("VAULT/TRANSIT", b"vault:v1:AAAA", good.wrapped_iv, good.matdesc)
    with pytest.raises(KeyUnwrapError) as info:
        cmk.unwrap(half_bad)
    import base64

    rendered = repr(info.value) + str(info.value.__context__) + str(info.value.__cause__)
    assert base64.b64encode(data_key.iv).decode() not in rendered


def test_provider_refuses_pickling_and_repr_shows_only_the_reference(vault_root: hvac.Client) -> None:
    cmk = VaultTransitKey(vault_root, key_name="k", reference="vault-transit://vault_default/transit/k")
    assert repr(cmk) == "VaultTransitKey('vault-transit://vault_default/transit/k')"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(cmk)
