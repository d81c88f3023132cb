"""Issue 9, "Interop by default": the official SDKs read what the hook writes with default settings.

Observed defect: an object written with an RSA CMK (``rsa-file://``, ``vault-kv://``) was refused by
oss2 ``CryptoBucket(..., RsaProvider(key_pair))`` built as oss2's docs show (no ``mat_desc``) with
``ClientError: There is no encryption materials match the material description of the object``,
because the package wrote its own CMK identity into ``client-side-encryption-matdesc``; oss2 compares
the whole matdesc with its provider's. Now the identity (and version) travel in this project's own
``x-oss-meta-osscse-cmk`` headers and the matdesc holds only what the user configured.

Everything runs through the real paths: ``EncryptedOSSHook`` / the ``osscse`` process against the
local OSS server, OpenBao for ``vault-kv://``, oss2 ``CryptoBucket`` + ``RsaProvider`` and
alibabacloud-oss-v2 ``EncryptionClient`` + ``MasterRsaCipher``.

Before the change (commit c78728a) the oss2 readers failed with exactly that ClientError, the header
checks found no ``x-oss-meta-osscse-cmk`` and rewrapped objects kept no identity header.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest

from airflow_provider_osscse.exceptions import UnauthenticatedObjectError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from tests.interop.official_sdks import (
    CMK_HEADER,
    CMK_VERSION_HEADER,
    MATDESC_HEADER,
    OSS2_NO_MATCH,
    RsaPair,
    matdesc_of,
    oss2_crypto_bucket,
    oss2_multipart_put,
    stored_headers,
    v2_encryption_client,
    v2_get,
    v2_multipart_put,
    v2_put,
    write_legacy_object,
)
from tests.transfer_fixtures import BUCKET, PART, THRESHOLD, oss_conn

SINGLE = 7_000
MULTI = 3 * PART + 777  # > THRESHOLD: the hook uploads it in 4 parts of PART bytes
assert MULTI > THRESHOLD
SIZES = pytest.mark.parametrize("size", [SINGLE, MULTI], ids=["single-put", "multipart"])
KINDS = pytest.mark.parametrize("kind", ["rsa-file", "vault-kv"])
TEAM = {"team": "etl"}


@pytest.fixture(scope="module")
def kv_secret_path(oss_env: Any, osscse_openbao: Any) -> tuple[str, RsaPair]:
    """A Vault KV v2 secret (mount ``secret``, version 1) holding a fresh pair in the fields
    ``private_key`` / ``public_key``: another key than the RSA file's, so the kinds cannot be mixed up."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pair = RsaPair.from_private_pem(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path = f"osscse-interop/rsa-{uuid.uuid4().hex[:8]}"
    osscse_openbao.client().secrets.kv.v2.create_or_update_secret(
        path=path, mount_point="secret", secret={"private_key": pair.private_pem, "public_key": pair.public_pem}
    )
    return path, pair


@pytest.fixture(scope="module")
def cmks(rsa_ref: str, kv_secret_path: tuple[str, RsaPair]) -> dict[str, tuple[str, RsaPair]]:
    """``kind -> (CMK reference, the RSA pair an official SDK user holds)`` for both RSA CMK kinds."""
    path, kv_pair = kv_secret_path
    file_pair = RsaPair.from_private_pem(Path(rsa_ref.removeprefix("rsa-file://")).read_bytes())
    return {"rsa-file": (rsa_ref, file_pair), "vault-kv": (f"vault-kv://vault_default/secret/{path}", kv_pair)}


@pytest.fixture
def make_hook(oss_env: Any) -> Callable[..., EncryptedOSSHook]:
    """Hooks on ``oss_v4`` with small multipart settings (multipart paths run in milliseconds)."""

    def make(cmk: str, conn_id: str = "oss_v4", **kwargs: Any) -> EncryptedOSSHook:
        kwargs.setdefault("multipart_threshold", THRESHOLD)
        kwargs.setdefault("part_size", PART)
        return EncryptedOSSHook(conn_id, cmk=cmk, **kwargs)

    return make


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    return f"interop-default/{request.node.name[:60]}-{uuid.uuid4().hex[:6]}"


def _upload_default(make_hook: Callable[..., EncryptedOSSHook], ref: str, key: str, size: int) -> bytes:
    plain = os.urandom(size)
    result = make_hook(ref).upload(io.BytesIO(plain), key)
    assert result.parts == (1 if size <= THRESHOLD else -(-size // PART)), result
    return plain


# ------------------------------------------------------------------ 1. official readers, default settings
@KINDS
@SIZES
def test_default_upload_is_read_by_oss2_rsa_provider_without_matdesc_whole_and_ranged(
    oss_env: Any,
    cmks: dict,
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    kind: str,
    size: int,
) -> None:
    ref, pair = cmks[kind]
    plain = _upload_default(make_hook, ref, key, size)
    crypto = oss2_crypto_bucket(oss_env, BUCKET, pair)  # RsaProvider(key_pair), as oss2's docs show
    assert crypto.get_object(key).read() == plain
    first, last = (1000, 2000) if size == SINGLE else (PART - 17, 2 * PART + 40)  # across a part boundary
    assert crypto.get_object(key, byte_range=(first, last)).read() == plain[first : last + 1]


@KINDS
@SIZES
def test_default_upload_is_read_by_v2_encryption_client_without_matdesc_whole_and_ranged(
    oss_env: Any,
    cmks: dict,
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    kind: str,
    size: int,
) -> None:
    ref, pair = cmks[kind]
    plain = _upload_default(make_hook, ref, key, size)
    client = v2_encryption_client(oss_env, pair)  # MasterRsaCipher(public, private), no matdesc
    assert v2_get(client, BUCKET, key) == plain
    first, last = (1001, 2002) if size == SINGLE else (PART - 5, PART + 5)
    assert v2_get(client, BUCKET, key, f"bytes={first}-{last}") == plain[first : last + 1]


# ------------------------------------------------------------------ 3. where the identity goes
@KINDS
@SIZES
def test_default_upload_names_its_cmk_in_osscse_headers_and_writes_no_matdesc(
    oss_env: Any,
    cmks: dict,
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    kind: str,
    size: int,
) -> None:
    ref, pair = cmks[kind]
    _upload_default(make_hook, ref, key, size)
    headers = stored_headers(oss_env, BUCKET, key)
    assert headers[CMK_HEADER] == pair.identity()  # the public key's fingerprint, for both kinds
    if kind == "vault-kv":
        assert headers[CMK_VERSION_HEADER] == "1"  # the KV secret version that wrapped the data key
    else:
        assert CMK_VERSION_HEADER not in headers
    assert MATDESC_HEADER not in headers, headers.get(MATDESC_HEADER)  # as the official SDKs write it


# ------------------------------------------------------------------ 2. a user-configured matdesc
def _assert_team_matdesc_object(server: Any, key: str, pair: RsaPair, plain: bytes) -> None:
    headers = stored_headers(server, BUCKET, key)
    assert headers[MATDESC_HEADER] == '{"team":"etl"}'  # compact, exactly the user's, nothing of ours
    assert not any(k.startswith("osscse-") for k in matdesc_of(headers))
    assert headers[CMK_HEADER] == pair.identity()
    assert oss2_crypto_bucket(server, BUCKET, pair, mat_desc=dict(TEAM)).get_object(key).read() == plain
    # The matdesc really is on the object: oss2 without the same mat_desc refuses it, as documented.
    with pytest.raises(oss2.exceptions.ClientError, match=OSS2_NO_MATCH):
        oss2_crypto_bucket(server, BUCKET, pair).get_object(key)


@KINDS
@SIZES
def test_hook_matdesc_argument_is_written_compact_and_read_by_oss2_with_the_same_mat_desc(
    oss_env: Any,
    cmks: dict,
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    kind: str,
    size: int,
) -> None:
    ref, pair = cmks[kind]
    plain = os.urandom(size)
    hook = make_hook(ref, matdesc=dict(TEAM))
    hook.upload(io.BytesIO(plain), key)
    _assert_team_matdesc_object(oss_env, key, pair, plain)
    assert hook.read(key) == plain


@pytest.fixture(params=["json-object", "json-string"])
def oss_matdesc_conn(oss_env: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """Connection ``oss_matdesc``: the test bucket with extra ``matdesc`` = ``{"team": "etl"}``, as a
    JSON object in the extra or as a string holding one (what a text field in the UI stores)."""
    name = "AIRFLOW_CONN_OSS_MATDESC"
    value: Any = dict(TEAM) if request.param == "json-object" else json.dumps(TEAM)
    os.environ[name] = oss_conn(oss_env, matdesc=value)
    try:
        yield "oss_matdesc"
    finally:
        os.environ.pop(name, None)


@SIZES
def test_connection_extra_matdesc_is_written_compact_and_read_by_oss2_with_the_same_mat_desc(
    oss_env: Any,
    cmks: dict,
    make_hook: Callable[..., EncryptedOSSHook],
    oss_matdesc_conn: str,
    key: str,
    size: int,
) -> None:
    ref, pair = cmks["rsa-file"]
    plain = os.urandom(size)
    hook = make_hook(ref, conn_id=oss_matdesc_conn)
    hook.upload(io.BytesIO(plain), key)
    _assert_team_matdesc_object(oss_env, key, pair, plain)
    assert hook.read(key) == plain


def test_cli_put_matdesc_is_written_compact_and_read_by_oss2_with_the_same_mat_desc(
    oss_env: Any,
    cmks: dict,
    tmp_path: Path,
    key: str,
) -> None:
    ref, pair = cmks["rsa-file"]
    plain = os.urandom(SINGLE)
    src = tmp_path / "in.bin"
    src.write_bytes(plain)
    put = subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow_provider_osscse.cli",
            "put",
            str(src),
            f"oss://{BUCKET}/{key}",
            "--cmk",
            ref,
            "--oss-conn-id",
            "oss_v4",
            "--matdesc",
            "team=etl",
        ],
        env=dict(os.environ),
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert put.returncode == 0, put.stderr.decode(errors="replace")
    _assert_team_matdesc_object(oss_env, key, pair, plain)


# ------------------------------------------------------------------ 4. objects of earlier versions
def _legacy_entries(kind: str, cmks: dict, kv_secret_path: tuple[str, RsaPair]) -> dict[str, str]:
    """The matdesc earlier versions wrote: the key's fingerprint (RSA file) or the secret's path and
    KV version (Vault KV)."""
    if kind == "rsa-file":
        return {"osscse-cmk": cmks["rsa-file"][1].identity()}
    return {"osscse-cmk": f"vault-kv:secret/{kv_secret_path[0]}", "osscse-cmk-version": "1"}


@KINDS
def test_object_of_an_earlier_version_with_identity_in_matdesc_still_reads_through_the_hook(
    oss_env: Any,
    cmks: dict,
    kv_secret_path: tuple[str, RsaPair],
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    kind: str,
    tmp_path: Path,
) -> None:
    ref, pair = cmks[kind]
    plain = os.urandom(3 * 64 * 1024 + 99)
    write_legacy_object(oss_env, BUCKET, key, plain, pair, _legacy_entries(kind, cmks, kv_secret_path))
    # The defect as it stands for objects already written: oss2 without a mat_desc refuses them.
    with pytest.raises(oss2.exceptions.ClientError, match=OSS2_NO_MATCH):
        oss2_crypto_bucket(oss_env, BUCKET, pair).get_object(key)
    hook = make_hook(ref, integrity="require")  # their v1 tag still verifies
    assert hook.read(key) == plain
    result = hook.download(key, tmp_path / "out.bin")
    assert result.integrity == "verified" and (tmp_path / "out.bin").read_bytes() == plain


@KINDS
def test_object_of_an_earlier_version_rewraps_to_another_cmk_and_then_official_readers_read_it(
    oss_env: Any,
    cmks: dict,
    kv_secret_path: tuple[str, RsaPair],
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    kind: str,
    other_rsa_ref: str,
) -> None:
    ref, pair = cmks[kind]
    other_pair = RsaPair.from_private_pem(Path(other_rsa_ref.removeprefix("rsa-file://")).read_bytes())
    plain = os.urandom(3 * 64 * 1024 + 99)
    write_legacy_object(oss_env, BUCKET, key, plain, pair, _legacy_entries(kind, cmks, kv_secret_path))
    result = make_hook(ref).rewrap(key, new_cmk=other_rsa_ref)
    assert result.status == "rewrapped", result
    headers = stored_headers(oss_env, BUCKET, key)
    assert headers[CMK_HEADER] == other_pair.identity()
    assert CMK_VERSION_HEADER not in headers  # the KV version of the old CMK must not linger
    assert MATDESC_HEADER not in headers, headers.get(MATDESC_HEADER)  # legacy entries are gone
    assert make_hook(other_rsa_ref, integrity="require").read(key) == plain
    assert oss2_crypto_bucket(oss_env, BUCKET, other_pair).get_object(key).read() == plain
    assert v2_get(v2_encryption_client(oss_env, other_pair), BUCKET, key) == plain


# ------------------------------------------------------------------ 5. the other direction
def _official_write(writer: str, server: Any, pair: RsaPair, key: str, plain: bytes) -> None:
    multipart = len(plain) > PART
    if writer == "oss2":
        crypto = oss2_crypto_bucket(server, BUCKET, pair)
        oss2_multipart_put(crypto, key, plain, PART) if multipart else crypto.put_object(key, plain)
    else:
        client = v2_encryption_client(server, pair)
        v2_multipart_put(client, BUCKET, key, plain, PART) if multipart else v2_put(client, BUCKET, key, plain)


WRITERS = pytest.mark.parametrize("writer", ["oss2", "v2"])


@WRITERS
@KINDS
@SIZES
def test_official_sdk_object_is_read_by_the_hook_with_integrity_if_present(
    oss_env: Any,
    cmks: dict,
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    writer: str,
    kind: str,
    size: int,
    tmp_path: Path,
) -> None:
    ref, pair = cmks[kind]
    plain = os.urandom(size)
    _official_write(writer, oss_env, pair, key, plain)
    hook = make_hook(ref, integrity="if-present")
    assert hook.read(key) == plain
    assert hook.read(key, byte_range="100-299") == plain[100:300]
    result = hook.download(key, tmp_path / "out.bin")
    assert result.integrity == "unauthenticated" and (tmp_path / "out.bin").read_bytes() == plain


@WRITERS
@KINDS
def test_official_sdk_object_is_refused_by_the_default_hook_naming_if_present(
    oss_env: Any,
    cmks: dict,
    make_hook: Callable[..., EncryptedOSSHook],
    key: str,
    writer: str,
    kind: str,
    tmp_path: Path,
) -> None:
    ref, pair = cmks[kind]
    _official_write(writer, oss_env, pair, key, os.urandom(SINGLE))
    hook = make_hook(ref)  # default integrity policy
    with pytest.raises(UnauthenticatedObjectError, match="if-present"):
        hook.read(key)
    with pytest.raises(UnauthenticatedObjectError, match="if-present"):
        hook.download(key, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
