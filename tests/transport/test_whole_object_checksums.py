"""Whole-object PUTs and GETs are checked end to end without oss2's per-request CRC-64 set-up.

A PUT carries ``Content-MD5``, so OSS refuses a body corrupted on the wire before storing anything
(oss2's own check compares CRCs in the answer, after the corrupted object has replaced the old one);
a whole GET that nothing stronger checks (no integrity tag, or ``integrity=off``) compares the body's
CRC-64 with OSS's header. The local OSS server corrupts one bit on the wire on demand (fault
``corrupt``), and counts the requests it served.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import oss2
import pytest

from airflow_provider_osscse.envelope.integrity import IntegrityPolicy
from airflow_provider_osscse.exceptions import OSSCSEError, TransferChecksumError
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig
from airflow_provider_osscse.transport.retry import RetryPolicy, is_transient
from airflow_provider_osscse.transport.transfer_checksums import crc64_ecma

BUCKET = "whole-checksums"


@pytest.fixture(scope="module")
def server(osscse_oss_server: LocalOSSServer) -> LocalOSSServer:
    osscse_oss_server.create_bucket(BUCKET)
    return osscse_oss_server


@pytest.fixture(scope="module")
def cmk() -> LocalRsaKey:
    return LocalRsaKey.generate(reference="rsa-whole-checksums")


@pytest.fixture
def bucket(server: LocalOSSServer) -> Iterator[oss2.Bucket]:
    yield oss2.Bucket(
        oss2.AuthV4(server.access_key_id, server.access_key_secret), server.endpoint, BUCKET, region=server.region
    )
    server.clear_faults()


def _objects(
    bucket: oss2.Bucket, *, attempts: int, integrity: IntegrityPolicy = IntegrityPolicy.REQUIRE
) -> EncryptedObjects:
    config = TransferConfig(
        integrity=integrity, retry=RetryPolicy(attempts=attempts, initial_backoff=0.01, transient=is_transient)
    )
    return EncryptedObjects(lambda _name: bucket, config)


def test_crc64_ecma_is_the_crc_oss_reports(server: LocalOSSServer, bucket: oss2.Bucket) -> None:
    data = os.urandom(5000)
    result = bucket.put_object("crc/reference", data)
    assert crc64_ecma(data) == int(result.headers["x-oss-hash-crc64ecma"])
    assert crc64_ecma(data[1000:], crc64_ecma(data[:1000])) == crc64_ecma(data)


def test_a_put_corrupted_on_the_wire_is_refused_and_the_stored_object_is_untouched(
    server: LocalOSSServer, bucket: oss2.Bucket, cmk: LocalRsaKey
) -> None:
    objects = _objects(bucket, attempts=1)
    objects.put("put/refused", b"first version" * 100, cmk)
    server.inject_fault("PUT", path_contains="put/refused", action="corrupt")

    with pytest.raises(OSSCSEError):
        objects.put("put/refused", b"second version" * 100, cmk)

    assert objects.read("put/refused", cmk) == b"first version" * 100


def test_a_put_corrupted_once_is_sent_again_and_stored_intact(
    server: LocalOSSServer, bucket: oss2.Bucket, cmk: LocalRsaKey
) -> None:
    objects = _objects(bucket, attempts=3)
    before = server.requests.count(f"/{BUCKET}/put/resent", method="PUT")
    server.inject_fault("PUT", path_contains="put/resent", action="corrupt")

    objects.put("put/resent", b"payload" * 500, cmk)

    assert objects.read("put/resent", cmk) == b"payload" * 500
    assert server.requests.count(f"/{BUCKET}/put/resent", method="PUT") - before == 2


def test_a_read_that_no_integrity_tag_checks_is_fetched_again_when_corrupted_on_the_wire(
    server: LocalOSSServer, bucket: oss2.Bucket, cmk: LocalRsaKey
) -> None:
    objects = _objects(bucket, attempts=3, integrity=IntegrityPolicy.OFF)
    objects.put("get/resent", b"body" * 1000, cmk)
    before = server.requests.count(f"/{BUCKET}/get/resent", method="GET")
    server.inject_fault("GET", path_contains="get/resent", action="corrupt")

    assert objects.read("get/resent", cmk) == b"body" * 1000
    assert server.requests.count(f"/{BUCKET}/get/resent", method="GET") - before == 2


def test_a_read_corrupted_on_every_attempt_fails_and_says_to_read_it_again(
    server: LocalOSSServer, bucket: oss2.Bucket, cmk: LocalRsaKey
) -> None:
    objects = _objects(bucket, attempts=2, integrity=IntegrityPolicy.OFF)
    objects.put("get/corrupt", b"body" * 1000, cmk)
    server.inject_fault("GET", path_contains="get/corrupt", action="corrupt", times=2)

    with pytest.raises(TransferChecksumError, match=r"CRC-64.*read it again"):
        objects.read("get/corrupt", cmk)


def test_a_tagged_read_corrupted_on_the_wire_is_refused_by_its_integrity_tag(
    server: LocalOSSServer, bucket: oss2.Bucket, cmk: LocalRsaKey
) -> None:
    from airflow_provider_osscse.exceptions import IntegrityError

    objects = _objects(bucket, attempts=1)
    objects.put("get/tagged", b"body" * 1000, cmk)
    server.inject_fault("GET", path_contains="get/tagged", action="corrupt")

    with pytest.raises(IntegrityError):
        objects.read("get/tagged", cmk)
