"""oss2 ``CryptoBucket`` + ``AliKMSProvider`` against the local OSS and KMS servers, both directions.

oss2 → us: its KMS objects (single PUT and multipart; with and without its ``x-passphrase``
EncryptionContext) read back through ``EncryptedOSSHook(decrypt_cmks=["kms://..."])`` — whole,
ranged and downloaded. oss2 stores its passphrase nowhere in the object (KMS binds it as
authenticated data), so the reader is given it on the KMS connection (extra ``oss2_passphrase``).
oss2 writes no integrity tag, so these reads accept unauthenticated objects explicitly
(``integrity='if-present'``; the default ``require`` refuses them).

us → oss2: objects the hook writes in the Java/Go ``KMS/ALICLOUD`` form cannot be read by oss2's
``AliKMSProvider``: it base64-decodes the header and sends the *raw blob bytes* as
``CiphertextBlob`` (it expects base64 of the blob text, i.e. double base64), which KMS refuses.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest
from oss2.crypto import AliKMSProvider

from airflow_provider_osscse.envelope import EnvelopeReader
from airflow_provider_osscse.exceptions import KeyUnwrapError
from airflow_provider_osscse.hooks.alicloud_kms import AlicloudKmsHook
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.keys.keyring import Keyring

PART = 102_400
PASSPHRASES = pytest.mark.parametrize("passphrase", [None, "oss2-pass phrase"], ids=["no-context", "passphrase"])


@pytest.fixture(scope="module")
def env(
    osscse_airflow_connections: dict[str, str], osscse_oss_server: Any, osscse_kms_server: Any
) -> Iterator[dict[str, Any]]:
    """A bucket, a KMS alias, connection ``oss_kms_interop`` and ``kms_oss2pw`` (with the passphrase)."""
    bucket = f"kms-interop-{uuid.uuid4().hex[:8]}"
    osscse_oss_server.create_bucket(bucket)
    alias = f"alias/interop-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.create_key(alias=alias)
    kms = osscse_kms_server
    saved = {k: os.environ.get(k) for k in ("AIRFLOW_CONN_OSS_KMS_INTEROP", "AIRFLOW_CONN_KMS_OSS2PW")}
    os.environ["AIRFLOW_CONN_OSS_KMS_INTEROP"] = json.dumps(
        {
            "conn_type": "oss",
            "schema": bucket,
            "extra": {
                "auth_type": "AK",
                "access_key_id": osscse_oss_server.access_key_id,
                "access_key_secret": osscse_oss_server.access_key_secret,
                "region": osscse_oss_server.region,
                "endpoint": osscse_oss_server.endpoint,
            },
        }
    )
    os.environ["AIRFLOW_CONN_KMS_OSS2PW"] = json.dumps(
        {
            "conn_type": "alicloud_kms",
            "login": kms.access_key_id,
            "password": kms.access_key_secret,
            "extra": {
                "region": kms.region,
                "endpoint": kms.endpoint,
                "protocol": "http",
                "oss2_passphrase": "oss2-pass phrase",
            },
        }
    )
    yield {"bucket": bucket, "alias": alias, "oss": osscse_oss_server, "kms": kms}
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _kms_provider(
    env: dict[str, Any], passphrase: str | None, mat_desc: dict[str, str] | None = None
) -> AliKMSProvider:
    kms = env["kms"]
    provider = AliKMSProvider(
        kms.access_key_id, kms.access_key_secret, kms.region, env["alias"], passphrase=passphrase, mat_desc=mat_desc
    )
    provider.kms_client.add_endpoint(kms.region, "Kms", kms.url)  # http:// to the local KMS server
    return provider


def _crypto_bucket(env: dict[str, Any], provider: AliKMSProvider) -> oss2.CryptoBucket:
    oss = env["oss"]
    return oss2.CryptoBucket(
        oss2.AuthV4(oss.access_key_id, oss.access_key_secret),
        oss.endpoint,
        env["bucket"],
        crypto_provider=provider,
        region=oss.region,
    )


def _plain_bucket(env: dict[str, Any]) -> oss2.Bucket:
    oss = env["oss"]
    return oss2.Bucket(
        oss2.AuthV4(oss.access_key_id, oss.access_key_secret), oss.endpoint, env["bucket"], region=oss.region
    )


def _oss2_single(env: dict[str, Any], passphrase: str | None, data: bytes) -> str:
    key = f"oss2-kms/single-{uuid.uuid4().hex[:6]}"
    _crypto_bucket(env, _kms_provider(env, passphrase)).put_object(key, data)
    return key


def _oss2_multipart(env: dict[str, Any], passphrase: str | None, data: bytes) -> str:
    key = f"oss2-kms/multi-{uuid.uuid4().hex[:6]}"
    bucket = _crypto_bucket(env, _kms_provider(env, passphrase))
    context = oss2.models.MultipartUploadCryptoContext(data_size=len(data), part_size=PART)
    upload_id = bucket.init_multipart_upload(key, upload_context=context).upload_id
    parts = []
    for number, offset in enumerate(range(0, len(data), PART), start=1):
        result = bucket.upload_part(key, upload_id, number, data[offset : offset + PART], upload_context=context)
        parts.append(oss2.models.PartInfo(number, result.etag))
    bucket.complete_multipart_upload(key, upload_id, parts)
    return key


def _reader_hook(env: dict[str, Any]) -> EncryptedOSSHook:
    """Reads both kinds: the keyring tries the plain and the passphrase CMK (oss2 objects name none)."""
    return EncryptedOSSHook(
        "oss_kms_interop",
        decrypt_cmks=[f"kms://kms_default/{env['alias']}", f"kms://kms_oss2pw/{env['alias']}"],
        integrity="if-present",
    )


WRITERS: dict[str, Callable[[dict[str, Any], str | None, bytes], str]] = {
    "single": _oss2_single,
    "multipart": _oss2_multipart,
}


@pytest.mark.parametrize("how", ["single", "multipart"])
def test_hook_reads_oss2_kms_objects_without_passphrase_whole_ranged_and_downloaded(
    env: dict[str, Any], how: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART + 333)
    key = WRITERS[how](env, None, data)
    hook = EncryptedOSSHook(
        "oss_kms_interop", decrypt_cmks=[f"kms://kms_default/{env['alias']}"], integrity="if-present"
    )
    assert hook.inspect(key).wrap_alg == "KMS/ALICLOUD"
    assert hook.read(key) == data
    assert hook.read(key, byte_range=f"{PART - 5}-{PART + 5}") == data[PART - 5 : PART + 6]
    assert hook.read(key, byte_range="-77") == data[-77:]
    assert hook.download(key, tmp_path / "out.bin").size == len(data)
    assert (tmp_path / "out.bin").read_bytes() == data


@pytest.mark.parametrize("how", ["single", "multipart"])
def test_passphrase_objects_unwrap_with_the_passphrase_kms_connection(env: dict[str, Any], how: str) -> None:
    """Through the envelope core and the KMS key the hook's reference would resolve to."""
    data = os.urandom(PART + 999)
    key = WRITERS[how](env, "oss2-pass phrase", data)
    result = _plain_bucket(env).get_object(key)
    headers, body = dict(result.headers), result.read()
    # oss2 objects name no CMK in their matdesc: a Keyring falls back by wrap-alg (bounded).
    cmk = Keyring(AlicloudKmsHook("kms_oss2pw").get_key(env["alias"]))
    reader = EnvelopeReader(headers, cmk, object_name=key, integrity_policy="if-present")
    assert b"".join(reader.decrypt_chunks(body)) == data
    without = Keyring(AlicloudKmsHook("kms_default").get_key(env["alias"]))
    with pytest.raises(KeyUnwrapError):
        EnvelopeReader(headers, without, object_name=key, integrity_policy="if-present")


@pytest.mark.parametrize("how", ["single", "multipart"])
def test_hook_reads_oss2_kms_objects_with_passphrase_whole_ranged_and_downloaded(
    env: dict[str, Any], how: str, tmp_path: Path
) -> None:
    data = os.urandom(2 * PART + 333)
    key = WRITERS[how](env, "oss2-pass phrase", data)
    hook = _reader_hook(env)
    assert hook.read(key) == data
    assert hook.read(key, byte_range=f"{PART - 5}-{PART + 5}") == data[PART - 5 : PART + 6]
    assert hook.download(key, tmp_path / "out.bin").size == len(data)


def test_oss2_kms_provider_cannot_read_our_java_go_form_objects(env: dict[str, Any]) -> None:
    """Documented limitation (docs/key-custody.md): oss2 sends the decoded blob *bytes* to Decrypt.

    The header holds the CiphertextBlob text (Java/Go form); oss2 base64-decodes it and passes the
    binary bytes as ``CiphertextBlob``. KMS refuses that request: the local server answers
    ``SignatureDoesNotMatch`` (it reads the non-UTF-8 query as text, so the string to sign differs);
    Alibaba Cloud KMS would answer ``InvalidCiphertext``. Either way oss2 raises
    ``OpenApiServerError`` and no plaintext comes out.
    """
    key = f"ours-kms/{uuid.uuid4().hex[:6]}"
    hook = EncryptedOSSHook("oss_kms_interop", cmk=f"kms://kms_default/{env['alias']}")
    hook.upload(iter([b"written by the hook " * 50]), key)
    assert hook.inspect(key).matdesc == {}  # no matdesc by default: oss2's provider gets as far as KMS
    with pytest.raises(oss2.exceptions.OpenApiServerError) as caught:
        _crypto_bucket(env, _kms_provider(env, None)).get_object(key).read()
    assert caught.value.status == 400
    assert caught.value.code in {"SignatureDoesNotMatch", "InvalidCiphertext"}
    with pytest.raises(oss2.exceptions.ClientError, match="no encryption materials match"):
        _crypto_bucket(env, _kms_provider(env, None, mat_desc={"team": "other"})).get_object(key)
