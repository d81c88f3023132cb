"""The official OSS SDKs as a user builds them from their docs, against the local OSS server.

oss2 ``CryptoBucket(auth, endpoint, bucket, RsaProvider(key_pair))`` and alibabacloud-oss-v2
``EncryptionClient(client, MasterRsaCipher(public_key=..., private_key=...))``, both without a
matdesc unless a test asks for one. Also: raw header access through a plain ``oss2.Bucket`` and the
objects earlier versions of this package wrote (CMK identity inside the matdesc, v1 integrity tag),
rebuilt independently of the package's own writer for the legacy parts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import alibabacloud_oss_v2 as oss_v2
import oss2
from alibabacloud_oss_v2.crypto.master_rsa_cipher import MasterRsaCipher
from cryptography.hazmat.primitives import serialization

from tests.legacy_tags import v1_tag

CSE = "x-oss-meta-client-side-encryption-"
MATDESC_HEADER = CSE + "matdesc"
CMK_HEADER = "x-oss-meta-osscse-cmk"
CMK_VERSION_HEADER = "x-oss-meta-osscse-cmk-version"
INTEGRITY_HEADER = "x-oss-meta-osscse-integrity"
#: oss2's refusal of an object whose matdesc differs from its provider's (the observed defect).
OSS2_NO_MATCH = "no encryption materials match the material description"


@dataclass(frozen=True)
class RsaPair:
    """An RSA CMK's PEM halves as strings (the form both official SDKs take). Secret: never log."""

    private_pem: str
    public_pem: str

    def __repr__(self) -> str:
        return "RsaPair(<redacted>)"

    @classmethod
    def from_private_pem(cls, private_pem: bytes) -> RsaPair:
        key = serialization.load_pem_private_key(private_pem, password=None)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private_pem=private_pem.decode("ascii"), public_pem=public.decode("ascii"))

    def fingerprint(self) -> str:
        """SHA-256 of the DER SubjectPublicKeyInfo, first 32 hex digits (the form every version wrote)."""
        public = serialization.load_pem_public_key(self.public_pem.encode("ascii"))
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(der).hexdigest()[:32]

    def identity(self) -> str:
        return f"rsa-sha256:{self.fingerprint()}"


def oss2_crypto_bucket(
    server: Any, bucket: str, pair: RsaPair, mat_desc: dict[str, str] | None = None
) -> oss2.CryptoBucket:
    """``CryptoBucket`` with ``RsaProvider(key_pair)`` exactly as oss2's docs show (``mat_desc`` only if given)."""
    key_pair = {"private_key": pair.private_pem, "public_key": pair.public_pem}
    provider = (
        oss2.RsaProvider(key_pair=key_pair)
        if mat_desc is None
        else oss2.RsaProvider(key_pair=key_pair, mat_desc=mat_desc)
    )
    return oss2.CryptoBucket(
        oss2.Auth(server.access_key_id, server.access_key_secret), server.endpoint, bucket, crypto_provider=provider
    )


def oss2_plain_bucket(server: Any, bucket: str) -> oss2.Bucket:
    return oss2.Bucket(oss2.Auth(server.access_key_id, server.access_key_secret), server.endpoint, bucket)


def oss2_multipart_put(crypto: oss2.CryptoBucket, key: str, plain: bytes, part_size: int) -> None:
    """oss2's documented CSE multipart upload (``MultipartUploadCryptoContext``)."""
    context = oss2.models.MultipartUploadCryptoContext(data_size=len(plain), part_size=part_size)
    upload_id = crypto.init_multipart_upload(key, upload_context=context).upload_id
    parts = []
    for number, offset in enumerate(range(0, len(plain), part_size), start=1):
        result = crypto.upload_part(key, upload_id, number, plain[offset : offset + part_size], upload_context=context)
        parts.append(oss2.models.PartInfo(number, result.etag))
    crypto.complete_multipart_upload(key, upload_id, parts)


def v2_encryption_client(server: Any, pair: RsaPair) -> oss_v2.EncryptionClient:
    """``EncryptionClient`` with ``MasterRsaCipher(public, private)`` and no matdesc."""
    config = oss_v2.config.load_default()
    config.credentials_provider = oss_v2.credentials.StaticCredentialsProvider(
        server.access_key_id, server.access_key_secret
    )
    config.region = server.region
    config.endpoint = server.endpoint
    config.use_path_style = True
    cipher = MasterRsaCipher(public_key=pair.public_pem, private_key=pair.private_pem)
    return oss_v2.EncryptionClient(oss_v2.Client(config), cipher)


def v2_get(client: oss_v2.EncryptionClient, bucket: str, key: str, range_header: str | None = None) -> bytes:
    result = client.get_object(oss_v2.GetObjectRequest(bucket=bucket, key=key, range_header=range_header))
    try:
        return result.body.read()
    finally:
        result.body.close()


def v2_put(client: oss_v2.EncryptionClient, bucket: str, key: str, plain: bytes) -> None:
    client.put_object(oss_v2.PutObjectRequest(bucket=bucket, key=key, body=plain))


def v2_multipart_put(client: oss_v2.EncryptionClient, bucket: str, key: str, plain: bytes, part_size: int) -> None:
    """The v2 SDK's documented CSE multipart upload (``cse_part_size`` / ``cse_data_size``)."""
    init = client.initiate_multipart_upload(
        oss_v2.InitiateMultipartUploadRequest(bucket=bucket, key=key, cse_part_size=part_size, cse_data_size=len(plain))
    )
    parts = []
    for number, offset in enumerate(range(0, len(plain), part_size), start=1):
        result = client.upload_part(
            oss_v2.UploadPartRequest(
                bucket=bucket,
                key=key,
                upload_id=init.upload_id,
                part_number=number,
                body=plain[offset : offset + part_size],
                cse_multipart_context=init.cse_multipart_context,
            )
        )
        parts.append(oss_v2.UploadPart(part_number=number, etag=result.etag))
    client.complete_multipart_upload(
        oss_v2.CompleteMultipartUploadRequest(
            bucket=bucket,
            key=key,
            upload_id=init.upload_id,
            complete_multipart_upload=oss_v2.CompleteMultipartUpload(parts=parts),
        )
    )


def stored_headers(server: Any, bucket: str, key: str) -> dict[str, str]:
    """The object's headers as OSS returns them (names lower-cased)."""
    return {name.lower(): value for name, value in oss2_plain_bucket(server, bucket).head_object(key).headers.items()}


def matdesc_of(headers: Mapping[str, str]) -> dict[str, str] | None:
    text = headers.get(MATDESC_HEADER)
    return None if text is None else json.loads(text)


def legacy_matdesc(entries: Mapping[str, str]) -> str:
    """The matdesc earlier versions wrote: compact, key-sorted JSON (their ``dump_matdesc``)."""
    return json.dumps(dict(entries), separators=(",", ":"), sort_keys=True)


def write_legacy_object(
    server: Any, bucket: str, key: str, plain: bytes, pair: RsaPair, matdesc_entries: Mapping[str, str]
) -> None:
    """An object as earlier versions of this package wrote it: the CMK identity (and version) *inside*
    the matdesc, no ``x-oss-meta-osscse-cmk`` header, and a v1 integrity tag.

    The ciphertext and wrapped data key come from the package's ``EnvelopeWriter`` (the official
    format did not change); the legacy parts (matdesc, tag) are rebuilt here independently.
    """
    from airflow_provider_osscse.envelope import EnvelopeWriter
    from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

    cmk = LocalRsaKey(private_key_pem=pair.private_pem.encode("ascii"), reference="legacy-writer")
    writer = EnvelopeWriter(cmk, object_name=key)
    headers = writer.metadata(plaintext_length=len(plain))
    for name in (CMK_HEADER, CMK_VERSION_HEADER, INTEGRITY_HEADER, MATDESC_HEADER):
        headers.pop(name, None)
    headers[MATDESC_HEADER] = legacy_matdesc(matdesc_entries)
    data_key = cmk.unwrap(writer.wrapped)
    headers[INTEGRITY_HEADER] = v1_tag(data_key.key, data_key.iv, plain, 64 * 1024)
    ciphertext = b"".join(writer.encrypt_chunks(plain))
    oss2_plain_bucket(server, bucket).put_object(key, ciphertext, headers=headers)
