"""In-process interop with oss2's own crypto objects (RsaProvider, LocalRsaProvider, ContentCryptoMaterial).

No server: oss2 builds and parses the metadata and runs its cipher in memory; we compare bytes with the
format's vectors and read each other's headers + ciphertext in both directions.
"""

from __future__ import annotations

import base64
import copy
import os

import oss2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from oss2 import models, utils

from airflow_provider_osscse.envelope import (
    DataKey,
    EnvelopeReader,
    EnvelopeWriter,
    IntegrityStatus,
    decrypt_object,
    plan_parts,
)
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from tests.envelope.conftest import VECTOR_A_CIPHER, VECTOR_A_PLAIN, VECTOR_IV, VECTOR_KEY


def _oss2_provider(cmk: LocalRsaKey, mat_desc: dict | None = None) -> oss2.RsaProvider:
    pair = {"private_key": cmk.private_key_pem().decode(), "public_key": cmk.public_key_pem().decode()}
    return oss2.RsaProvider(key_pair=pair, cipher=utils.AESCTRCipher(), mat_desc=mat_desc)


def _oss2_material(provider: oss2.RsaProvider, key: bytes | None = None, iv: bytes | None = None):
    cipher = copy.copy(provider.cipher)
    provider.cipher = cipher
    if key is not None:
        cipher.get_key = lambda: key
        cipher.get_iv = lambda: iv
    return provider.create_content_material()


def test_oss2_with_pinned_key_and_iv_produces_the_vector_and_we_read_it(rsa_key) -> None:
    material = _oss2_material(_oss2_provider(rsa_key), VECTOR_KEY, VECTOR_IV)
    ciphertext = material.cipher.encrypt(VECTOR_A_PLAIN)
    assert ciphertext == VECTOR_A_CIPHER
    headers = dict(material.to_object_meta({"content-length": str(len(VECTOR_A_PLAIN))}))
    reader = EnvelopeReader(headers, rsa_key, object_name="oss2-obj", integrity_policy="if-present")
    assert b"".join(reader.decrypt_chunks(ciphertext)) == VECTOR_A_PLAIN
    assert reader.status is IntegrityStatus.UNAUTHENTICATED


def test_oss2_spaced_matdesc_selects_our_cmk(rsa_key, other_rsa_key) -> None:
    material = _oss2_material(_oss2_provider(rsa_key, {"desc": "test key"}))
    headers = dict(material.to_object_meta({}))
    assert headers["x-oss-meta-client-side-encryption-matdesc"] == '{"desc": "test key"}'
    ours = LocalRsaKey(private_key_pem=rsa_key.private_key_pem(), matdesc={"desc": "test key"}, reference="m")
    decoy = LocalRsaKey(private_key_pem=other_rsa_key.private_key_pem(), matdesc={"desc": "other"}, reference="d")
    plain = os.urandom(1000)
    ct = material.cipher.encrypt(plain)
    assert b"".join(decrypt_object(headers, ct, [decoy, ours], object_name="o", integrity_policy="if-present")) == plain


def test_oss2_multipart_and_ranged_reads_match_ours(rsa_key) -> None:
    provider = _oss2_provider(rsa_key)
    material = _oss2_material(provider)
    plain = os.urandom(3 * 102_400 + 500)
    part_size = 102_400
    parts = []
    for offset in range(0, len(plain), part_size):
        cipher = copy.copy(material.cipher)
        key, iv = (
            provider.decrypt_encrypted_key(material.encrypted_key),
            provider.decrypt_encrypted_iv(material.encrypted_iv),
        )
        cipher.initialize(key, iv, offset // 16)
        parts.append(cipher.encrypt(plain[offset : offset + part_size]))
    ct = b"".join(parts)
    ctx = models.MultipartUploadCryptoContext(data_size=len(plain), part_size=part_size)
    headers = dict(material.to_object_meta({}, ctx))
    reader = EnvelopeReader(headers, rsa_key, object_name="o", integrity_policy="if-present")
    assert reader.envelope.part_size == part_size and reader.envelope.data_size == len(plain)
    assert b"".join(reader.decrypt_chunks(ct)) == plain
    for spec, expected in [("bytes=-33", plain[-33:]), ("bytes=102399-102500", plain[102399:102501])]:
        plan = reader.plan_range(spec, len(ct))
        got = b"".join(
            reader.decrypt_chunks(ct[plan.request_start : (plan.request_end or len(ct)) + 1], range_plan=plan)
        )
        assert got == expected


def _oss2_decrypt(provider: oss2.RsaProvider, headers: dict, ct: bytes, start: int = 0) -> bytes:
    material = models.ContentCryptoMaterial(copy.copy(provider.cipher), provider.wrap_alg)
    material.from_object_meta(headers)
    key = provider.decrypt_encrypted_key(material.encrypted_key)
    iv = provider.decrypt_encrypted_iv(material.encrypted_iv)
    aligned, _ = provider.adjust_range(start, None)
    cipher = material.cipher
    cipher.initialize(key, iv, material.cipher.calc_offset(aligned))
    return cipher.decrypt(ct[aligned:])[start - aligned :]


@pytest.mark.parametrize("matdesc", [None, {"desc": "ours"}])
def test_oss2_decrypts_our_single_put_multipart_and_ranges(rsa_key, matdesc) -> None:
    cmk = LocalRsaKey(private_key_pem=rsa_key.private_key_pem(), matdesc=matdesc)
    provider = _oss2_provider(rsa_key, matdesc)
    plain = os.urandom(250_000)
    writer = EnvelopeWriter(cmk, object_name="o")
    plan = plan_parts(len(plain), 102_400)
    tag = writer.compute_integrity(plain, segment_size=plan.part_size)
    headers = writer.metadata(part_plan=plan, integrity=tag)
    ct = b"".join(writer.encrypt_part(plan, p.number, plain[p.offset : p.offset + p.size]) for p in plan.parts())
    assert _oss2_decrypt(provider, headers, ct) == plain
    assert _oss2_decrypt(provider, headers, ct, start=123_457) == plain[123_457:]
    single = writer.metadata(plaintext_length=len(plain))
    assert _oss2_decrypt(provider, single, b"".join(writer.encrypt_chunks(plain))) == plain


def test_oss2_local_rsa_provider_oaep_objects_read_with_legacy_opt_in(rsa_key, tmp_path) -> None:
    provider = oss2.LocalRsaProvider(dir=str(tmp_path), key="k")
    material = provider.create_content_material()
    plain = os.urandom(500)
    ct = material.cipher.encrypt(plain)
    headers = dict(material.to_object_meta({}))
    cmk = LocalRsaKey.from_file(tmp_path / "k.private_key.pem")
    assert (
        b"".join(decrypt_object(headers, ct, cmk, object_name="o", allow_legacy=True, integrity_policy="if-present"))
        == plain
    )


def test_legacy_oss_crypto_object_with_decimal_counter_reads_with_opt_in(rsa_key) -> None:
    ck = DataKey.generate()
    oaep = padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)
    pub = rsa_key._public  # noqa: SLF001 - build an oss2 2.5-era object by hand
    cipher = utils.AESCTRCipher()
    cipher.initial_by_counter(ck.key, 7)
    plain = os.urandom(300)
    headers = {
        "X-Oss-Meta-Oss-Crypto-Key": base64.b64encode(pub.encrypt(ck.key, oaep)).decode(),
        "X-Oss-Meta-Oss-Crypto-Start": base64.b64encode(pub.encrypt(b"7", oaep)).decode(),
        "X-Oss-Meta-Oss-Cek-Alg": "AES/GCM/NoPadding",
        "X-Oss-Meta-Oss-Wrap-Alg": "rsa",
    }
    ct = cipher.encrypt(plain)
    assert (
        b"".join(
            decrypt_object(headers, ct, rsa_key, object_name="o", allow_legacy=True, integrity_policy="if-present")
        )
        == plain
    )
