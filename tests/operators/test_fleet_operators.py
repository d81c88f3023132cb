"""The transfer operators move folders and prefixes as fleets (issue 13): more than one group of
objects per task, key-service calls batched (counted at OpenBao's audit log), every object tried
when one fails (the task then fails naming it), and rotation sharded by listing pages.

Real services: the local OSS server (a PUT failing with 503 on one key is armed at the server, the
one fault a client cannot cause), OpenBao Transit, Airflow operators executed in-process.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.exceptions import OssUnavailableError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator
from airflow_provider_osscse.operators.rewrap import EncryptedOSSListingShardsOperator, EncryptedOSSRewrapOperator
from airflow_provider_osscse.testing.openbao import OpenBaoAuditLog
from airflow_provider_osscse.transport.bulk import BULK_GROUP_OBJECTS
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK

pytestmark = pytest.mark.usefixtures("osscse_services")

FILES = BULK_GROUP_OBJECTS + 30
TRANSIT_KEY = TRANSIT_CMK.rsplit("/", 1)[1]


@pytest.fixture
def prefix() -> str:
    return f"fleet-ops/{uuid.uuid4().hex[:10]}/"


def _folder(root: Path, count: int) -> dict[str, bytes]:
    files = {f"part-{i:04d}.csv": f"row,{i}\n".encode() * (i % 5 + 1) for i in range(count)}
    for name, body in files.items():
        (root / name).write_bytes(body)
    return files


def test_a_folder_upload_batches_key_calls_tries_every_file_and_fails_naming_the_one_that_failed(
    osscse_services: dict[str, Any], osscse_openbao_audit: OpenBaoAuditLog, prefix: str, tmp_path: Path
) -> None:
    files = _folder(tmp_path, FILES)
    broken = "part-0007.csv"
    osscse_services["oss"].inject_fault("PUT", path_contains=f"{prefix}{broken}", action="status:503", times=20)
    encrypts = osscse_openbao_audit.requests(f"transit/encrypt/{TRANSIT_KEY}")
    upload = LocalFilesystemToEncryptedOSSOperator(
        task_id="up",
        source_path=str(tmp_path),
        dest_key=prefix,
        dest_bucket=TEST_BUCKET,
        cmk=TRANSIT_CMK,
        concurrency=4,
    )
    try:
        with pytest.raises(OssUnavailableError) as raised:
            upload.execute({})
    finally:
        osscse_services["oss"].clear_faults()
    assert f"1 of {FILES} objects failed to upload" in "".join(raised.value.__notes__) and broken in str(
        raised.value.__notes__
    )
    assert osscse_openbao_audit.requests(f"transit/encrypt/{TRANSIT_KEY}") - encrypts <= 2 + 1  # two groups (+ a check)
    hook = EncryptedOSSHook("oss_default", decrypt_cmks=[TRANSIT_CMK])
    stored = {key.rsplit("/", 1)[1] for key in hook.list_keys(prefix, TEST_BUCKET)}
    assert stored == set(files) - {broken}


def test_a_prefix_download_writes_every_verified_object_with_batched_unwraps(
    osscse_openbao_audit: OpenBaoAuditLog, prefix: str, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    files = _folder(source, FILES)
    LocalFilesystemToEncryptedOSSOperator(
        task_id="up", source_path=str(source), dest_key=prefix, dest_bucket=TEST_BUCKET, cmk=TRANSIT_CMK
    ).execute({})
    decrypts = osscse_openbao_audit.requests(f"transit/decrypt/{TRANSIT_KEY}")
    results = EncryptedOSSToLocalFilesystemOperator(
        task_id="down",
        source_key=prefix,
        dest_path=str(tmp_path / "out"),
        source_bucket=TEST_BUCKET,
        decrypt_cmks=[TRANSIT_CMK],
        concurrency=4,
    ).execute({})
    assert osscse_openbao_audit.requests(f"transit/decrypt/{TRANSIT_KEY}") - decrypts == 2  # one per group
    assert {r["integrity"] for r in results} == {"verified"} and len(results) == FILES
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == files


def test_rotation_is_sharded_by_listing_pages_and_each_shard_rewraps_only_its_range(prefix: str) -> None:
    hook = EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK)
    keys = [f"{prefix}{i:03d}" for i in range(25)]
    assert all(o.ok for o in hook.upload_many(((b"x" * i, k) for i, k in enumerate(keys)), TEST_BUCKET))
    shards = EncryptedOSSListingShardsOperator(
        task_id="shards", prefix=prefix, bucket=TEST_BUCKET, objects_per_shard="10"
    ).execute({})
    assert [(s["start_after"], s["end_at"]) for s in shards] == [
        (None, keys[9]),
        (keys[9], keys[19]),
        (keys[19], None),
    ]
    reports = [
        EncryptedOSSRewrapOperator(
            task_id="rewrap", shard=shard, bucket=TEST_BUCKET, decrypt_cmks=[TRANSIT_CMK], concurrency=3
        ).execute({})
        for shard in shards
    ]
    assert [r["total"] for r in reports] == [10, 10, 5]
    assert sum(r["counts"].get("already-current", 0) + r["counts"].get("rewrapped", 0) for r in reports) == 25
