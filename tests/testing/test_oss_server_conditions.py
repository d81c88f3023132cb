"""Conditional requests on the local OSS server, through real oss2 with v1 and v4 signatures.

GET/HEAD ``If-*``, CopyObject/UploadPartCopy ``x-oss-copy-source-if-*`` (against the source) and
``x-oss-forbid-overwrite`` on PutObject/CopyObject/InitiateMultipartUpload/CompleteMultipartUpload.
"""

from __future__ import annotations

import contextlib
import email.utils
import threading
import uuid

import oss2
import pytest
from oss2.models import PartInfo

from airflow_provider_osscse.testing.oss_server import LocalOSSServer

PART = 100 * 1024


@pytest.fixture(params=["v1", "v4"])
def bucket(request: pytest.FixtureRequest, osscse_oss_server: LocalOSSServer) -> oss2.Bucket:
    server = osscse_oss_server
    name = f"oss-conditions-{request.param}"
    server.create_bucket(name)
    auth = (oss2.Auth if request.param == "v1" else oss2.AuthV4)(server.access_key_id, server.access_key_secret)
    return oss2.Bucket(auth, server.endpoint, name, region=server.region)


@pytest.fixture
def key() -> str:
    return f"c-{uuid.uuid4().hex[:10]}"


def _date(seconds: float) -> str:
    return email.utils.formatdate(seconds, usegmt=True)


def _put(bucket: oss2.Bucket, key: str, data: bytes = b"conditional body") -> tuple[str, int]:
    """(ETag without quotes, Last-Modified in seconds)."""
    bucket.put_object(key, data)
    head = bucket.head_object(key)
    return head.etag, head.last_modified


def _is_file_already_exists(error: oss2.exceptions.ServerError) -> bool:
    # oss2 has no class for (409, FileAlreadyExists): it is a plain ServerError, not a Conflict subclass.
    return type(error) is oss2.exceptions.ServerError and error.status == 409 and error.code == "FileAlreadyExists"


# --------------------------------------------------------------------------------------------- GET / HEAD


@pytest.mark.parametrize("method", ["get", "head"])
def test_read_conditions_pass(bucket: oss2.Bucket, key: str, method: str) -> None:
    etag, modified = _put(bucket, key)
    read = (
        (lambda h: bucket.get_object(key, headers=h).read())
        if method == "get"
        else (lambda h: bucket.head_object(key, headers=h))
    )
    passing = [
        {"If-Match": f'"{etag}"'},
        {"If-Match": etag.lower()},  # without quotes, lower-case hex
        {"If-Match": f'"0123", "{etag}"'},  # a list
        {"If-Match": "*"},
        {"If-None-Match": '"0123456789ABCDEF0123456789ABCDEF"'},
        {"If-Modified-Since": _date(modified - 60)},
        {"If-Unmodified-Since": _date(modified)},
        {"If-Unmodified-Since": _date(modified + 60)},
        {"If-Modified-Since": "not a date"},  # an unparseable date is ignored
        # RFC 7232 precedence: a true If-Match overrides a false If-Unmodified-Since ...
        {"If-Match": f'"{etag}"', "If-Unmodified-Since": _date(modified - 60)},
        # ... and a true If-None-Match overrides a false If-Modified-Since.
        {"If-None-Match": '"0123"', "If-Modified-Since": _date(modified + 60)},
    ]
    for headers in passing:
        result = read(headers)
        if method == "get":
            assert result == b"conditional body", headers


@pytest.mark.parametrize("method", ["get", "head"])
def test_read_conditions_fail_with_412_or_304(bucket: oss2.Bucket, key: str, method: str) -> None:
    etag, modified = _put(bucket, key)
    read = (
        (lambda h: bucket.get_object(key, headers=h))
        if method == "get"
        else (lambda h: bucket.head_object(key, headers=h))
    )
    with pytest.raises(oss2.exceptions.PreconditionFailed) as failed:
        read({"If-Match": '"0123456789ABCDEF0123456789ABCDEF"'})
    assert failed.value.details.get("Condition") == "If-Match"  # GET: XML body; HEAD: x-oss-err header
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        read({"If-Unmodified-Since": _date(modified - 1)})
    with pytest.raises(oss2.exceptions.PreconditionFailed):  # If-Match is evaluated before If-None-Match
        read({"If-Match": '"0123"', "If-None-Match": f'"{etag}"'})
    for headers in (
        {"If-None-Match": f'"{etag}"'},
        {"If-None-Match": etag.lower()},
        {"If-None-Match": "*"},
        {"If-Modified-Since": _date(modified)},
        {"If-Modified-Since": _date(modified + 60)},
    ):
        with pytest.raises(oss2.exceptions.NotModified) as not_modified:
            read(headers)
        assert not_modified.value.status == 304
    assert bucket.get_object(key).read() == b"conditional body"  # the connection is still usable


# --------------------------------------------------------------------------------------------- copies


def test_copy_object_source_conditions(bucket: oss2.Bucket, key: str) -> None:
    etag, modified = _put(bucket, key)
    name = bucket.bucket_name
    for i, headers in enumerate(
        [
            {"x-oss-copy-source-if-match": f'"{etag}"'},
            {"x-oss-copy-source-if-match": etag.lower()},
            {"x-oss-copy-source-if-none-match": '"0123"'},
            {"x-oss-copy-source-if-modified-since": _date(modified - 60)},
            {"x-oss-copy-source-if-unmodified-since": _date(modified)},
        ]
    ):
        bucket.copy_object(name, key, f"{key}-ok{i}", headers=headers)
        assert bucket.get_object(f"{key}-ok{i}").read() == b"conditional body"
    failing = [
        ({"x-oss-copy-source-if-match": '"0123"'}, oss2.exceptions.PreconditionFailed),
        ({"x-oss-copy-source-if-unmodified-since": _date(modified - 1)}, oss2.exceptions.PreconditionFailed),
        ({"x-oss-copy-source-if-none-match": f'"{etag}"'}, oss2.exceptions.NotModified),
        ({"x-oss-copy-source-if-modified-since": _date(modified)}, oss2.exceptions.NotModified),
    ]
    for headers, error in failing:
        with pytest.raises(error):
            bucket.copy_object(name, key, f"{key}-no", headers=headers)
        with pytest.raises(error):  # onto itself (metadata update) too
            bucket.copy_object(
                name, key, key, headers={**headers, "x-oss-metadata-directive": "REPLACE", "x-oss-meta-x": "1"}
            )
    assert not bucket.object_exists(f"{key}-no")
    assert "x-oss-meta-x" not in bucket.head_object(key).headers
    # The conditions apply to the source, not to the (different, existing) target.
    target_etag, _ = _put(bucket, f"{key}-target", b"other")
    with pytest.raises(oss2.exceptions.PreconditionFailed):
        bucket.copy_object(name, key, f"{key}-target", headers={"x-oss-copy-source-if-match": f'"{target_etag}"'})
    assert bucket.get_object(f"{key}-target").read() == b"other"


def test_upload_part_copy_source_conditions(bucket: oss2.Bucket, key: str) -> None:
    etag, modified = _put(bucket, key, b"0123456789" * 10)
    name = bucket.bucket_name
    upload_id = bucket.init_multipart_upload(f"{key}-mp").upload_id
    ok = bucket.upload_part_copy(
        name, key, (0, 49), f"{key}-mp", upload_id, 1, headers={"x-oss-copy-source-if-match": f'"{etag}"'}
    )
    bucket.upload_part_copy(
        name,
        key,
        (0, 49),
        f"{key}-mp",
        upload_id,
        2,
        headers={"x-oss-copy-source-if-unmodified-since": _date(modified)},
    )
    bucket.upload_part_copy(
        name, key, (0, 49), f"{key}-mp", upload_id, 3, headers={"x-oss-copy-source-if-none-match": '"0123"'}
    )
    bucket.upload_part_copy(
        name,
        key,
        (0, 49),
        f"{key}-mp",
        upload_id,
        4,
        headers={"x-oss-copy-source-if-modified-since": _date(modified - 60)},
    )
    failing = [
        ({"x-oss-copy-source-if-match": '"0123"'}, oss2.exceptions.PreconditionFailed),
        ({"x-oss-copy-source-if-unmodified-since": _date(modified - 1)}, oss2.exceptions.PreconditionFailed),
        ({"x-oss-copy-source-if-none-match": f'"{etag}"'}, oss2.exceptions.NotModified),
        ({"x-oss-copy-source-if-modified-since": _date(modified + 60)}, oss2.exceptions.NotModified),
    ]
    for headers, error in failing:
        with pytest.raises(error):
            bucket.upload_part_copy(name, key, (50, 99), f"{key}-mp", upload_id, 5, headers=headers)
    parts = bucket.list_parts(f"{key}-mp", upload_id).parts
    assert [p.part_number for p in parts] == [1, 2, 3, 4] and parts[0].etag == ok.etag
    bucket.abort_multipart_upload(f"{key}-mp", upload_id)


# --------------------------------------------------------------------------------------------- forbid overwrite


FORBID = {"x-oss-forbid-overwrite": "true"}


def test_put_object_forbid_overwrite(bucket: oss2.Bucket, key: str) -> None:
    bucket.put_object(key, b"first", headers=FORBID)  # absent: written
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        bucket.put_object(key, b"second", headers=FORBID)
    assert _is_file_already_exists(refused.value)
    assert bucket.get_object(key).read() == b"first"
    bucket.put_object(key, b"third", headers={"x-oss-forbid-overwrite": "false"})
    assert bucket.get_object(key).read() == b"third"


def test_copy_object_forbid_overwrite(bucket: oss2.Bucket, key: str) -> None:
    name = bucket.bucket_name
    bucket.put_object(key, b"source")
    bucket.copy_object(name, key, f"{key}-new", headers=FORBID)
    bucket.put_object(f"{key}-old", b"existing")
    with pytest.raises(oss2.exceptions.ServerError) as refused:
        bucket.copy_object(name, key, f"{key}-old", headers=FORBID)
    assert _is_file_already_exists(refused.value)
    assert bucket.get_object(f"{key}-old").read() == b"existing"
    with pytest.raises(oss2.exceptions.ServerError) as onto_itself:
        bucket.copy_object(
            name, key, key, headers={**FORBID, "x-oss-metadata-directive": "REPLACE", "x-oss-meta-x": "1"}
        )
    assert _is_file_already_exists(onto_itself.value)
    assert "x-oss-meta-x" not in bucket.head_object(key).headers


def test_multipart_forbid_overwrite_at_init_and_complete(bucket: oss2.Bucket, key: str) -> None:
    bucket.put_object(f"{key}-exists", b"x")
    with pytest.raises(oss2.exceptions.ServerError) as at_init:
        bucket.init_multipart_upload(f"{key}-exists", headers=FORBID)
    assert _is_file_already_exists(at_init.value)

    upload_id = bucket.init_multipart_upload(key, headers=FORBID).upload_id
    part = bucket.upload_part(key, upload_id, 1, b"multipart body")
    bucket.put_object(key, b"raced in")  # the target appears between Init and Complete
    with pytest.raises(oss2.exceptions.ServerError) as at_complete:
        bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, part.etag)], headers=FORBID)
    assert _is_file_already_exists(at_complete.value)
    assert bucket.get_object(key).read() == b"raced in"
    assert [u.upload_id for u in bucket.list_multipart_uploads(prefix=key).upload_list] == [upload_id]  # kept
    bucket.delete_object(key)
    bucket.complete_multipart_upload(key, upload_id, [PartInfo(1, part.etag)], headers=FORBID)
    assert bucket.get_object(key).read() == b"multipart body"


def test_racing_writers_with_forbid_overwrite_exactly_one_wins(bucket: oss2.Bucket, key: str) -> None:
    """Writers all pass the early existence check, then commit at once: the lock lets one through."""
    writers = 8
    barrier = threading.Barrier(writers)
    outcomes: list[object] = []
    lock = threading.Lock()

    def body(i: int):  # chunked body: the request (and the server's early check) starts before the data
        barrier.wait(timeout=5)
        yield f"writer {i}".encode()

    def put(i: int) -> None:
        try:
            bucket.put_object(key, body(i), headers=FORBID)
            outcome: object = i
        except oss2.exceptions.ServerError as error:
            outcome = error
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=put, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    winners = [o for o in outcomes if isinstance(o, int)]
    losers = [o for o in outcomes if not isinstance(o, int)]
    assert len(winners) == 1 and len(losers) == writers - 1
    assert all(_is_file_already_exists(e) for e in losers)  # type: ignore[arg-type]
    assert bucket.get_object(key).read() == f"writer {winners[0]}".encode()


def test_racing_completes_with_forbid_overwrite_exactly_one_wins(bucket: oss2.Bucket, key: str) -> None:
    uploads = []
    for i in range(4):
        upload_id = bucket.init_multipart_upload(key, headers=FORBID).upload_id
        first = bucket.upload_part(key, upload_id, 1, bytes([i]) * PART)
        second = bucket.upload_part(key, upload_id, 2, b"tail")
        uploads.append((upload_id, [PartInfo(1, first.etag), PartInfo(2, second.etag)]))
    barrier = threading.Barrier(len(uploads))
    results: list[object] = []

    def complete(upload_id: str, parts: list[PartInfo]) -> None:
        barrier.wait(timeout=5)
        try:
            results.append(bucket.complete_multipart_upload(key, upload_id, parts, headers=FORBID).etag)
        except oss2.exceptions.ServerError as error:
            results.append(error)

    threads = [threading.Thread(target=complete, args=u) for u in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sum(isinstance(r, str) for r in results) == 1
    assert all(_is_file_already_exists(r) for r in results if not isinstance(r, str))  # type: ignore[arg-type]
    assert len(bucket.list_multipart_uploads(prefix=key).upload_list) == len(uploads) - 1
    for upload_id, _ in uploads[:]:
        with contextlib.suppress(oss2.exceptions.NoSuchUpload):
            bucket.abort_multipart_upload(key, upload_id)
