"""RSA key pairs in Vault KV v2: versions, pruned versions, encrypt-only secrets, every PEM form."""

from __future__ import annotations

import uuid

import hvac
import pytest

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import KeyNotFoundError, KeyUnwrapError, NoMatchingKeyError
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.vault_kv import VaultKvRsaKey
from tests.keys.conftest import FAST_RETRY
from tests.keys.rsa_forms import pem


def _secret_path() -> str:
    return f"cse/rsa-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize(
    ("private_form", "public_form"), [("pkcs1", "x509"), ("pkcs8", "pkcs1-public"), ("pkcs8", None)]
)
def test_kv_rsa_key_round_trips_in_every_pem_form(
    vault_root: hvac.Client, private_form: str, public_form: str | None
) -> None:
    path = _secret_path()
    secret = {"private_key": pem(0, private_form).decode()}
    if public_form:
        secret["public_key"] = pem(0, public_form).decode()
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret=secret)
    cmk = VaultKvRsaKey(vault_root, secret_path=path)
    data_key = DataKey.generate()
    wrapped = cmk.wrap(data_key)
    assert wrapped.wrap_alg == "RSA/NONE/PKCS1Padding"
    fingerprint_identity = LocalRsaKey(private_key_pem=pem(0, "pkcs8")).identity
    assert dict(wrapped.matdesc) == {}
    assert (wrapped.cmk_identity, wrapped.cmk_version) == (fingerprint_identity, "1")
    assert cmk.unwrap(wrapped) == data_key


def test_public_only_secret_is_encrypt_only(vault_root: hvac.Client) -> None:
    path = _secret_path()
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"public_key": pem(0, "x509").decode()})
    wrapped = VaultKvRsaKey(vault_root, secret_path=path).wrap(DataKey.generate())
    with pytest.raises(KeyUnwrapError, match="only a public key"):
        VaultKvRsaKey(vault_root, secret_path=path).unwrap(wrapped)


def test_objects_unwrap_with_the_kv_version_they_record_after_the_key_pair_rotates(vault_root: hvac.Client) -> None:
    path = _secret_path()
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": pem(0, "pkcs8").decode()})
    data_key = DataKey.generate()
    old = VaultKvRsaKey(vault_root, secret_path=path).wrap(data_key)
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": pem(1, "pkcs8").decode()})
    cmk = VaultKvRsaKey(vault_root, secret_path=path)
    new = cmk.wrap(data_key)
    assert cmk.key_version(new) == "2" and cmk.key_version(old) == "1"
    assert cmk.unwrap(old) == data_key and cmk.unwrap(new) == data_key
    pinned = VaultKvRsaKey(vault_root, secret_path=path, version=1)
    assert pinned.loaded_version() == 1 and pinned.wrap(data_key).cmk_version == "1"


def test_pruned_version_is_key_not_found_saying_so(vault_root: hvac.Client) -> None:
    path = _secret_path()
    vault_root.secrets.kv.v2.update_metadata(path=path, max_versions=1)
    for seed in (0, 1):
        vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": pem(seed, "pkcs8").decode()})
    with pytest.raises(KeyNotFoundError, match=r"version 1 of secret 'secret/data/cse/.*pruned by max_versions"):
        VaultKvRsaKey(vault_root, secret_path=path, version=1, retry=FAST_RETRY).loaded_version()


def test_missing_secret_is_key_not_found(vault_root: hvac.Client) -> None:
    with pytest.raises(KeyNotFoundError, match="not found"):
        VaultKvRsaKey(vault_root, secret_path="cse/nothing-here", retry=FAST_RETRY).wrap(DataKey.generate())


def test_writer_holding_only_the_public_key_secret_writes_objects_the_key_pair_secret_reads(
    vault_root: hvac.Client,
) -> None:
    """Seen: the identity was the secret's path, so a public-key-only writer's objects were refused
    by the private-key reader (NoMatchingKeyError), though writers need not read the private key."""
    public_path, pair_path = _secret_path(), _secret_path()
    vault_root.secrets.kv.v2.create_or_update_secret(path=public_path, secret={"public_key": pem(0, "x509").decode()})
    vault_root.secrets.kv.v2.create_or_update_secret(path=pair_path, secret={"private_key": pem(0, "pkcs8").decode()})
    writer = VaultKvRsaKey(vault_root, secret_path=public_path)
    reader = VaultKvRsaKey(vault_root, secret_path=pair_path)
    data_key = DataKey.generate()
    wrapped = writer.wrap(data_key)
    assert writer.identity == reader.identity == wrapped.cmk_identity
    assert reader.matches(wrapped) and reader.unwrap(wrapped) == data_key


def test_kv_identity_is_the_key_not_the_place_so_a_local_copy_of_the_pair_reads_it(vault_root: hvac.Client) -> None:
    path = _secret_path()
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": pem(0, "pkcs8").decode()})
    data_key = DataKey.generate()
    wrapped = VaultKvRsaKey(vault_root, secret_path=path).wrap(data_key)
    local = LocalRsaKey(private_key_pem=pem(0, "pkcs8"))
    assert local.matches(wrapped) and local.unwrap(wrapped) == data_key


def test_object_naming_another_rsa_key_is_not_matched(vault_root: hvac.Client) -> None:
    path = _secret_path()
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": pem(0, "pkcs8").decode()})
    other = LocalRsaKey(private_key_pem=pem(1, "pkcs8")).wrap(DataKey.generate())
    cmk = VaultKvRsaKey(vault_root, secret_path=path)
    assert not cmk.matches(other)
    with pytest.raises(NoMatchingKeyError, match="holds the key"):
        cmk.unwrap(other)


def test_objects_of_earlier_versions_naming_the_secret_path_still_unwrap(vault_root: hvac.Client) -> None:
    path = _secret_path()
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": pem(0, "pkcs8").decode()})
    cmk = VaultKvRsaKey(vault_root, secret_path=path)
    data_key = DataKey.generate()
    current = cmk.wrap(data_key)
    legacy = WrappedDataKey(
        current.wrap_alg,
        current.wrapped_key,
        current.wrapped_iv,
        cmk_identity=f"vault-kv:secret/{path}",
        cmk_version="1",
    )
    assert cmk.matches(legacy) and cmk.unwrap(legacy) == data_key
