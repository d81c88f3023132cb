"""Vault Transit CMK against a real OpenBao: round trips, least privilege, rotation, outages."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable

import hvac
import pytest

from airflow_provider_osscse.envelope.errors import (
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceUnavailableError,
    KeyUnwrapError,
)
from airflow_provider_osscse.envelope.keywrap import ContentKey, WrappedContentKey
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from tests.keys.conftest import FAST_RETRY


def test_wrap_then_unwrap_returns_the_same_content_key(vault_root: hvac.Client, transit_key: str) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    content_key = ContentKey.generate()
    wrapped = cmk.wrap(content_key)
    assert wrapped.wrap_alg == "VAULT/TRANSIT"
    assert wrapped.wrapped_key.startswith(b"vault:v1:") and wrapped.wrapped_iv.startswith(b"vault:v1:")
    assert cmk.unwrap(wrapped) == content_key
    assert cmk.key_version(wrapped) == "v1"


def test_matdesc_names_the_key_identity_not_the_connection_and_keeps_user_entries(
    vault_root: hvac.Client, transit_key: str
) -> None:
    cmk = VaultTransitKey(
        vault_root, key_name=transit_key, reference=f"vault-transit://my_conn/transit/{transit_key}",
        matdesc={"team": "orders"},
    )
    wrapped = cmk.new_content_key()[1]
    assert dict(wrapped.matdesc) == {"osscse-cmk": f"vault-transit:transit/{transit_key}", "team": "orders"}
    assert "my_conn" not in json.dumps(dict(wrapped.matdesc))
    other_conn = VaultTransitKey(vault_root, key_name=transit_key, reference="vault-transit://x/transit/k")
    assert other_conn.matches(wrapped)


def test_encrypt_only_token_wraps_but_cannot_unwrap_and_says_which_capability_is_missing(
    vault_root: hvac.Client, transit_key: str, approle_client: Callable[[str], hvac.Client]
) -> None:
    writer = approle_client(f'path "transit/encrypt/{transit_key}" {{ capabilities = ["update"] }}')
    cmk = VaultTransitKey(writer, key_name=transit_key, retry=FAST_RETRY)
    wrapped = cmk.wrap(ContentKey.generate())
    with pytest.raises(KeyPermissionError, match=f"lacks the 'update' capability on 'transit/decrypt/{transit_key}'"):
        cmk.unwrap(wrapped)


def test_decrypt_only_token_unwraps_but_cannot_wrap(
    vault_root: hvac.Client, transit_key: str, approle_client: Callable[[str], hvac.Client]
) -> None:
    content_key = ContentKey.generate()
    wrapped = VaultTransitKey(vault_root, key_name=transit_key).wrap(content_key)
    reader = approle_client(f'path "transit/decrypt/{transit_key}" {{ capabilities = ["update"] }}')
    cmk = VaultTransitKey(reader, key_name=transit_key, retry=FAST_RETRY)
    assert cmk.unwrap(wrapped) == content_key
    with pytest.raises(KeyPermissionError, match=f"transit/encrypt/{transit_key}"):
        cmk.wrap(content_key)


def test_rotation_then_rewrap_moves_to_v2_without_exposing_the_key_and_old_still_unwraps(
    vault_root: hvac.Client, transit_key: str
) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key)
    content_key = ContentKey.generate()
    old = cmk.wrap(content_key)
    vault_root.secrets.transit.rotate_key(transit_key)
    new = cmk.rewrap(old)
    assert new.wrapped_key.startswith(b"vault:v2:") and cmk.key_version(new) == "v2"
    assert cmk.unwrap(new) == content_key
    assert cmk.unwrap(old) == content_key


def test_wrong_transit_key_fails_with_unwrap_error(vault_root: hvac.Client, transit_key: str) -> None:
    vault_root.secrets.transit.create_key(f"{transit_key}-other")
    wrapped = VaultTransitKey(vault_root, key_name=transit_key).wrap(ContentKey.generate())
    wrong = VaultTransitKey(vault_root, key_name=f"{transit_key}-other", retry=FAST_RETRY)
    with pytest.raises(KeyUnwrapError, match="could not unwrap"):
        wrong.unwrap(wrapped)
    garbage = WrappedContentKey("VAULT/TRANSIT", b"\xff\x00", b"x", {})
    with pytest.raises(KeyUnwrapError):
        wrong.unwrap(garbage)


def test_missing_transit_key_is_key_not_found(vault_root: hvac.Client) -> None:
    wrapped = WrappedContentKey("VAULT/TRANSIT", b"vault:v1:AAAA", b"vault:v1:AAAA", {})
    with pytest.raises(KeyNotFoundError, match="does not exist"):
        VaultTransitKey(vault_root, key_name="no-such-key", retry=FAST_RETRY).unwrap(wrapped)


def test_unreachable_vault_fails_fast_after_bounded_retries() -> None:
    client = hvac.Client(url="http://127.0.0.1:1", token="s.not-a-real-token-but-secret")
    cmk = VaultTransitKey(client, key_name="orders", reference="vault-transit://vault_default/transit/orders",
                          retry=FAST_RETRY)
    started = time.monotonic()
    with pytest.raises(KeyServiceUnavailableError, match=r"Vault is unavailable for CMK vault-transit://vault_default/transit/orders after 3 attempt") as info:
        cmk.wrap(ContentKey.generate())
    assert time.monotonic() - started < 2
    assert "not-a-real-token" not in str(info.value)


def test_error_text_never_contains_plaintext_of_other_batch_items(vault_root: hvac.Client, transit_key: str) -> None:
    cmk = VaultTransitKey(vault_root, key_name=transit_key, retry=FAST_RETRY)
    content_key = ContentKey.generate()
    good = cmk.wrap(content_key)
    half_bad = WrappedContentKey("VAULT/TRANSIT", b"vault:v1:AAAA", good.wrapped_iv, good.matdesc)
    with pytest.raises(KeyUnwrapError) as info:
        cmk.unwrap(half_bad)
    import base64

    rendered = repr(info.value) + str(info.value.__context__) + str(info.value.__cause__)
    assert base64.b64encode(content_key.iv).decode() not in rendered


def test_provider_refuses_pickling_and_repr_shows_only_the_reference(vault_root: hvac.Client) -> None:
    cmk = VaultTransitKey(vault_root, key_name="k", reference="vault-transit://vault_default/transit/k")
    assert repr(cmk) == "VaultTransitKey('vault-transit://vault_default/transit/k')"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(cmk)
