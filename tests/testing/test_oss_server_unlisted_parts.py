"""CompleteMultipartUpload assembles only the parts it names, as real OSS does, and the upload goes.

OSS documents that Complete combines the parts listed (part numbers ascending, gaps allowed, every
listed part but the last at least 100 KB) and that the upload id is invalid afterwards: a part that
was uploaded but not listed is not in the object and does not survive. The provider relies on it: its
marker part (number 10,000, a few bytes) is never listed. The CSE checks (part-size, data-size) apply
to the listed parts only, which are the object.
"""

from __future__ import annotations

import hashlib
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
BUCKET = "oss-server-unlisted"


@pytest.fixture
def bucket(osscse_oss_server: LocalOSSServer) -> oss2.Bucket:
    server = osscse_oss_server
    server.create_bucket(BUCKET)
    return oss2.Bucket(
        oss2.AuthV4(server.access_key_id, server.access_key_secret), server.endpoint, BUCKET, region=server.region
    )


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "cse"])
def test_complete_assembles_the_listed_parts_and_drops_a_small_unlisted_part_10000(
    bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer, encrypted: bool
) -> None:
    key = f"unlisted-{uuid.uuid4().hex[:8]}"
    first, last = os.urandom(PART), os.urandom(4000)
    headers = {**ENVELOPE, CSE + "data-size": str(PART + 4000), CSE + "part-size": str(PART)} if encrypted else {}
    upload_id = bucket.init_multipart_upload(key, headers=headers).upload_id
    bucket.upload_part(key, upload_id, 10_000, b"a marker of 64 bytes".ljust(64), headers=headers)
    parts = [
        PartInfo(n, bucket.upload_part(key, upload_id, n, data, headers=headers).etag)
        for n, data in ((1, first), (2, last))
    ]
    assert [p.part_number for p in bucket.list_parts(key, upload_id).parts] == [1, 2, 10_000]

    bucket.complete_multipart_upload(key, upload_id, parts)

    stored = osscse_oss_server.stored_object(BUCKET, key)
    assert stored.data == first + last
    expected_etag = hashlib.md5(hashlib.md5(first).digest() + hashlib.md5(last).digest()).hexdigest().upper() + "-2"
    assert stored.etag == expected_etag
    assert [u for u in osscse_oss_server.list_multipart_uploads(BUCKET) if u.key == key] == []
    with pytest.raises(oss2.exceptions.NoSuchUpload):
        bucket.list_parts(key, upload_id)


def test_abort_removes_the_marker_part_with_the_upload(bucket: oss2.Bucket, osscse_oss_server: LocalOSSServer) -> None:
    key = f"unlisted-abort-{uuid.uuid4().hex[:8]}"
    upload_id = bucket.init_multipart_upload(key).upload_id
    bucket.upload_part(key, upload_id, 10_000, b"marker".ljust(64))
    bucket.abort_multipart_upload(key, upload_id)
    assert [u for u in osscse_oss_server.list_multipart_uploads(BUCKET) if u.key == key] == []
    assert not bucket.object_exists(key)
