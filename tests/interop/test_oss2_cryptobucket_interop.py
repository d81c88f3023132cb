"""Real oss2 CryptoBucket + RsaProvider against the local OSS server, in both directions.

oss2 → us: CryptoBucket writes (single PUT, multipart, with/without matdesc); we read the raw bytes and
metadata with a plain ``oss2.Bucket`` and decrypt with the envelope core (whole and ranged, incl.
suffix). us → oss2: our headers + ciphertext go through a plain ``put_object`` / multipart upload and
``CryptoBucket`` reads them (whole and ranged).
"""

from __future__ import annotations

import os
import uuid

import oss2
import pytest
from oss2 import models

from airflow_provider_osscse.envelope import EnvelopeReader, EnvelopeWriter, plan_parts
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

PART = 102_400


@pytest.fixture(scope="module")
def cmk() -> LocalRsaKey:
    return LocalRsaKey.generate(2048, reference="interop")


@pytest.fixture(scope="module")
def buckets(osscse_oss_server):
    name = f"interop-{uuid.uuid4().hex[:8]}"
    osscse_oss_server.create_bucket(name)
    auth = oss2.Auth(osscse_oss_server.access_key_id, osscse_oss_server.access_key_secret)
    return auth, osscse_oss_server.endpoint, name


def _crypto_bucket(buckets, cmk: LocalRsaKey, matdesc: dict | None) -> oss2.CryptoBucket:
    auth, endpoint, name = buckets
    pair = {"private_key": cmk.private_key_pem().decode(), "public_key": cmk.public_key_pem().decode()}
    provider = oss2.RsaProvider(key_pair=pair, mat_desc=matdesc)
    return oss2.CryptoBucket(auth, endpoint, name, crypto_provider=provider)


def _plain_bucket(buckets) -> oss2.Bucket:
    auth, endpoint, name = buckets
    return oss2.Bucket(auth, endpoint, name)


def _our_cmk(cmk: LocalRsaKey, matdesc: dict | None) -> LocalRsaKey:
    return LocalRsaKey(private_key_pem=cmk.private_key_pem(), matdesc=matdesc, reference="interop")


def _raw(bucket: oss2.Bucket, key: str) -> tuple[dict[str, str], bytes]:
    result = bucket.get_object(key)
    return dict(result.headers), result.read()


@pytest.mark.parametrize("matdesc", [None, {"desc": "interop"}])
def test_we_read_cryptobucket_single_put_whole_and_ranged(buckets, cmk, matdesc) -> None:
    plain = os.urandom(5000)
    key = f"oss2-single-{uuid.uuid4().hex[:6]}"
    _crypto_bucket(buckets, cmk, matdesc).put_object(key, plain)
    headers, body = _raw(_plain_bucket(buckets), key)
    reader = EnvelopeReader(headers, _our_cmk(cmk, matdesc), object_name=key, integrity_policy="if-present")
    assert b"".join(reader.decrypt_chunks(body)) == plain
    for spec, expected in [("bytes=17-1000", plain[17:1001]), ("bytes=-77", plain[-77:])]:
        plan = reader.plan_range(spec, len(body))
        ranged = _plain_bucket(buckets).get_object(key, byte_range=plan.oss2_byte_range()).read()
        assert b"".join(reader.decrypt_chunks(ranged, range_plan=plan)) == expected


@pytest.mark.parametrize("matdesc", [None, {"desc": "interop"}])
def test_we_read_cryptobucket_multipart(buckets, cmk, matdesc) -> None:
    plain = os.urandom(2 * PART + 333)
    key = f"oss2-multi-{uuid.uuid4().hex[:6]}"
    bucket = _crypto_bucket(buckets, cmk, matdesc)
    context = models.MultipartUploadCryptoContext(data_size=len(plain), part_size=PART)
    upload_id = bucket.init_multipart_upload(key, upload_context=context).upload_id
    parts = []
    for number, offset in enumerate(range(0, len(plain), PART), start=1):
        result = bucket.upload_part(key, upload_id, number, plain[offset : offset + PART], upload_context=context)
        parts.append(oss2.models.PartInfo(number, result.etag))
    bucket.complete_multipart_upload(key, upload_id, parts)
    headers, body = _raw(_plain_bucket(buckets), key)
    reader = EnvelopeReader(headers, _our_cmk(cmk, matdesc), object_name=key, integrity_policy="if-present")
    assert b"".join(reader.decrypt_chunks(body)) == plain
    plan = reader.plan_range(f"bytes={PART - 5}-{PART + 5}", len(body))
    ranged = _plain_bucket(buckets).get_object(key, byte_range=plan.oss2_byte_range()).read()
    assert b"".join(reader.decrypt_chunks(ranged, range_plan=plan)) == plain[PART - 5 : PART + 6]


@pytest.mark.parametrize("matdesc", [None, {"desc": "interop"}])
def test_cryptobucket_reads_our_single_put_whole_and_ranged(buckets, cmk, matdesc) -> None:
    plain = os.urandom(7000)
    key = f"ours-single-{uuid.uuid4().hex[:6]}"
    writer = EnvelopeWriter(_our_cmk(cmk, matdesc), object_name=key)
    headers = writer.metadata(plaintext_length=len(plain), integrity=writer.compute_integrity(plain))
    _plain_bucket(buckets).put_object(key, b"".join(writer.encrypt_chunks(plain)), headers=headers)
    crypto = _crypto_bucket(buckets, cmk, matdesc)
    assert crypto.get_object(key).read() == plain
    assert crypto.get_object(key, byte_range=(1000, 2000)).read() == plain[1000:2001]


@pytest.mark.parametrize("matdesc", [None, {"desc": "interop"}])
def test_cryptobucket_reads_our_multipart(buckets, cmk, matdesc) -> None:
    plain = os.urandom(2 * PART + 100)
    key = f"ours-multi-{uuid.uuid4().hex[:6]}"
    writer = EnvelopeWriter(_our_cmk(cmk, matdesc), object_name=key)
    plan = plan_parts(len(plain), PART)
    headers = writer.metadata(part_plan=plan, integrity=writer.compute_integrity(plain, segment_size=plan.part_size))
    bucket = _plain_bucket(buckets)
    upload_id = bucket.init_multipart_upload(key, headers=headers).upload_id
    infos = []
    for part in reversed(list(plan.parts())):  # any order
        data = writer.encrypt_part(plan, part.number, plain[part.offset : part.offset + part.size])
        infos.append(
            oss2.models.PartInfo(
                part.number, bucket.upload_part(key, upload_id, part.number, data, headers=headers).etag
            )
        )
    bucket.complete_multipart_upload(key, upload_id, sorted(infos, key=lambda p: p.part_number))
    crypto = _crypto_bucket(buckets, cmk, matdesc)
    assert crypto.get_object(key).read() == plain
    assert crypto.get_object(key, byte_range=(PART - 16, PART + 40)).read() == plain[PART - 16 : PART + 41]
    headers_back, body = _raw(bucket, key)
    reader = EnvelopeReader(headers_back, _our_cmk(cmk, matdesc), object_name=key, integrity_policy="require")
    assert b"".join(reader.decrypt_chunks(body)) == plain
