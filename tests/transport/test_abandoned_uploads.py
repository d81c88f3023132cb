"""Finding and aborting abandoned multipart uploads: only this provider's, only in the range asked.

The uploads here are made with plain oss2 the way each party makes them: this provider's carry its
marker part (number 10,000, the body for their purpose, as ``run_multipart`` sends it right after
Init) and a data part; other clients' have no marker, or a part 10,000 of their own. The killed runs
that leave such uploads for real are in ``tests/cli/test_abandoned_uploads_after_kill.py``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import oss2
import pytest

from airflow_provider_osscse.exceptions import OssUnavailableError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.transport import abandoned_uploads
from airflow_provider_osscse.transport.abandoned_uploads import MultipartUploads, parse_duration
from airflow_provider_osscse.transport.retry import RetryPolicy, is_transient
from airflow_provider_osscse.transport.transfer_base import TransferConfig
from tests.transfer_fixtures import BUCKET
from tests.transfer_fixtures import other_rsa_ref as other_rsa_ref  # a fixture, used by name
from tests.upload_cleanup import start_upload, uploads_aborted_after


@pytest.fixture
def prefix(oss_env: Any) -> Iterator[str]:
    name = f"abandoned/{uuid.uuid4().hex[:8]}/"
    with uploads_aborted_after(oss_env, EncryptedOSSHook("oss_v4").get_bucket(), name.rstrip("/")):
        yield name


@pytest.fixture
def bucket(oss_env: Any) -> oss2.Bucket:
    return EncryptedOSSHook("oss_v4").get_bucket()


@pytest.fixture
def uploads(oss_env: Any) -> Iterator[MultipartUploads]:
    yield EncryptedOSSHook("oss_v4").multipart_uploads
    oss_env.clear_faults()


def _left(oss_env: Any, prefix: str) -> list[str]:
    return sorted(u.key for u in oss_env.list_multipart_uploads(BUCKET) if u.key.startswith(prefix))


def test_only_uploads_carrying_the_providers_marker_are_aborted_others_are_reported_not_ours(
    bucket: oss2.Bucket, uploads: MultipartUploads, oss_env: Any, prefix: str
) -> None:
    start_upload(bucket, f"{prefix}ours-put", "put")
    start_upload(bucket, f"{prefix}ours-rewrap", "rewrap", data_parts=0)
    start_upload(bucket, f"{prefix}theirs", None, data_parts=2)
    start_upload(bucket, f"{prefix}theirs-10000", None, part_10000=b"someone else's last part".ljust(64))

    listed = {u.key.removeprefix(prefix): u for u in uploads.in_progress(prefix)}
    assert {k: u.purpose for k, u in listed.items()} == {
        "ours-put": "put",
        "ours-rewrap": "rewrap",
        "theirs": None,
        "theirs-10000": None,
    }
    assert listed["ours-put"].parts == 1 and listed["ours-rewrap"].parts == 0 and listed["theirs"].parts == 2
    assert listed["ours-rewrap"].last_activity is not None and listed["ours-rewrap"].initiated > 0

    outcomes = {o.upload.key.removeprefix(prefix): o.status for o in uploads.abort_abandoned(prefix, older_than=0)}
    assert outcomes == {
        "ours-put": "aborted",
        "ours-rewrap": "aborted",
        "theirs": "not-ours",
        "theirs-10000": "not-ours",
    }
    assert _left(oss_env, prefix) == [f"{prefix}theirs", f"{prefix}theirs-10000"]


def test_a_rewraps_clean_up_aborts_only_rewrap_uploads_inside_its_shard_range(
    bucket: oss2.Bucket, uploads: MultipartUploads, oss_env: Any, prefix: str
) -> None:
    for name in "abcde":
        start_upload(bucket, f"{prefix}{name}", "rewrap")
    start_upload(bucket, f"{prefix}c-put", "put")
    start_upload(bucket, f"{prefix}c-theirs", None)
    start_upload(bucket, f"{prefix[:-1]}-sibling/b", "rewrap")  # outside the prefix

    aborted = uploads.abort_abandoned_rewraps(prefix, start_after=f"{prefix}a", end_at=f"{prefix}c-theirs")
    assert sorted(o.upload.key for o in aborted) == [f"{prefix}b", f"{prefix}c"]
    assert {o.status for o in aborted} == {"aborted"}
    assert _left(oss_env, prefix) == [f"{prefix}{n}" for n in ("a", "c-put", "c-theirs", "d", "e")]
    assert _left(oss_env, f"{prefix[:-1]}-sibling/") == [f"{prefix[:-1]}-sibling/b"]


def test_an_upload_initiated_after_the_run_started_or_still_active_is_kept(
    bucket: oss2.Bucket, uploads: MultipartUploads, oss_env: Any, prefix: str
) -> None:
    start_upload(bucket, f"{prefix}k", "rewrap")
    hour_ago = time.time() - 3600
    kept = list(uploads.abort_abandoned(prefix, purposes=("rewrap",), older_than=None, initiated_before=hour_ago))
    assert [o.status for o in kept] == ["kept"]
    assert [o.status for o in uploads.abort_abandoned(prefix, older_than="1h")] == ["kept"], "idle for seconds only"
    assert [o.status for o in uploads.abort_abandoned(prefix, purposes=("put", "copy"), older_than=0)] == ["kept"]
    assert _left(oss_env, prefix) == [f"{prefix}k"]
    assert [o.status for o in uploads.abort_abandoned(prefix, older_than="0")] == ["aborted"]


def test_finding_uploads_costs_a_listing_page_per_page_of_uploads_and_one_list_parts_per_upload(
    bucket: oss2.Bucket, uploads: MultipartUploads, oss_env: Any, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def counts() -> tuple[int, int]:
        listings = oss_env.requests.count(f"/{BUCKET}/", method="GET", operation="uploads")
        return listings, oss_env.requests.count(f"/{BUCKET}/{prefix}", method="GET", operation="uploadId")

    before = counts()
    assert list(uploads.in_progress(prefix)) == []
    assert tuple(a - b for a, b in zip(counts(), before, strict=True)) == (1, 0), "nothing found: one listing"

    monkeypatch.setattr(abandoned_uploads, "PAGE", 2)  # pages of 2 instead of OSS's 1000
    for i in range(5):
        start_upload(bucket, f"{prefix}{i}", "copy")
    before = counts()
    assert len(list(uploads.in_progress(prefix))) == 5
    assert tuple(a - b for a, b in zip(counts(), before, strict=True)) == (3, 5)


def test_an_upload_of_more_parts_than_a_page_is_told_apart_by_its_last_part(
    bucket: oss2.Bucket, uploads: MultipartUploads, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(abandoned_uploads, "PAGE", 2)
    start_upload(bucket, f"{prefix}ours", "rewrap", data_parts=3)
    start_upload(bucket, f"{prefix}theirs", None, data_parts=3)
    listed = {u.key.removeprefix(prefix): (u.purpose, u.parts) for u in uploads.in_progress(prefix)}
    assert listed == {"ours": ("rewrap", 3), "theirs": (None, None)}


def test_an_abort_that_fails_is_reported_and_the_others_still_aborted(
    bucket: oss2.Bucket, uploads: MultipartUploads, oss_env: Any, prefix: str
) -> None:
    start_upload(bucket, f"{prefix}a-stuck", "put")
    start_upload(bucket, f"{prefix}b", "put")
    oss_env.inject_fault("DELETE", path_contains=f"{prefix}a-stuck", action="status:503", times=50)
    outcomes = list(uploads.abort_abandoned(prefix, older_than=0))
    assert [(o.upload.key.removeprefix(prefix), o.status) for o in outcomes] == [
        ("a-stuck", "failed"),
        ("b", "aborted"),
    ]
    assert outcomes[0].error and "HTTP 503" in outcomes[0].error
    assert _left(oss_env, prefix) == [f"{prefix}a-stuck"]


def test_a_rewrap_clean_up_the_ram_policy_denies_warns_and_lets_the_rewrap_go_on(
    bucket: oss2.Bucket, prefix: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local server allows every request to its one access key: OSS's refusal is stood in for.
    def denied(**_kwargs: object) -> None:
        body = b"<Error><Code>AccessDenied</Code><Message>no</Message><RequestId>5F1E</RequestId></Error>"
        raise oss2.exceptions.AccessDenied(403, {"x-oss-request-id": "5F1E"}, body, {"Code": "AccessDenied"})

    monkeypatch.setattr(bucket, "list_multipart_uploads", denied)
    logger = logging.getLogger("tests.abandoned_uploads")
    uploads = MultipartUploads(lambda _name: bucket, TransferConfig(), logger=logger)
    with caplog.at_level(logging.WARNING, logger="tests.abandoned_uploads"):
        assert uploads.abort_abandoned_rewraps(prefix) == []
    assert f"could not look for rewrap uploads abandoned under oss://{BUCKET}/{prefix}" in caplog.text
    assert "AccessDenied" in caplog.text and "oss:ListMultipartUploads" in caplog.text


def test_a_rewrap_clean_up_that_finds_oss_unavailable_fails_like_the_rewrap_would(
    bucket: oss2.Bucket, oss_env: Any, prefix: str
) -> None:
    fast = RetryPolicy(attempts=2, initial_backoff=0.01, transient=is_transient)
    uploads = MultipartUploads(lambda _name: bucket, TransferConfig(retry=fast))
    oss_env.inject_fault("GET", query_contains="uploads", action="status:503", times=2)
    with pytest.raises(OssUnavailableError):
        uploads.abort_abandoned_rewraps(prefix)


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("90s", 90), ("30m", 1800), ("2h", 7200), ("1h30m", 5400), ("1d", 86400)]
)
def test_durations_read_as_a_person_writes_them(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "2 hours", "-1", "1.5h", "1w"])
def test_a_malformed_duration_is_refused_with_the_forms_it_takes(text: str) -> None:
    with pytest.raises(ValueError, match="30m, 2h"):
        parse_duration(text)


def test_the_hooks_prefix_rewrap_aborts_abandoned_rewrap_uploads_first_but_not_in_a_dry_run(
    bucket: oss2.Bucket, oss_env: Any, prefix: str, rsa_ref: str, other_rsa_ref: str
) -> None:
    EncryptedOSSHook("oss_v4", cmk=rsa_ref).upload(b"content", f"{prefix}a")
    start_upload(bucket, f"{prefix}a", "rewrap")
    hook = EncryptedOSSHook("oss_v4", cmk=other_rsa_ref, decrypt_cmks=[rsa_ref])
    assert [r.status for r in hook.rewrap_many(prefix=prefix, dry_run=True)] == ["would-rewrap"]
    assert _left(oss_env, prefix) == [f"{prefix}a"], "a dry run changes nothing"
    assert [r.status for r in hook.rewrap_many(prefix=prefix)] == ["rewrapped"]
    assert _left(oss_env, prefix) == []
