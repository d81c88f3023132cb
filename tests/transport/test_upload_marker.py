"""Every multipart upload of the provider carries a marker part naming its purpose; Complete drops it.

Issue 14: a run killed between InitiateMultipartUpload and Complete leaves an upload behind, and OSS
keeps no metadata on an upload in progress. So right after Init each upload gets part 10,000, a fixed
body per purpose (``put``, ``copy``, ``rewrap``) whose ETag ListParts shows. These tests watch real
uploads (hook -> oss2 -> the local OSS server) while they wait for Complete (a delayed answer), and
check the finished object is exactly its data parts, read back by the hook and by oss2's CryptoBucket.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import oss2
import pytest
from cryptography.hazmat.primitives import serialization

from airflow_provider_osscse.envelope.multipart import MAX_PART_COUNT, MAX_PART_NUMBER, MIN_PART_SIZE, plan_parts
from airflow_provider_osscse.exceptions import OssUnavailableError, PartPlanError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.transport.abandoned_uploads import InProgressUpload
from airflow_provider_osscse.transport.copy_rewrap import REWRAP_BY_PUT_LIMIT
from airflow_provider_osscse.transport.multipart_upload import MARKER_PART_NUMBER, marker_body, run_multipart
from tests.transfer_fixtures import BUCKET, PART
from tests.transfer_fixtures import other_rsa_ref as other_rsa_ref  # a fixture, used by name
from tests.upload_cleanup import uploads_aborted_after


@pytest.fixture
def prefix(oss_env: Any) -> Iterator[str]:
    name = f"marker/{uuid.uuid4().hex[:8]}/"
    with uploads_aborted_after(oss_env, EncryptedOSSHook("oss_v4").get_bucket(), name):
        yield name


@pytest.fixture(autouse=True)
def _no_faults_left(oss_env: Any) -> Iterator[None]:
    yield
    oss_env.clear_faults()


def _watch_before_complete(
    oss_env: Any, hook: EncryptedOSSHook, key: str, operation: Callable[[], object]
) -> list[InProgressUpload]:
    """Run ``operation`` with its Complete of ``key`` held back; the uploads in progress meanwhile."""
    path = f"/{BUCKET}/{key}"
    oss_env.inject_fault("POST", path_contains=key, query_contains="uploadId", action="delay:1")
    completes = oss_env.requests.count(path, method="POST", operation="uploadId")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            operation()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    while oss_env.requests.count(path, method="POST", operation="uploadId") == completes and worker.is_alive():
        worker.join(0.01)
    seen = [u for u in hook.multipart_uploads.in_progress(key) if u.key == key]
    worker.join()
    if errors:
        raise errors[0]
    return seen


def _multipart_etag(data: bytes, part_size: int) -> str:
    md5s = [hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)]
    return f"{hashlib.md5(b''.join(md5s)).hexdigest().upper()}-{len(md5s)}"


def test_a_multipart_put_is_marked_put_until_complete_which_leaves_only_its_data_parts(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, rsa_ref: str, prefix: str
) -> None:
    hook = make_hook()
    key, data = f"{prefix}put", os.urandom(3 * PART + 5)
    seen = _watch_before_complete(oss_env, hook, key, lambda: hook.upload(io.BytesIO(data), key))
    assert [(u.purpose, u.parts) for u in seen] == [("put", 4)], "the marker plus every data part before Complete"
    assert [u for u in oss_env.list_multipart_uploads(BUCKET) if u.key == key] == []

    stored = oss_env.stored_object(BUCKET, key)
    assert len(stored.data) == len(data)  # AES-CTR: the ciphertext is exactly the data parts
    assert stored.etag == _multipart_etag(stored.data, PART), "the marker is not part of the object"
    assert hook.read(key) == data
    assert _crypto_bucket(rsa_ref).get_object(key).read() == data  # the official SDK reads it unchanged


def test_a_copy_by_parts_is_marked_copy(make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, prefix: str) -> None:
    hook = make_hook()
    data = os.urandom(3 * PART)
    hook.upload(io.BytesIO(data), f"{prefix}source")
    dest = f"{prefix}copy"
    seen = _watch_before_complete(oss_env, hook, dest, lambda: hook.copy(f"{prefix}source", dest))
    assert [u.purpose for u in seen] == ["copy"]
    assert hook.read(dest) == data


def test_a_rewrap_by_parts_is_marked_rewrap_and_keeps_the_ciphertext(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, rsa_ref: str, other_rsa_ref: str, prefix: str
) -> None:
    key, data = f"{prefix}rewrap", os.urandom(REWRAP_BY_PUT_LIMIT + PART)
    make_hook().upload(io.BytesIO(data), key)
    before = oss_env.stored_object(BUCKET, key)
    hook = make_hook(cmk=other_rsa_ref, decrypt_cmks=[rsa_ref])
    seen = _watch_before_complete(oss_env, hook, key, lambda: hook.rewrap(key, new_cmk=other_rsa_ref))
    assert [u.purpose for u in seen] == ["rewrap"]
    after = oss_env.stored_object(BUCKET, key)
    assert after.data == before.data and after.etag == before.etag == _multipart_etag(after.data, PART)
    assert make_hook(cmk=other_rsa_ref).read(key) == data


def test_a_marker_that_cannot_be_written_aborts_the_upload(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, prefix: str
) -> None:
    key = f"{prefix}marker-fails"
    oss_env.inject_fault("PUT", path_contains=key, query_contains="partNumber=10000", action="status:500", times=50)
    with pytest.raises(OssUnavailableError):
        make_hook().upload(io.BytesIO(os.urandom(3 * PART)), key)
    path = f"/{BUCKET}/{key}"
    assert oss_env.requests.count(path, method="PUT", operation="partNumber") == 4, "retried, then no data part"
    assert [u for u in oss_env.list_multipart_uploads(BUCKET) if u.key == key] == []
    assert not make_hook().exists(key)


def test_marker_bodies_are_fixed_per_purpose_and_a_multiple_of_16_bytes() -> None:
    bodies = {purpose: marker_body(purpose) for purpose in ("put", "copy", "rewrap")}
    assert len(set(bodies.values())) == 3 and all(len(body) % 16 == 0 for body in bodies.values())
    assert bodies["rewrap"].startswith(b"airflow-provider-osscse upload marker v1: rewrap")
    with pytest.raises(ValueError, match="purpose"):
        marker_body("delete")


def test_plans_never_use_the_marker_part_number_for_data() -> None:
    assert MARKER_PART_NUMBER == MAX_PART_NUMBER == 10_000 and MAX_PART_COUNT == 9_999
    exactly = plan_parts(MAX_PART_COUNT * MIN_PART_SIZE, MIN_PART_SIZE)
    assert (exactly.part_count, exactly.part_size) == (MAX_PART_COUNT, MIN_PART_SIZE)
    grown = plan_parts(MAX_PART_COUNT * MIN_PART_SIZE + 1, MIN_PART_SIZE)
    assert grown.part_count <= MAX_PART_COUNT and grown.part_size > MIN_PART_SIZE and grown.part_size % 16 == 0
    with pytest.raises(PartPlanError):
        plan_parts(MAX_PART_COUNT * 5 * 1024**3 + 1)


def test_run_multipart_refuses_a_10000th_data_part_before_initiating_anything(oss_env: Any) -> None:
    bucket = EncryptedOSSHook("oss_v4").get_bucket()
    inits = oss_env.requests.count(f"/{BUCKET}/", method="POST", operation="uploads")
    with pytest.raises(PartPlanError, match="9999"):
        run_multipart(bucket, "never", part_count=10_000, send_part=lambda _u, _n: ("", 0), init_headers={})
    assert oss_env.requests.count(f"/{BUCKET}/", method="POST", operation="uploads") == inits


def _crypto_bucket(rsa_ref: str) -> oss2.CryptoBucket:
    pem = Path(rsa_ref.removeprefix("rsa-file://")).read_text()
    private = serialization.load_pem_private_key(pem.encode(), None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    conn = json.loads(os.environ["AIRFLOW_CONN_OSS_V4"])["extra"]
    provider = oss2.RsaProvider(key_pair={"private_key": pem, "public_key": public.decode()})
    auth = oss2.AuthV4(conn["access_key_id"], conn["access_key_secret"])
    return oss2.CryptoBucket(auth, conn["endpoint"], BUCKET, crypto_provider=provider, region=conn["region"])
