"""The server-side client-side-encryption checks real OSS applies, proven with raw oss2 calls."""

from __future__ import annotations

import os
import uuid

import oss2
import pytest
from oss2.models import PartInfo

from airflow_provider_osscse.testing.oss_server import LocalOSSServer

CSE = "x-oss-meta-client-side-encryption-"
ENVELOPE = {
    CSE + "key": "d3JhcHBlZC1rZXk=",
    CSE + "start": "d3JhcHBlZC1pdg==",
    CSE + "cek-alg": "AES/CTR/NoPadding",
    CSE + "wrap-alg": "RSA/NONE/PKCS1Padding",
}
PART = 100 * 1024


@pytest.fixture
def bucket(osscse_oss_server: LocalOSSServer) -> oss2.Bucket:
    server = osscse_oss_server
    server.create_bucket("oss-server-cse")
    return oss2.Bucket(
        oss2.AuthV4(server.access_key_id, server.access_key_secret),
        server.endpoint,
        "oss-server-cse",
        region=server.region,
    )


@pytest.fixture
def key() -> str:
    return f"cse-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("missing", ["key", "start", "cek-alg", "wrap-alg"])
def test_put_with_incomplete_envelope_is_rejected(bucket: oss2.Bucket, key: str, missing: str) -> None:
    headers = {name: value for name, value in ENVELOPE.items() if name != CSE + missing}
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.put_object(key, b"ciphertext", headers=headers)
    assert not bucket.object_exists(key)


def test_put_with_complete_envelope_is_stored_with_its_headers(
    bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer, key: str
) -> None:
    bucket.put_object(key, b"ciphertext", headers={**ENVELOPE, CSE + "matdesc": '{"k":"v"}'})
    stored = osscse_oss_server.stored_object(bucket.bucket_name, key)
    assert stored.data == b"ciphertext"
    assert {n: v for n, v in stored.metadata.items() if n in ENVELOPE} == ENVELOPE


def _multipart_headers(data_size: int, part_size: int = PART) -> dict[str, str]:
    return {**ENVELOPE, CSE + "data-size": str(data_size), CSE + "part-size": str(part_size)}


def test_cse_multipart_with_consistent_headers_completes(bucket: oss2.Bucket, key: str) -> None:
    headers = _multipart_headers(PART + 16)
    upload_id = bucket.init_multipart_upload(key, headers=headers).upload_id
    parts = [
        PartInfo(n, bucket.upload_part(key, upload_id, n, os.urandom(size), headers=headers).etag)
        for n, size in ((1, PART), (2, 16))
    ]
    bucket.complete_multipart_upload(key, upload_id, parts)
    assert bucket.head_object(key).headers[CSE + "part-size"] == str(PART)


def test_cse_multipart_init_without_part_size_is_rejected(bucket: oss2.Bucket, key: str) -> None:
    with pytest.raises(oss2.exceptions.InvalidArgument) as caught:
        bucket.init_multipart_upload(key, headers=ENVELOPE)
    assert caught.value.ec == "0005-00000407"


@pytest.mark.parametrize("change", ["differs", "missing"])
def test_upload_part_with_cse_headers_unlike_init_is_rejected(bucket: oss2.Bucket, key: str, change: str) -> None:
    headers = _multipart_headers(PART)
    upload_id = bucket.init_multipart_upload(key, headers=headers).upload_id
    part_headers = {**headers, CSE + "start": "b3RoZXItaXY="} if change == "differs" else {}
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.upload_part(key, upload_id, 1, os.urandom(PART), headers=part_headers)
    bucket.abort_multipart_upload(key, upload_id)


@pytest.mark.parametrize(
    ("sizes", "data_size"),
    [((PART + 16, 16), PART + 32), ((PART, 16), PART + 32)],
    ids=["part-not-part-size", "sum-not-data-size"],
)
def test_complete_checks_part_size_and_data_size(
    bucket: oss2.Bucket, key: str, sizes: tuple[int, int], data_size: int
) -> None:
    headers = _multipart_headers(data_size)
    upload_id = bucket.init_multipart_upload(key, headers=headers).upload_id
    parts = [
        PartInfo(n, bucket.upload_part(key, upload_id, n, os.urandom(s), headers=headers).etag)
        for n, s in zip((1, 2), sizes, strict=True)
    ]
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.complete_multipart_upload(key, upload_id, parts)
    bucket.abort_multipart_upload(key, upload_id)


@pytest.mark.parametrize(
    "new_cse",
    [
        {**ENVELOPE, CSE + "key": "b3RoZXI="},
        {n: v for n, v in ENVELOPE.items() if n != CSE + "start"},
        {**ENVELOPE, CSE + "matdesc": "{}"},
    ],
    ids=["changes", "removes", "adds"],
)
def test_replace_copy_touching_cse_headers_is_refused(bucket: oss2.Bucket, key: str, new_cse: dict[str, str]) -> None:
    bucket.put_object(key, b"ciphertext", headers=ENVELOPE)
    with pytest.raises(oss2.exceptions.InvalidArgument):
        bucket.copy_object(
            bucket.bucket_name, key, key + ".copy", headers={"x-oss-metadata-directive": "REPLACE", **new_cse}
        )


def test_replace_copy_keeping_cse_headers_may_change_other_metadata(bucket: oss2.Bucket, key: str) -> None:
    bucket.put_object(key, b"ciphertext", headers={**ENVELOPE, "x-oss-meta-owner": "a"})
    bucket.copy_object(
        bucket.bucket_name,
        key,
        key,
        headers={"x-oss-metadata-directive": "REPLACE", **ENVELOPE, "x-oss-meta-owner": "b"},
    )
    head = bucket.head_object(key)
    assert head.headers["x-oss-meta-owner"] == "b" and head.headers[CSE + "key"] == ENVELOPE[CSE + "key"]


def test_plain_copy_keeps_cse_headers_and_bytes(
    bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer, key: str
) -> None:
    bucket.put_object(key, b"ciphertext", headers=ENVELOPE)
    bucket.copy_object(bucket.bucket_name, key, key + ".copy")
    copy = osscse_oss_server.stored_object(bucket.bucket_name, key + ".copy")
    assert copy.data == b"ciphertext"
    assert {n: v for n, v in copy.metadata.items() if n.startswith(CSE)} == ENVELOPE
