"""CMK reference strings: parsing, errors naming the reference, resolution through Airflow connections."""

from __future__ import annotations

import json
from pathlib import Path

import hvac
import pytest

from airflow_provider_osscse.envelope.keywrap import DataKey
from airflow_provider_osscse.exceptions import CmkConnectionNotFoundError, CmkReferenceError, WeakRsaKeyError
from airflow_provider_osscse.keys.reference import parse_cmk_reference, resolve_cmk
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from tests.keys.rsa_forms import pem
from tests.keys.weak_rsa import weak_private_pem


@pytest.mark.parametrize(
    ("reference", "scheme", "conn", "mount", "name", "version"),
    [
        ("vault-transit://vault_default/transit/orders", "vault-transit", "vault_default", "transit", "orders", None),
        ("vault-transit://v/team/transit/orders", "vault-transit", "v", "team/transit", "orders", None),
        ("vault-kv://vault_default/secret/cse/rsa?version=3", "vault-kv", "vault_default", "secret", "cse/rsa", 3),
        ("kms://kms_default/alias/orders", "kms", "kms_default", "", "alias/orders", None),
        ("kms://kms_default/key-123", "kms", "kms_default", "", "key-123", None),
        ("rsa-file:///etc/keys/k.pem", "rsa-file", "", "", "/etc/keys/k.pem", None),
    ],
)
def test_valid_references_parse_into_their_parts(reference, scheme, conn, mount, name, version) -> None:
    ref = parse_cmk_reference(reference)
    assert (ref.scheme, ref.conn_id, ref.mount, ref.name, ref.version) == (scheme, conn, mount, name, version)


@pytest.mark.parametrize(
    "reference",
    [
        "orders",
        "s3://x/y",
        "vault-transit://vault_default/orders",
        "vault-transit:///transit/k",
        "vault-kv://v/secret/p?version=x",
        "vault-kv://v/secret/p?version=0",
        "kms://k/alias/a/b",
        "kms://k/key?version=1",
        "rsa-file://relative/key.pem",
        "vault-transit://v/transit//k",
        "rsa-file:///k.pem?allow_weak_key_for_unwrap=yes",
        "rsa-file:///k.pem?version=1",
        "vault-transit://v/transit/k?allow_weak_key_for_unwrap=1",
        "vault-kv://v/secret/p?allow_weak_key_for_unwrap=1&allow_weak_key_for_unwrap=1",
    ],
)
def test_malformed_or_unknown_references_raise_cmk_reference_error_naming_them(reference: str) -> None:
    with pytest.raises(CmkReferenceError, match="invalid CMK reference"):
        parse_cmk_reference(reference)


def test_missing_airflow_connection_is_a_cmk_reference_error() -> None:
    with pytest.raises(CmkConnectionNotFoundError, match="connection 'no_such_vault' is not defined") as caught:
        resolve_cmk("vault-transit://no_such_vault/transit/orders")
    assert isinstance(caught.value, CmkReferenceError)


def test_vault_transit_reference_resolves_through_the_real_airflow_vault_hook(
    osscse_openbao: OpenBaoServer, vault_root: hvac.Client, transit_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port = osscse_openbao.address.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_ORDERS_VAULT",
        json.dumps(
            {
                "conn_type": "vault",
                "host": host,
                "port": int(port),
                "password": osscse_openbao.root_token,
                "extra": {"auth_type": "token", "use_tls": False},
            }
        ),
    )
    cmk = resolve_cmk(f"vault-transit://orders_vault/transit/{transit_key}", matdesc={"team": "orders"})
    assert isinstance(cmk, VaultTransitKey)
    data_key = DataKey.generate()
    wrapped = cmk.wrap(data_key)
    assert dict(wrapped.matdesc) == {"team": "orders"}
    assert wrapped.cmk_identity == f"vault-transit:transit/{transit_key}"
    assert VaultTransitKey(vault_root, key_name=transit_key).unwrap(wrapped) == data_key


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8"])
def test_rsa_file_private_key_round_trips_a_content_key(tmp_path: Path, form: str) -> None:
    path = tmp_path / "key.pem"
    path.write_bytes(pem(0, form))
    cmk = resolve_cmk(f"rsa-file://{path}")
    assert cmk.wrap_alg == "RSA/NONE/PKCS1Padding"
    data_key = DataKey.generate()
    assert cmk.unwrap(cmk.wrap(data_key)) == data_key
    assert cmk.identity.startswith("rsa-sha256:") and str(path) not in cmk.identity
    assert str(path) not in json.dumps(dict(cmk.matdesc))


@pytest.mark.parametrize("form", ["x509", "pkcs1-public"])
def test_rsa_file_public_key_alone_is_encrypt_only(tmp_path: Path, form: str) -> None:
    public_path, private_path = tmp_path / "pub.pem", tmp_path / "priv.pem"
    public_path.write_bytes(pem(0, form))
    private_path.write_bytes(pem(0, "pkcs8"))
    writer = resolve_cmk(f"rsa-file://{public_path}")
    data_key = DataKey.generate()
    wrapped = writer.wrap(data_key)
    assert resolve_cmk(f"rsa-file://{private_path}").unwrap(wrapped) == data_key
    assert writer.matdesc == resolve_cmk(f"rsa-file://{private_path}").matdesc
    with pytest.raises(Exception, match="only a public key"):
        writer.unwrap(wrapped)


def test_weak_rsa_key_reads_only_with_the_explicit_reference_opt_in_and_never_wraps(tmp_path: Path) -> None:
    path = tmp_path / "weak.pem"
    path.write_bytes(weak_private_pem(1024))
    with pytest.raises(WeakRsaKeyError, match="1024-bit"):
        resolve_cmk(f"rsa-file://{path}")
    ref = f"rsa-file://{path}?allow_weak_key_for_unwrap=1"
    assert parse_cmk_reference(ref).allow_weak_key_for_unwrap
    weak = resolve_cmk(ref)
    with pytest.raises(WeakRsaKeyError):
        weak.wrap(DataKey.generate())
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    data_key = DataKey.generate()
    public = serialization.load_pem_private_key(path.read_bytes(), None).public_key()
    from airflow_provider_osscse.envelope.keywrap import WrappedDataKey

    legacy = WrappedDataKey(
        "RSA/NONE/PKCS1Padding",
        public.encrypt(data_key.key, padding.PKCS1v15()),
        public.encrypt(data_key.iv, padding.PKCS1v15()),
    )
    assert weak.unwrap(legacy) == data_key


def test_weak_key_pair_in_vault_kv_reads_only_with_the_reference_opt_in(
    osscse_openbao: OpenBaoServer, vault_root: hvac.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uuid

    host, port = osscse_openbao.address.removeprefix("http://").rsplit(":", 1)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WEAK_VAULT",
        json.dumps(
            {
                "conn_type": "vault",
                "host": host,
                "port": int(port),
                "password": osscse_openbao.root_token,
                "extra": {"auth_type": "token", "use_tls": False},
            }
        ),
    )
    path = f"cse/weak-{uuid.uuid4().hex[:8]}"
    vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": weak_private_pem(1024).decode()})
    with pytest.raises(WeakRsaKeyError):
        resolve_cmk(f"vault-kv://weak_vault/secret/{path}").wrap(DataKey.generate())
    weak = resolve_cmk(f"vault-kv://weak_vault/secret/{path}?allow_weak_key_for_unwrap=1")
    with pytest.raises(WeakRsaKeyError):
        weak.wrap(DataKey.generate())
