"""The least-privilege policies of ``docs/key-custody.md``, run as written.

Every Vault policy of the section "Least privilege: policies per role" is extracted from the docs
(so the docs and this test cannot drift), its example names replaced by fresh ones (each test gets
its own Transit key / KV secrets, so no test depends on another's key state), written into the
session's OpenBao and turned into a token. Each role then goes through the real path: an Airflow
``vault`` connection holding that token, ``EncryptedOSSHook`` on the local OSS server.

The RAM policies cannot be enforced locally (the local KMS server has no RAM and no resource
ARNs). They are parsed, compared with the KMS actions the provider code calls (read from
``keys/alicloud_kms.py``), and each role runs through the hook with a local KMS credential allowed
exactly that role's actions.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from airflow_provider_osscse.exceptions import KeyPermissionError, KeyUnwrapError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.testing.openbao import OpenBaoServer
from tests.transfer_fixtures import PART, THRESHOLD

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "key-custody.md"
#: The modules that call KMS: the CMK (transfers) and the hook (the connection's "Test" button).
KMS_MODULES = (
    ROOT / "airflow_provider_osscse" / "keys" / "alicloud_kms.py",
    ROOT / "airflow_provider_osscse" / "hooks" / "alicloud_kms.py",
)
SECTION = "## Least privilege: policies per role"
#: Example names in the docs, replaced by fresh ones per test.
TRANSIT_KEY_EXAMPLE = "osscse-orders"
KV_PREFIX_EXAMPLE = "secret/data/osscse/"
VAULT_ROLES = {"transit-writer", "transit-reader", "transit-rotator", "kv-writer", "kv-reader", "kv-rotator"}
KMS_ROLES = {"kms-writer", "kms-reader", "kms-rotator"}
#: Called only by the KMS connection's "Test" button (documented as such), never by transfers.
CONNECTION_TEST_ONLY = {"ListAliases"}
#: RAM authorises some API actions under other names: ReEncrypt needs kms:ReEncryptFrom on the source
#: key and kms:ReEncryptTo on the destination key.
RAM_ACTIONS_OF = {"ReEncrypt": {"ReEncryptFrom", "ReEncryptTo"}}
API_ACTION_OF = {ram: api for api, rams in RAM_ACTIONS_OF.items() for ram in rams}
#: Sizes for one single PUT and one multipart upload.
SIZES = (1000, THRESHOLD + PART + 7)


# ------------------------------------------------------------------ the docs, parsed
def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:] if end < 0 else text[start:end]


def vault_policies() -> dict[str, str]:
    """``role -> HCL`` of every ```hcl block in the section; each must start with ``# role: <name>``."""
    policies: dict[str, str] = {}
    for block in re.findall(r"```hcl\n(.*?)```", _section(), flags=re.DOTALL):
        match = re.match(r"# role: ([a-z-]+)\n", block)
        assert match, f"every HCL block of the least-privilege section names its role first:\n{block}"
        assert match.group(1) not in policies, f"role {match.group(1)} is given twice"
        policies[match.group(1)] = block
    return policies


def ram_policies() -> dict[str, dict[str, Any]]:
    """``role -> policy`` of the ```json blocks introduced by ``(`kms-<role>`)``."""
    found = re.findall(r"\(`(kms-[a-z]+)`\):\s*```json\n(.*?)```", _section(), flags=re.DOTALL)
    return {role: json.loads(body) for role, body in found}


def ram_actions(policy: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def kms_actions_called_by_the_provider() -> set[str]:
    """Every KMS action named in ``keys/alicloud_kms.py`` and ``hooks/alicloud_kms.py``: RPC calls by action name
    (``call("X"``, ``call_in_body("X"``, ...) and the SDK's generated ``*_with_options`` methods
    (snake case back to the action name)."""
    source = "\n".join(module.read_text(encoding="utf-8") for module in KMS_MODULES)
    named = set(re.findall(r'call\w*\(\s*"([A-Z][A-Za-z]+)"', source))
    generated = {
        "".join(part.capitalize() for part in name.split("_"))
        for name in re.findall(r"\.([a-z_]+)_with_options\(", source)
    }
    return named | generated


# ------------------------------------------------------------------ roles in Vault and Airflow
def _vault_conn(address: str, token: str) -> str:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    return json.dumps(
        {
            "conn_type": "vault",
            "host": host,
            "port": int(port),
            "password": token,
            "schema": "secret",
            "extra": {"auth_type": "token", "use_tls": False, "kv_engine_version": 2},
        }
    )


@dataclass
class Role:
    """One documented role: its Airflow connection id and an hvac client holding its token."""

    conn_id: str
    client: hvac.Client


@pytest.fixture
def grant(
    vault_root: hvac.Client, osscse_openbao: OpenBaoServer, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, str], Role]:
    """``grant(role, hcl)``: the policy written, a token made from it, an Airflow connection holding it."""

    def make(role: str, hcl: str) -> Role:
        suffix = uuid.uuid4().hex[:8]
        name = f"lp-{role}-{suffix}"
        vault_root.sys.create_or_update_policy(name, hcl)
        token = vault_root.auth.token.create(policies=[name], ttl="15m")["auth"]["client_token"]
        conn_id = f"lp_{role.replace('-', '_')}_{suffix}"
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", _vault_conn(osscse_openbao.address, token))
        return Role(conn_id, hvac.Client(url=osscse_openbao.address, token=token))

    return make


def _hook(cmk: str) -> EncryptedOSSHook:
    return EncryptedOSSHook("oss_v4", cmk=cmk, multipart_threshold=THRESHOLD, part_size=PART)


def _objects(hook: EncryptedOSSHook, prefix: str) -> dict[str, bytes]:
    """Upload one single-PUT and one multipart object; returns object key -> plaintext."""
    written = {}
    for size in SIZES:
        key, data = f"{prefix}/{size}", os.urandom(size)
        hook.upload(iter([data]), key)
        written[key] = data
    return written


@dataclass
class TransitRoles:
    key: str
    writer: Role
    reader: Role
    rotator: Role

    def ref(self, role: Role) -> str:
        return f"vault-transit://{role.conn_id}/transit/{self.key}"


@pytest.fixture
def transit(vault_root: hvac.Client, grant: Callable[[str, str], Role]) -> TransitRoles:
    """A fresh Transit key and the three documented Transit roles on it."""
    key = f"lp-{uuid.uuid4().hex[:8]}"
    vault_root.secrets.transit.create_key(key)
    policies = vault_policies()
    roles = {}
    for role in ("writer", "reader", "rotator"):
        hcl = policies[f"transit-{role}"]
        assert TRANSIT_KEY_EXAMPLE in hcl
        roles[role] = grant(f"transit-{role}", hcl.replace(TRANSIT_KEY_EXAMPLE, key))
    return TransitRoles(key, **roles)


@dataclass
class KvRoles:
    prefix: str
    writer: Role
    reader: Role
    rotator: Role

    def ref(self, role: Role, secret: str) -> str:
        return f"vault-kv://{role.conn_id}/secret/{self.prefix}/{secret}"


def _write_pair(vault_root: hvac.Client, prefix: str) -> None:
    """A new RSA pair as a new version of ``<prefix>/rsa-pair`` and its public key of ``rsa-public``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    kv = vault_root.secrets.kv.v2
    kv.create_or_update_secret(
        path=f"{prefix}/rsa-pair", mount_point="secret", secret={"private_key": private, "public_key": public}
    )
    kv.create_or_update_secret(path=f"{prefix}/rsa-public", mount_point="secret", secret={"public_key": public})


@pytest.fixture
def kv(vault_root: hvac.Client, grant: Callable[[str, str], Role]) -> KvRoles:
    """Fresh KV secrets (a key pair and its public key) and the three documented KV roles on them."""
    prefix = f"lp-{uuid.uuid4().hex[:8]}"
    _write_pair(vault_root, prefix)
    policies = vault_policies()
    roles = {}
    for role in ("writer", "reader", "rotator"):
        hcl = policies[f"kv-{role}"]
        assert KV_PREFIX_EXAMPLE in hcl
        roles[role] = grant(f"kv-{role}", hcl.replace(KV_PREFIX_EXAMPLE, f"secret/data/{prefix}/"))
    return KvRoles(prefix, **roles)


# ------------------------------------------------------------------ the docs
def test_the_docs_give_a_policy_for_every_role() -> None:
    assert set(vault_policies()) == VAULT_ROLES
    assert set(ram_policies()) == KMS_ROLES


# ------------------------------------------------------------------ Transit
def test_transit_writer_uploads_but_cannot_read_or_rewrap(oss_env: Any, transit: TransitRoles) -> None:
    writer = _hook(transit.ref(transit.writer))
    written = _objects(writer, f"least-privilege/transit-writer/{transit.key}")
    reader = _hook(transit.ref(transit.reader))
    for key, data in written.items():
        assert reader.read(key) == data
        with pytest.raises(KeyPermissionError, match=f"'transit/decrypt/{transit.key}'"):
            writer.read(key)
        with pytest.raises(KeyPermissionError, match=f"'transit/rewrap/{transit.key}'"):
            writer.rewrap(key)
    with pytest.raises(hvac.exceptions.Forbidden):
        transit.writer.client.secrets.transit.decrypt_data(transit.key, ciphertext="vault:v1:AAAA")


def test_transit_writer_policy_cannot_create_a_missing_key(
    vault_root: hvac.Client, grant: Callable[[str, str], Role]
) -> None:
    """The policy itself refuses the upsert (``update`` without ``create``), whatever the client does."""
    missing = f"lp-missing-{uuid.uuid4().hex[:8]}"
    writer = grant("transit-writer", vault_policies()["transit-writer"].replace(TRANSIT_KEY_EXAMPLE, missing))
    with pytest.raises(hvac.exceptions.Forbidden):
        writer.client.secrets.transit.encrypt_data(missing, plaintext="AAAA")
    with pytest.raises(hvac.exceptions.InvalidPath):
        vault_root.secrets.transit.read_key(missing)


def test_transit_reader_reads_but_cannot_encrypt(oss_env: Any, transit: TransitRoles) -> None:
    written = _objects(_hook(transit.ref(transit.writer)), f"least-privilege/transit-reader/{transit.key}")
    reader = _hook(transit.ref(transit.reader))
    for key, data in written.items():
        assert reader.read(key) == data
    refused = f"least-privilege/transit-reader/{transit.key}/refused"
    with pytest.raises(KeyPermissionError):
        reader.upload(iter([b"readers do not write"]), refused)
    assert not reader.exists(refused)
    with pytest.raises(hvac.exceptions.Forbidden):
        transit.reader.client.secrets.transit.encrypt_data(transit.key, plaintext="AAAA")


def test_transit_rotator_rewraps_to_the_new_version_without_decrypt(
    oss_env: Any, vault_root: hvac.Client, transit: TransitRoles
) -> None:
    written = _objects(_hook(transit.ref(transit.writer)), f"least-privilege/transit-rotator/{transit.key}")
    vault_root.secrets.transit.rotate_key(transit.key)
    rotator = _hook(transit.ref(transit.rotator))
    reader = _hook(transit.ref(transit.reader))
    for key, data in written.items():
        result = rotator.rewrap(key)
        assert (result.status, result.from_version, result.to_version) == ("rewrapped", "v1", "v2")
        assert reader.read(key) == data
        with pytest.raises(KeyPermissionError, match=f"'transit/decrypt/{transit.key}'"):
            rotator.read(key)
    with pytest.raises(hvac.exceptions.Forbidden):
        transit.rotator.client.secrets.transit.decrypt_data(transit.key, ciphertext="vault:v1:AAAA")
    with pytest.raises(KeyPermissionError):
        rotator.upload(iter([b"rotators do not write"]), f"least-privilege/transit-rotator/{transit.key}/refused")


# ------------------------------------------------------------------ KV
def test_kv_writer_uploads_with_only_the_public_key_secret_and_the_kv_reader_reads(oss_env: Any, kv: KvRoles) -> None:
    writer = _hook(kv.ref(kv.writer, "rsa-public"))
    written = _objects(writer, f"least-privilege/kv-writer/{kv.prefix}")
    reader = _hook(kv.ref(kv.reader, "rsa-pair"))
    for key, data in written.items():
        assert reader.read(key) == data
        with pytest.raises(KeyUnwrapError):  # the public key cannot unwrap
            writer.read(key)
    with pytest.raises(hvac.exceptions.Forbidden):
        kv.writer.client.secrets.kv.v2.read_secret_version(
            path=f"{kv.prefix}/rsa-pair", mount_point="secret", raise_on_deleted_version=True
        )
    with pytest.raises(hvac.exceptions.Forbidden):  # and the reader holds no write access
        kv.reader.client.secrets.kv.v2.create_or_update_secret(
            path=f"{kv.prefix}/rsa-pair", mount_point="secret", secret={"public_key": "x"}
        )


def test_kv_rotator_moves_objects_to_the_new_key_pair(oss_env: Any, vault_root: hvac.Client, kv: KvRoles) -> None:
    written = _objects(_hook(kv.ref(kv.writer, "rsa-public")), f"least-privilege/kv-rotator/{kv.prefix}")
    _write_pair(vault_root, kv.prefix)  # the key administrator rotates the pair (version 2 of both)
    rotator = _hook(kv.ref(kv.rotator, "rsa-pair"))
    reader = _hook(kv.ref(kv.reader, "rsa-pair"))
    for key, data in written.items():
        result = rotator.rewrap(key)
        assert (result.status, result.from_version, result.to_version) == ("rewrapped", "1", "2")
        assert reader.read(key) == data
    newer = _objects(_hook(kv.ref(kv.writer, "rsa-public")), f"least-privilege/kv-rotator/{kv.prefix}/after")
    for key, data in newer.items():
        assert reader.read(key) == data


# ------------------------------------------------------------------ KMS (RAM)
def test_ram_policies_parse_and_name_exactly_the_kms_actions_the_provider_calls() -> None:
    policies = ram_policies()
    for role, policy in policies.items():
        assert policy["Version"] == "1", role
        for statement in policy["Statement"]:
            resources = statement["Resource"]
            assert resources and all(r.startswith("acs:kms:") for r in resources), role
            assert any(":key/" in r for r in resources), f"{role}: Decrypt is authorised on the key ARN"
    documented = set().union(*(ram_actions(p) for p in policies.values()))
    called = {
        f"kms:{ram}"
        for action in kms_actions_called_by_the_provider() - CONNECTION_TEST_ONLY
        for ram in RAM_ACTIONS_OF.get(action, {action})
    }
    assert documented == called
    for action in CONNECTION_TEST_ONLY:
        assert f"kms:{action}" in _section()  # said to be needed only by the connection test
    writer, reader, rotator = (ram_actions(policies[f"kms-{r}"]) for r in ("writer", "reader", "rotator"))
    reencrypt = {"kms:ReEncryptFrom", "kms:ReEncryptTo"}
    assert {"kms:GenerateDataKey", "kms:Encrypt"} <= writer and not writer & ({"kms:Decrypt"} | reencrypt)
    assert "kms:Decrypt" in reader and not reader & ({"kms:GenerateDataKey", "kms:Encrypt"} | reencrypt)
    assert reencrypt <= rotator and not rotator & {"kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"}


@pytest.fixture
def kms_roles(osscse_kms_server: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[str, dict[str, str]]:
    """A fresh KMS alias and, per documented role, a connection whose credential may call exactly
    that role's actions (the local server checks actions, not resources)."""
    alias = f"alias/lp-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.create_key(alias=alias)
    conns = {}
    for role, policy in ram_policies().items():
        suffix = uuid.uuid4().hex[:8]
        access_key, secret = f"LTAI-lp-{role}-{suffix}", f"lp-secret-{uuid.uuid4().hex}"
        actions = {API_ACTION_OF.get(a.removeprefix("kms:"), a.removeprefix("kms:")) for a in ram_actions(policy)}
        osscse_kms_server.add_credential(access_key, secret, allowed_actions=actions)
        conn_id = f"lp_{role.replace('-', '_')}_{suffix}"
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps(
                {
                    "conn_type": "alicloud_kms",
                    "login": access_key,
                    "password": secret,
                    "extra": {
                        "region": osscse_kms_server.region,
                        "endpoint": osscse_kms_server.endpoint,
                        "protocol": "http",
                    },
                }
            ),
        )
        conns[role.removeprefix("kms-")] = f"kms://{conn_id}/{alias}"
    return alias, conns


def test_kms_roles_work_with_exactly_their_documented_actions(
    oss_env: Any, osscse_kms_server: Any, kms_roles: tuple[str, dict[str, str]]
) -> None:
    alias, refs = kms_roles
    writer, reader, rotator = (_hook(refs[r]) for r in ("writer", "reader", "rotator"))
    written = _objects(writer, f"least-privilege/kms/{alias.removeprefix('alias/')}")
    osscse_kms_server.rotate_key(alias)
    for key, data in written.items():
        assert reader.read(key) == data
        with pytest.raises(KeyPermissionError, match="kms:Decrypt"):
            writer.read(key)
        result = rotator.rewrap(key)
        assert result.status == "rewrapped" and result.to_version != result.from_version
        with pytest.raises(KeyPermissionError, match="kms:Decrypt"):
            rotator.read(key)
        assert reader.read(key) == data
    for hook in (reader, rotator):
        refused = f"least-privilege/kms/{alias.removeprefix('alias/')}/refused"
        with pytest.raises(KeyPermissionError):
            hook.upload(iter([b"only writers write"]), refused)
        assert not hook.exists(refused)
