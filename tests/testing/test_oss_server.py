"""The local OSS server speaks OSS as oss2 uses it, with v1 (``Auth``) and v4 (``AuthV4``) signatures."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from collections.abc import Iterator

import oss2
import pytest
from oss2.models import PartInfo

from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.testing.oss_server.checksums import crc64, crc64_combine

PART = 100 * 1024


@pytest.fixture(params=["v1", "v4"])
def bucket(request: pytest.FixtureRequest, osscse_oss_server: LocalOSSServer) -> oss2.Bucket:
    server = osscse_oss_server
    name = f"oss-server-{request.param}"
    server.create_bucket(name)
    auth_class = oss2.Auth if request.param == "v1" else oss2.AuthV4
    return oss2.Bucket(
        auth_class(server.access_key_id, server.access_key_secret), server.endpoint, name, region=server.region
    )


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:8]}/"


def oss2_crc(data: bytes) -> int:
    crc = oss2.utils.Crc64()
    crc.update(data)
    return crc.crc


def test_crc64_and_combine_match_oss2() -> None:
    a, b = os.urandom(1000), os.urandom(123_457)
    assert crc64(a + b) == oss2_crc(a + b)
    assert crc64_combine(crc64(a), crc64(b), len(b)) == crc64(a + b)


def test_put_then_get_returns_body_etag_crc_content_type_and_lowercased_metadata(
    bucket: oss2.Bucket, prefix: str
) -> None:
    data = b"hello local oss"
    put = bucket.put_object(
        prefix + "k", data, headers={"x-oss-meta-Mixed-Case": "Value", "Content-Type": "text/plain"}
    )
    assert put.etag == hashlib.md5(data).hexdigest().upper()
    assert put.crc == oss2_crc(data)
    got = bucket.get_object(prefix + "k")
    assert got.read() == data
    assert got.headers["x-oss-meta-mixed-case"] == "Value"
    assert got.headers["Content-Type"] == "text/plain"
    assert got.headers["ETag"] == f'"{put.etag}"'
    assert got.server_crc == oss2_crc(data)
    assert got.last_modified > 0


def test_head_object_meta_and_exists(bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "h", b"12345", headers={"x-oss-meta-a": "1"})
    head = bucket.head_object(prefix + "h")
    assert head.content_length == 5 and head.headers["x-oss-meta-a"] == "1"
    meta = bucket.get_object_meta(prefix + "h")
    assert meta.content_length == 5 and meta.etag == hashlib.md5(b"12345").hexdigest().upper()
    assert bucket.object_exists(prefix + "h")
    assert not bucket.object_exists(prefix + "missing")


def test_ranges_closed_open_and_suffix_return_206_slices(bucket: oss2.Bucket, prefix: str) -> None:
    data = bytes(range(100))
    bucket.put_object(prefix + "r", data)
    closed = bucket.get_object(prefix + "r", byte_range=(10, 19))
    assert closed.status == 206 and closed.read() == data[10:20]
    assert closed.headers["Content-Range"] == "bytes 10-19/100"
    assert bucket.get_object(prefix + "r", byte_range=(90, None)).read() == data[90:]
    assert bucket.get_object(prefix + "r", byte_range=(None, 7)).read() == data[-7:]


def test_unsatisfiable_range_returns_whole_object_unless_standard_behaviour(bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "r", b"0123456789")
    whole = bucket.get_object(prefix + "r", byte_range=(50, 60))
    assert whole.status == 200 and whole.read() == b"0123456789"
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.get_object(prefix + "r", byte_range=(50, 60), headers={"x-oss-range-behavior": "standard"})
    assert caught.value.status == 416 and caught.value.code == "InvalidRange"


def test_copy_keeps_metadata_and_replace_swaps_it(bucket: oss2.Bucket, prefix: str) -> None:
    bucket.put_object(prefix + "src", b"copy me", headers={"x-oss-meta-a": "1", "Content-Type": "text/x-a"})
    result = bucket.copy_object(bucket.bucket_name, prefix + "src", prefix + "kept")
    assert result.etag == hashlib.md5(b"copy me").hexdigest().upper()
    kept = bucket.get_object(prefix + "kept")
    assert (
        kept.read() == b"copy me" and kept.headers["x-oss-meta-a"] == "1" and kept.headers["Content-Type"] == "text/x-a"
    )
    bucket.copy_object(
        bucket.bucket_name,
        prefix + "src",
        prefix + "replaced",
        headers={"x-oss-metadata-directive": "REPLACE", "x-oss-meta-b": "2", "Content-Type": "text/x-b"},
    )
    replaced = bucket.head_object(prefix + "replaced")
    assert replaced.headers["x-oss-meta-b"] == "2" and "x-oss-meta-a" not in replaced.headers
    assert replaced.content_type == "text/x-b"


def test_delete_and_batch_delete_remove_objects(bucket: oss2.Bucket, prefix: str) -> None:
    keys = [prefix + name for name in ("a", "b c", "d+e", "f%g")]
    for key in keys:
        bucket.put_object(key, b"x")
    bucket.delete_object(keys[0])
    assert not bucket.object_exists(keys[0])
    bucket.delete_object(prefix + "never-existed")  # OSS answers 204 either way
    result = bucket.batch_delete_objects(keys[1:])
    assert sorted(result.deleted_keys) == sorted(keys[1:])
    assert not any(bucket.object_exists(key) for key in keys)


@pytest.fixture
def listing_keys(bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer, prefix: str) -> list[str]:
    keys = [f"{prefix}flat-{i:03d}" for i in range(260)] + [
        f"{prefix}dir{d}/obj{i}" for d in range(3) for i in range(4)
    ]
    for key in keys:  # planted at rest: the listing, not the upload, is under test
        osscse_oss_server.overwrite_stored(bucket.bucket_name, key, data=b"z")
    return sorted(keys)


def test_list_objects_v1_paginates_with_marker(bucket: oss2.Bucket, prefix: str, listing_keys: list[str]) -> None:
    listed = [o.key for o in oss2.ObjectIterator(bucket, prefix=prefix, max_keys=100)]
    assert listed == listing_keys
    first = bucket.list_objects(prefix=prefix, max_keys=7)
    assert first.is_truncated and first.next_marker == listing_keys[6]


def test_list_objects_v2_paginates_with_continuation_token_and_start_after(
    bucket: oss2.Bucket, prefix: str, listing_keys: list[str]
) -> None:
    listed = [o.key for o in oss2.ObjectIteratorV2(bucket, prefix=prefix, max_keys=99)]
    assert listed == listing_keys
    after = bucket.list_objects_v2(prefix=prefix, start_after=listing_keys[-3])
    assert [o.key for o in after.object_list] == listing_keys[-2:]


def test_list_with_delimiter_groups_common_prefixes_across_pages(
    bucket: oss2.Bucket, prefix: str, listing_keys: list[str]
) -> None:
    for iterator in (oss2.ObjectIterator, oss2.ObjectIteratorV2):
        entries = list(iterator(bucket, prefix=prefix, delimiter="/", max_keys=50))
        dirs = [e.key for e in entries if e.is_prefix()]
        assert dirs == [f"{prefix}dir{d}/" for d in range(3)]
        assert len(entries) == 263


AWKWARD_KEYS = [
    "with space.txt",
    "plus+percent%amp&eq=q?.bin",
    "ünïcødé/日本語.txt",
    "a//double/slash",
    "~tilde*star'quote",
]


@pytest.mark.parametrize("name", AWKWARD_KEYS)
def test_awkward_key_names_round_trip_and_list(bucket: oss2.Bucket, prefix: str, name: str) -> None:
    key = prefix + name
    bucket.put_object(key, name.encode())
    assert bucket.get_object(key).read() == name.encode()
    assert [o.key for o in bucket.list_objects_v2(prefix=prefix).object_list] == [key]
    bucket.copy_object(bucket.bucket_name, key, key + ".copy")
    assert bucket.get_object(key + ".copy").read() == name.encode()


def test_multipart_upload_with_part_copy_lists_and_completes(bucket: oss2.Bucket, prefix: str) -> None:
    key = prefix + "mp"
    source = os.urandom(3 * PART)
    bucket.put_object(prefix + "source", source)
    part1, tail = os.urandom(PART + 5), b"the tail"
    upload_id = bucket.init_multipart_upload(key, headers={"x-oss-meta-m": "v"}).upload_id
    r1 = bucket.upload_part(key, upload_id, 1, part1)
    assert r1.crc == oss2_crc(part1)
    r2 = bucket.upload_part_copy(bucket.bucket_name, prefix + "source", (PART, 2 * PART + 9), key, upload_id, 2)
    r3 = bucket.upload_part(key, upload_id, 3, tail)
    listed = bucket.list_parts(key, upload_id)
    assert [(p.part_number, p.size) for p in listed.parts] == [(1, PART + 5), (2, PART + 10), (3, len(tail))]
    uploads = bucket.list_multipart_uploads(prefix=prefix)
    assert [(u.key, u.upload_id) for u in uploads.upload_list] == [(key, upload_id)]
    sizes = [PART + 5, PART + 10, len(tail)]
    crcs = [r1.crc, oss2_crc(source[PART : 2 * PART + 10]), r3.crc]
    parts = [
        PartInfo(n, r.etag, size=s, part_crc=c) for n, r, s, c in zip((1, 2, 3), (r1, r2, r3), sizes, crcs, strict=True)
    ]
    done = bucket.complete_multipart_upload(key, upload_id, parts)  # oss2 checks the combined CRC
    expected = part1 + source[PART : 2 * PART + 10] + tail
    md5s = b"".join(hashlib.md5(p).digest() for p in (part1, source[PART : 2 * PART + 10], tail))
    assert done.etag == f"{hashlib.md5(md5s).hexdigest().upper()}-3"
    got = bucket.get_object(key)
    assert got.read() == expected and got.headers["x-oss-meta-m"] == "v"
    assert bucket.list_multipart_uploads(prefix=prefix).upload_list == []


def test_abort_removes_upload_and_unknown_upload_is_no_such_upload(bucket: oss2.Bucket, prefix: str) -> None:
    key = prefix + "aborted"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 1, b"x")
    bucket.abort_multipart_upload(key, upload_id)
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.upload_part(key, upload_id, 2, b"y")
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)


@pytest.mark.parametrize(
    ("sizes", "order", "corrupt_etag", "code"),
    [
        ((PART - 1, 10), (1, 2), False, "EntityTooSmall"),
        ((PART, 10), (2, 2), False, "InvalidPartOrder"),  # oss2 sorts parts; a repeat is still out of order
        ((PART, 10), (1, 2), True, "InvalidPart"),
    ],
)
def test_complete_enforces_multipart_rules(
    bucket: oss2.Bucket, prefix: str, sizes: tuple[int, int], order: tuple[int, int], corrupt_etag: bool, code: str
) -> None:
    key = prefix + code
    upload_id = bucket.init_multipart_upload(key).upload_id
    etags = {
        n: bucket.upload_part(key, upload_id, n, os.urandom(size)).etag for n, size in zip((1, 2), sizes, strict=True)
    }
    if corrupt_etag:
        etags[2] = "0" * 32
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(n, etags[n]) for n in order])
    assert (caught.value.status, caught.value.code) == (400, code)
    bucket.abort_multipart_upload(key, upload_id)


def test_chunked_request_body_is_accepted(bucket: oss2.Bucket, prefix: str) -> None:
    chunks = [os.urandom(70_000) for _ in range(5)]
    result = bucket.put_object(prefix + "chunked", iter(chunks))  # a generator is sent chunked
    assert result.crc == oss2_crc(b"".join(chunks))
    assert bucket.get_object(prefix + "chunked").read() == b"".join(chunks)


def test_wrong_content_md5_is_invalid_digest(bucket: oss2.Bucket, prefix: str) -> None:
    wrong = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    with pytest.raises(oss2.exceptions.InvalidDigest):
        bucket.put_object(prefix + "md5", b"data", headers={"Content-MD5": wrong})
    assert not bucket.object_exists(prefix + "md5")
    right = base64.b64encode(hashlib.md5(b"data").digest()).decode()
    bucket.put_object(prefix + "md5", b"data", headers={"Content-MD5": right})


def test_user_metadata_over_8_kb_is_rejected(bucket: oss2.Bucket, prefix: str) -> None:
    with pytest.raises(oss2.exceptions.InvalidArgument) as caught:
        bucket.put_object(prefix + "meta", b"x", headers={"x-oss-meta-big": "v" * 8200})
    assert caught.value.ec == "0011-00000002"


def test_missing_key_and_bucket_map_to_oss2_exceptions(
    bucket: oss2.Bucket, prefix: str, osscse_oss_server: LocalOSSServer
) -> None:
    with pytest.raises(oss2.exceptions.NoSuchKey):
        bucket.get_object(prefix + "missing")
    with pytest.raises(oss2.exceptions.NoSuchKey):  # HEAD: the error travels in x-oss-err
        bucket.head_object(prefix + "missing")
    other = oss2.Bucket(bucket.auth, bucket.endpoint, "no-such-bucket-here", region=osscse_oss_server.region)
    with pytest.raises(oss2.exceptions.NoSuchBucket):
        other.put_object("k", b"x")


def test_bucket_create_list_and_delete_refuses_non_empty(
    bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer
) -> None:
    name = f"tmp-{uuid.uuid4().hex[:10]}"
    fresh = oss2.Bucket(bucket.auth, bucket.endpoint, name, region=osscse_oss_server.region)
    fresh.create_bucket()
    service = oss2.Service(bucket.auth, bucket.endpoint, region=osscse_oss_server.region)
    assert name in [b.name for b in service.list_buckets().buckets]
    assert fresh.get_bucket_info().name == name
    fresh.put_object("k", b"x")
    with pytest.raises(oss2.exceptions.BucketNotEmpty):
        fresh.delete_bucket()
    fresh.delete_object("k")
    fresh.delete_bucket()
    assert name not in [b.name for b in service.list_buckets().buckets]


@pytest.mark.parametrize("auth_class", [oss2.Auth, oss2.AuthV4])
def test_wrong_secret_is_signature_does_not_match(osscse_oss_server: LocalOSSServer, auth_class: type) -> None:
    server = osscse_oss_server
    server.create_bucket("oss-server-auth")
    bad = oss2.Bucket(
        auth_class(server.access_key_id, "wrong-secret"), server.endpoint, "oss-server-auth", region=server.region
    )
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        bad.put_object("k", b"body that must be drained")
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        oss2.Bucket(
            auth_class("unknown-ak", server.access_key_secret), server.endpoint, "oss-server-auth", region=server.region
        ).get_object("k")
    assert (caught.value.status, caught.value.code) == (403, "InvalidAccessKeyId")


@pytest.fixture
def sts_server() -> Iterator[LocalOSSServer]:
    with LocalOSSServer("STS.ak", "sts-secret", security_token="token-123") as server:
        server.create_bucket("sts")
        yield server


@pytest.mark.parametrize("version", ["v1", "v4"])
def test_security_token_is_required_when_configured(sts_server: LocalOSSServer, version: str) -> None:
    auth = oss2.StsAuth("STS.ak", "sts-secret", "token-123", auth_version=version)
    good = oss2.Bucket(auth, sts_server.endpoint, "sts", region=sts_server.region)
    good.put_object("k", b"v")
    assert good.get_object("k").read() == b"v"
    without = oss2.Bucket(oss2.AuthV4("STS.ak", "sts-secret"), sts_server.endpoint, "sts", region=sts_server.region)
    with pytest.raises(oss2.exceptions.ServerError) as caught:
        without.get_object("k")
    assert caught.value.status == 403
