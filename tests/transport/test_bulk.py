"""Bulk operations (issue 13): many objects per call, key-service calls batched across objects,
OSS requests counted at the local server, and one outcome per object whatever fails.

Real services throughout: the local OSS server (requests counted where they are served), OpenBao
(Transit calls counted in its audit log) and RSA keys. Faults are real: an object deleted, a
corrupted object, an object not encrypted, an unknown CMK.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import hvac
import oss2
import pytest

from airflow_provider_osscse.exceptions import (
    IntegrityError,
    NoMatchingKeyError,
    NotEncryptedError,
    ObjectNotFoundError,
)
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from airflow_provider_osscse.testing.openbao import OpenBaoAuditLog, OpenBaoServer
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.transport.bulk import BULK_GROUP_OBJECTS
from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig
from tests.transfer_fixtures import BUCKET

N = BULK_GROUP_OBJECTS + 22  # two groups


@pytest.fixture
def prefix() -> str:
    return f"bulk/{uuid.uuid4().hex[:10]}/"


@pytest.fixture
def bucket(oss_env: LocalOSSServer) -> oss2.Bucket:
    auth = oss2.AuthV4(oss_env.access_key_id, oss_env.access_key_secret)
    return oss2.Bucket(auth, oss_env.endpoint, BUCKET, region=oss_env.region)


@pytest.fixture
def objects(bucket: oss2.Bucket) -> EncryptedObjects:
    return EncryptedObjects(lambda _name: bucket, TransferConfig(multipart_threshold=200 * 1024, part_size=100 * 1024))


@pytest.fixture
def transit(osscse_openbao: OpenBaoServer) -> VaultTransitKey:
    client: hvac.Client = osscse_openbao.client()
    if "transit/" not in client.sys.list_mounted_secrets_engines()["data"]:
        client.sys.enable_secrets_engine("transit")
    name = f"bulk-{uuid.uuid4().hex[:8]}"
    client.secrets.transit.create_key(name)
    return VaultTransitKey(client, key_name=name)


def _bodies(n: int) -> list[bytes]:
    return [f"object {i} ".encode() * (i % 7 + 1) for i in range(n)]


def test_put_many_and_read_many_batch_transit_calls_and_read_each_small_object_with_one_get(
    objects: EncryptedObjects,
    transit: VaultTransitKey,
    oss_env: LocalOSSServer,
    osscse_openbao_audit: OpenBaoAuditLog,
    prefix: str,
) -> None:
    bodies = _bodies(N)
    keys = [f"{prefix}{i:04d}" for i in range(N)]
    outcomes = list(objects.put_many(zip(keys, bodies, strict=True), transit, concurrency=4))
    assert [o.key for o in outcomes] == keys and all(o.ok for o in outcomes)
    assert osscse_openbao_audit.requests(f"transit/encrypt/{transit.key_name}") == 2, "one call per group"
    assert oss_env.requests.by_method(f"/{BUCKET}/{prefix}") == {"PUT": N}

    read = list(objects.read_many(keys, transit, concurrency=4))
    assert [bytes(o.result) for o in read if o.result is not None] == bodies
    assert all(o.result is not None and o.result.integrity == "verified" for o in read)
    assert osscse_openbao_audit.requests(f"transit/decrypt/{transit.key_name}") == 2
    assert oss_env.requests.by_method(f"/{BUCKET}/{prefix}") == {"PUT": N, "GET": N}, "no HEAD before a small read"


def test_one_object_failing_never_hides_the_others(
    objects: EncryptedObjects, bucket: oss2.Bucket, transit: VaultTransitKey, prefix: str, tmp_path: Path
) -> None:
    bodies = _bodies(12)
    keys = [f"{prefix}{i:02d}" for i in range(12)]
    assert all(o.ok for o in objects.put_many(zip(keys, bodies, strict=True), transit))
    stranger = LocalRsaKey.generate(reference="rsa-not-held")
    objects.put(keys[3], b"wrapped by a CMK the reader does not hold", stranger)
    bucket.delete_object(keys[5])
    bucket.put_object(keys[7], b"plaintext")
    stored = bucket.get_object(keys[9])
    tampered = bytearray(stored.read())
    tampered[0] ^= 1
    bucket.put_object(
        keys[9],
        bytes(tampered),
        headers={k: v for k, v in stored.headers.items() if k.lower().startswith("x-oss-meta-")},
    )
    outcomes = list(objects.download_many(((k, tmp_path / k.rsplit("/", 1)[1]) for k in keys), transit, concurrency=3))
    errors = {o.key: type(o.error) for o in outcomes if o.error is not None}
    assert errors == {
        keys[3]: NoMatchingKeyError,
        keys[5]: ObjectNotFoundError,
        keys[7]: NotEncryptedError,
        keys[9]: IntegrityError,
    }
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == sorted(k.rsplit("/", 1)[1] for k in keys if k not in errors), "no file for a failed object"
    for key, body in zip(keys, bodies, strict=True):
        if key not in errors:
            assert (tmp_path / key.rsplit("/", 1)[1]).read_bytes() == body


def test_bulk_reads_of_large_objects_take_the_parallel_one_object_path(
    objects: EncryptedObjects, transit: VaultTransitKey, prefix: str
) -> None:
    large = b"L" * (1024 * 1024 + 5)  # above WHOLE_OBJECT_LIMIT and the multipart threshold
    keys = [f"{prefix}small", f"{prefix}large"]
    assert all(o.ok for o in objects.put_many([(keys[0], b"small"), (keys[1], large)], transit))
    results = [o.result for o in objects.read_many(keys, transit)]
    assert results == [b"small", large]


def test_rewrap_many_batches_transit_rewrap_never_decrypts_and_a_rerun_is_one_head_per_object(
    objects: EncryptedObjects,
    transit: VaultTransitKey,
    oss_env: LocalOSSServer,
    osscse_openbao: OpenBaoServer,
    osscse_openbao_audit: OpenBaoAuditLog,
    prefix: str,
) -> None:
    keys = [f"{prefix}{i:04d}" for i in range(N)]
    assert all(o.ok for o in objects.put_many(zip(keys, _bodies(N), strict=True), transit))
    osscse_openbao.client().secrets.transit.rotate_key(transit.key_name)
    rotated = Keyring(VaultTransitKey(osscse_openbao.client(), key_name=transit.key_name))
    before = oss_env.requests.count(f"/{BUCKET}/{prefix}")
    results = list(objects.rewrap_many(keys, rotated, concurrency=4))
    assert [r.status for r in results] == ["rewrapped"] * N
    assert {(r.from_version, r.to_version) for r in results} == {("v1", "v2")}
    assert osscse_openbao_audit.requests(f"transit/rewrap/{transit.key_name}") == 2
    assert osscse_openbao_audit.requests(f"transit/decrypt/{transit.key_name}") == 0, "a data key left Vault"
    first_run = oss_env.requests.count(f"/{BUCKET}/{prefix}") - before
    assert first_run == 2 * N, "a small stale object: one GET of its first bytes, one PUT"

    rewraps = osscse_openbao_audit.requests(f"transit/rewrap/{transit.key_name}")
    before = oss_env.requests.count(f"/{BUCKET}/{prefix}")
    again = list(objects.rewrap_many(keys, rotated, concurrency=4))
    assert [r.status for r in again] == ["already-current"] * N
    assert osscse_openbao_audit.requests(f"transit/rewrap/{transit.key_name}") == rewraps, "no key-service call"
    assert (
        oss_env.requests.by_method(f"/{BUCKET}/{prefix}")
        and oss_env.requests.count(f"/{BUCKET}/{prefix}") - before == N
    )
    assert [o.result for o in objects.read_many(keys, rotated)] == _bodies(N)


def test_rewrap_many_reports_each_failure_and_finishes_the_rest(
    objects: EncryptedObjects, bucket: oss2.Bucket, transit: VaultTransitKey, osscse_openbao: OpenBaoServer, prefix: str
) -> None:
    keys = [f"{prefix}{i}" for i in range(6)]
    assert all(o.ok for o in objects.put_many(zip(keys, _bodies(6), strict=True), transit))
    bucket.delete_object(keys[1])
    bucket.put_object(keys[2], b"plaintext")
    objects.put(keys[4], b"other CMK", LocalRsaKey.generate(reference="rsa-elsewhere"))
    osscse_openbao.client().secrets.transit.rotate_key(transit.key_name)
    results = {r.key: r for r in objects.rewrap_many(keys, Keyring(transit))}
    assert {k: r.status for k, r in results.items()} == {
        keys[0]: "rewrapped",
        keys[1]: "failed",
        keys[2]: "failed",
        keys[3]: "rewrapped",
        keys[4]: "failed",
        keys[5]: "rewrapped",
    }
    assert "does not exist" in (results[keys[1]].error or "")
    assert "not client-side encrypted" in (results[keys[2]].error or "")
    assert results[keys[4]].error
