"""Operators clean up the multipart uploads killed tasks abandoned: only this provider's, only in range.

``EncryptedOSSAbortAbandonedUploadsOperator`` aborts this provider's uploads idle for ``older_than``
under a prefix and returns counts; a rewrap task (a prefix, or one listing shard) first aborts the
rewrap uploads a killed run left in its own key range, and counts them in its report. The abandoned
uploads are left with plain oss2 the way each party leaves them (this provider's with its marker part,
another client's without); Airflow operators run in-process against the local OSS server.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from typing import Any

import oss2
import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.operators.abandoned_uploads import EncryptedOSSAbortAbandonedUploadsOperator
from airflow_provider_osscse.operators.rewrap import EncryptedOSSListingShardsOperator, EncryptedOSSRewrapOperator
from tests.transfer_fixtures import BUCKET
from tests.transfer_fixtures import oss_env as oss_env  # fixtures, used by name
from tests.transfer_fixtures import other_rsa_ref as other_rsa_ref
from tests.transfer_fixtures import rsa_ref as rsa_ref
from tests.upload_cleanup import start_upload, uploads_aborted_after


@pytest.fixture
def prefix(oss_env: Any) -> Iterator[str]:
    name = f"op-uploads/{uuid.uuid4().hex[:8]}/"
    with uploads_aborted_after(oss_env, EncryptedOSSHook("oss_v4").get_bucket(), name):
        yield name


@pytest.fixture
def bucket(oss_env: Any) -> oss2.Bucket:
    return EncryptedOSSHook("oss_v4").get_bucket()


def _left(oss_env: Any, prefix: str) -> list[str]:
    return sorted(u.key for u in oss_env.list_multipart_uploads(BUCKET) if u.key.startswith(prefix))


def test_the_abort_operator_aborts_ours_idle_long_enough_and_returns_counts(
    oss_env: Any, bucket: oss2.Bucket, prefix: str
) -> None:
    for name, purpose in (("put", "put"), ("copy", "copy"), ("theirs", None)):
        start_upload(bucket, f"{prefix}{name}", purpose)

    def run(**kwargs: Any) -> dict[str, Any]:
        operator = EncryptedOSSAbortAbandonedUploadsOperator(
            task_id="abort", oss_conn_id="oss_v4", prefix=prefix, bucket=BUCKET, **kwargs
        )
        return operator.execute({})

    assert run() == {  # default older_than 1h: seconds-old uploads are a running task's
        "bucket": BUCKET,
        "prefix": prefix,
        "older_than_seconds": 3600,
        "aborted": 0,
        "kept": 2,
        "not_ours": 1,
        "gone": 0,
        "failed": 0,
    }
    assert run(older_than="0", purposes=["copy"])["aborted"] == 1
    assert _left(oss_env, prefix) == [f"{prefix}put", f"{prefix}theirs"]
    assert run(older_than=0)["aborted"] == 1
    assert _left(oss_env, prefix) == [f"{prefix}theirs"], "another client's upload is never aborted"


def test_the_abort_operator_refuses_a_malformed_duration_or_purpose_when_the_dag_is_parsed() -> None:
    with pytest.raises(ValueError, match="30m, 2h"):
        EncryptedOSSAbortAbandonedUploadsOperator(task_id="abort", older_than="two hours")
    with pytest.raises(ValueError, match="purposes are put, copy, rewrap"):
        EncryptedOSSAbortAbandonedUploadsOperator(task_id="abort", purposes=["delete"])
    templated = EncryptedOSSAbortAbandonedUploadsOperator(task_id="abort", older_than="{{ params.idle }}")
    assert {"prefix", "bucket", "older_than"} <= set(templated.template_fields)


def test_each_rewrap_shard_aborts_the_abandoned_rewrap_uploads_of_its_own_range_only(
    oss_env: Any, bucket: oss2.Bucket, prefix: str, rsa_ref: str, other_rsa_ref: str
) -> None:
    writer = EncryptedOSSHook("oss_v4", cmk=rsa_ref)
    keys = [f"{prefix}{i:02d}" for i in range(6)]
    for key in keys:
        writer.upload(io.BytesIO(key.encode()), key)
    abandoned = {key: start_upload(bucket, key, "rewrap") for key in (keys[1], keys[2], keys[4])}
    others = {start_upload(bucket, keys[3], "put"), start_upload(bucket, keys[3], None)}
    shards = EncryptedOSSListingShardsOperator(
        task_id="shards", oss_conn_id="oss_v4", prefix=prefix, bucket=BUCKET, objects_per_shard=3
    ).execute({})
    assert [(s["start_after"], s["end_at"]) for s in shards] == [(None, keys[2]), (keys[2], keys[5])]

    def rewrap(shard: dict[str, str | None]) -> dict[str, Any]:
        return EncryptedOSSRewrapOperator(
            task_id="rewrap",
            oss_conn_id="oss_v4",
            shard=shard,
            bucket=BUCKET,
            new_cmk=other_rsa_ref,
            decrypt_cmks=[rsa_ref],
        ).execute({})

    first = rewrap(shards[0])
    assert first["aborted_uploads"] == 2 and first["counts"] == {"rewrapped": 3}
    assert {u.key for u in oss_env.list_multipart_uploads(BUCKET) if u.upload_id in abandoned.values()} == {keys[4]}
    second = rewrap(shards[1])
    assert second["aborted_uploads"] == 1 and second["counts"] == {"rewrapped": 3}
    assert {u.upload_id for u in oss_env.list_multipart_uploads(BUCKET) if u.key.startswith(prefix)} == others
    assert rewrap(shards[0])["aborted_uploads"] == 0


def test_a_dry_run_rewrap_aborts_nothing(
    oss_env: Any, bucket: oss2.Bucket, prefix: str, rsa_ref: str, other_rsa_ref: str
) -> None:
    EncryptedOSSHook("oss_v4", cmk=rsa_ref).upload(io.BytesIO(b"x"), f"{prefix}a")
    start_upload(bucket, f"{prefix}a", "rewrap")
    report = EncryptedOSSRewrapOperator(
        task_id="rewrap",
        oss_conn_id="oss_v4",
        key=prefix,
        bucket=BUCKET,
        new_cmk=other_rsa_ref,
        decrypt_cmks=[rsa_ref],
        dry_run=True,
    ).execute({})
    assert report["aborted_uploads"] == 0 and report["counts"] == {"would-rewrap": 1}
    assert _left(oss_env, prefix) == [f"{prefix}a"]
