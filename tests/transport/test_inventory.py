"""Inventory from headers alone (issue 13): one record per object from its HEAD, in listing order,
with a bounded window of HEADs in flight, and no key-service call whatever the objects' CMKs.

Objects are written for real to the local OSS server: by this package (RSA file and Vault Transit
CMKs, bound and unbound tags), by oss2's ``CryptoBucket`` (no CMK identity, no tag; with and without a
matdesc) and as plaintext. Vanishing and failing objects are real too: an object deleted after it
was listed (a real 404), headers that contradict the stored size, and the server answering 503.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import oss2
import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig
from airflow_provider_osscse.transport.inventory_records import RECORD_FIELDS, InventoryRecord, ordered_bounded_map
from airflow_provider_osscse.transport.inventory_report import InventorySummary, RecordFormat, summary_text
from airflow_provider_osscse.transport.retry import RetryPolicy, is_transient
from tests.interop.official_sdks import RsaPair, oss2_crypto_bucket
from tests.transfer_fixtures import BUCKET, transit_ref  # noqa: F401 - transit_ref is a fixture

#: A short retry policy, so that an object the server keeps failing costs milliseconds, not seconds.
QUICK_RETRY = RetryPolicy(attempts=2, initial_backoff=0.01, transient=is_transient)


@pytest.fixture
def prefix() -> str:
    return f"inventory/{uuid.uuid4().hex[:10]}/"


def plain_bucket(server: LocalOSSServer) -> oss2.Bucket:
    auth = oss2.AuthV4(server.access_key_id, server.access_key_secret)
    return oss2.Bucket(auth, server.endpoint, BUCKET, region=server.region)


@pytest.fixture
def objects(oss_env: LocalOSSServer) -> Iterator[EncryptedObjects]:
    """The transport with no CMK at all: an inventory cannot reach a key service through it."""
    bucket = plain_bucket(oss_env)
    yield EncryptedObjects(lambda _name: bucket, TransferConfig(retry=QUICK_RETRY))
    oss_env.clear_faults()


def rows_by_key(records: Iterator[InventoryRecord]) -> dict[str, dict[str, Any]]:
    return {record.key.rsplit("/", 1)[-1]: record.row() for record in records}


def test_records_classify_package_official_sdk_and_plaintext_objects_from_headers_only(
    oss_env: LocalOSSServer,
    make_hook: Callable[..., EncryptedOSSHook],
    transit_ref: Callable[[str], str],  # noqa: F811 - the fixture
    prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    osscse_openbao_audit: Any,
) -> None:
    transit = transit_ref(f"inventory-{uuid.uuid4().hex[:8]}")
    make_hook().upload(iter([b"r" * 1000]), f"{prefix}rsa-bound", content_type="text/csv")
    make_hook(bind_integrity_tag=False).upload(iter([b"u" * 10]), f"{prefix}rsa-unbound")
    make_hook(cmk=transit).upload(iter([b"t" * 20]), f"{prefix}transit")
    transit_ref.client.secrets.transit.rotate_key(name=transit.rsplit("/", 1)[1])  # type: ignore[attr-defined]
    make_hook(cmk=transit).upload(iter([b"t" * 30]), f"{prefix}transit-v2")
    pair = RsaPair.from_private_pem(_pem())
    oss2_crypto_bucket(oss_env, BUCKET, pair).put_object(f"{prefix}oss2", b"o" * 40)
    oss2_crypto_bucket(oss_env, BUCKET, pair, {"team": "orders"}).put_object(f"{prefix}oss2-matdesc", b"m" * 50)
    plain_bucket(oss_env).put_object(f"{prefix}plain.txt", b"p" * 60)

    # No key service can be reached: no Vault connection, and a hook whose CMKs cannot be resolved.
    monkeypatch.delenv("AIRFLOW_CONN_VAULT_DEFAULT", raising=False)
    hook = make_hook(cmk="vault-transit://no_such_connection/transit/none", decrypt_cmks=["kms://nowhere/alias/x"])
    transit_calls = osscse_openbao_audit.requests("transit/")
    assert transit_calls > 0  # the audit log is live: the uploads above were recorded
    with hook.inventory(prefix, concurrency=3) as stream:
        records = list(stream)
    assert hook._cmk_cache == {}  # noqa: SLF001 - no CMK was even resolved
    assert osscse_openbao_audit.requests("transit/") == transit_calls  # OpenBao served no Transit request
    assert [r.key for r in records] == sorted(r.key for r in records)  # listing order
    rows = rows_by_key(iter(records))
    rsa_identity = make_hook().inspect(f"{prefix}rsa-bound").cmk
    assert rows["rsa-bound"] | {"last_modified": None} == {
        "bucket": BUCKET,
        "key": f"{prefix}rsa-bound",
        "size": 1000,
        "last_modified": None,
        "encrypted": True,
        "wrap_alg": "RSA/NONE/PKCS1Padding",
        "cmk": rsa_identity,
        "key_version": None,
        "integrity_tag": "bound",
        "content_type": "text/csv",
        "matdesc": None,
        "error": None,
    }
    assert rows["rsa-bound"]["last_modified"].endswith("Z") and "T" in rows["rsa-bound"]["last_modified"]
    assert rows["rsa-unbound"]["integrity_tag"] == "unbound"
    transit_identity = f"vault-transit:transit/{transit.rsplit('/', 1)[1]}"
    assert (rows["transit"]["cmk"], rows["transit"]["key_version"]) == (transit_identity, "v1")
    assert (rows["transit-v2"]["cmk"], rows["transit-v2"]["key_version"]) == (transit_identity, "v2")
    assert rows["oss2"] | {"last_modified": None} == {
        **rows["oss2"],
        "last_modified": None,
        "encrypted": True,
        "cmk": "unidentified:RSA/NONE/PKCS1Padding",
        "integrity_tag": "absent",
        "matdesc": None,
    }
    assert (rows["oss2-matdesc"]["cmk"], rows["oss2-matdesc"]["matdesc"]) == (
        'matdesc:{"team":"orders"}',
        {"team": "orders"},
    )
    assert rows["plain.txt"]["encrypted"] is False and rows["plain.txt"]["cmk"] is None
    assert rows["plain.txt"]["integrity_tag"] == "absent" and rows["plain.txt"]["size"] == 60

    summary = InventorySummary(current_versions={transit_identity: "2"}).consume(records).to_dict()
    assert summary["all"] == {"objects": 7, "bytes": 1000 + 10 + 20 + 30 + 40 + 50 + 60}
    assert summary["plaintext"] == {"objects": 1, "bytes": 60}
    assert summary["encrypted"]["objects"] == 6
    assert summary["untagged"] == {"objects": 2, "bytes": 90}  # the two oss2 objects
    assert summary["unbound"] == {"objects": 1, "bytes": 10}
    assert summary["stale"] == {"objects": 1, "bytes": 20}  # the Transit object still on v1
    assert summary["by_cmk"][transit_identity] == {
        "objects": 2,
        "bytes": 50,
        "versions": {"v1": {"objects": 1, "bytes": 20}, "v2": {"objects": 1, "bytes": 30}},
    }
    assert summary["by_cmk"][rsa_identity]["versions"] == {"-": {"objects": 2, "bytes": 1010}}
    assert summary["errors"] == 0 and summary["vanished"] == 0


def _pem() -> bytes:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def test_the_listing_is_consumed_at_most_a_window_ahead_of_the_records(
    oss_env: LocalOSSServer, objects: EncryptedObjects, prefix: str
) -> None:
    bucket = plain_bucket(oss_env)
    count, concurrency = 120, 4
    for i in range(count):
        bucket.put_object(f"{prefix}{i:04d}", b"x")
    before = oss_env.requests.by_method(f"/{BUCKET}/{prefix}")
    taken = 0

    def listing() -> Iterator[str]:
        nonlocal taken
        for key in objects.list_keys(prefix):
            taken += 1
            yield key

    ahead = []
    received = 0
    for record in objects.inventory_of(listing(), concurrency=concurrency):
        received += 1
        ahead.append(taken - received)
        assert record.key == f"{prefix}{received - 1:04d}"  # listing order, whatever finished first
    assert received == count
    # Never more than the window (2 x concurrency) listed and not yet yielded, and the window is used.
    assert max(ahead) == 2 * concurrency
    # One request per object, counted where it was served: a HEAD (and never a GET of its content).
    after = oss_env.requests.by_method(f"/{BUCKET}/{prefix}")
    assert (after.get("HEAD", 0) - before.get("HEAD", 0), after.get("GET", 0) - before.get("GET", 0)) == (count, 0)


def test_ordered_bounded_map_keeps_order_and_cancels_what_did_not_start_when_closed() -> None:
    started: list[int] = []

    def task(n: int) -> int:
        started.append(n)
        return n * n

    results = ordered_bounded_map(task, iter(range(1000)), concurrency=2)
    assert [next(results) for _ in range(5)] == [0, 1, 4, 9, 16]
    results.close()
    assert len(started) <= 5 + 2 * 2  # the window, not the 1000 items


def test_a_vanished_object_is_skipped_and_a_failing_one_reported_without_hiding_the_others(
    oss_env: LocalOSSServer, objects: EncryptedObjects, make_hook: Callable[..., EncryptedOSSHook], prefix: str
) -> None:
    bucket = plain_bucket(oss_env)
    hook = make_hook()
    for name in ("a", "c", "e", "g"):
        hook.upload(iter([name.encode() * 5]), f"{prefix}{name}")
    bucket.put_object(f"{prefix}b-vanishes", b"soon gone")
    good = {k: v for k, v in bucket.head_object(f"{prefix}a").headers.items() if k.lower().startswith("x-oss-meta-")}
    bucket.put_object(f"{prefix}d-bad-headers", b"longer than the headers say", headers=good)
    bucket.put_object(f"{prefix}f-unavailable", b"plain")
    bucket.put_object(f"{prefix}folder/", b"")  # a folder marker, not an object of data
    oss_env.inject_fault("HEAD", path_contains=f"{prefix}f-unavailable", action="status:503", times=2)

    def listing() -> Iterator[str]:
        for key in objects.list_keys(prefix):
            if key.endswith("b-vanishes"):
                bucket.delete_object(key)  # deleted between its listing and its HEAD
            yield key

    stream = objects.inventory_of(listing(), concurrency=3)
    records = list(stream)
    assert [r.key.removeprefix(prefix) for r in records] == ["a", "c", "d-bad-headers", "e", "f-unavailable", "g"]
    errors = {r.key.removeprefix(prefix): r.error for r in records if r.error}
    assert set(errors) == {"d-bad-headers", "f-unavailable"}
    assert errors["d-bad-headers"].startswith("EnvelopeFormatError: ")
    assert errors["f-unavailable"].startswith("OssUnavailableError: ")
    assert (stream.vanished, stream.folder_markers) == (1, 1)
    summary = InventorySummary()
    for record in records:
        summary.add(record)
    summary.skipped_from(stream)  # the stream is finished: its counts of left-out objects are final
    report = summary.to_dict()
    assert (report["errors"], report["vanished"], report["folder_markers"]) == (2, 1, 1)
    assert report["all"]["objects"] == 4 and report["encrypted"]["objects"] == 4
    assert [e["key"] for e in report["listed_errors"]] == [f"{prefix}d-bad-headers", f"{prefix}f-unavailable"]
    row = next(r for r in records if r.error).row()
    assert row["size"] is None and row["encrypted"] is None and row["error"]


def test_jsonl_and_csv_records_and_summary_read_back(objects: EncryptedObjects, oss_env: Any, prefix: str) -> None:
    import csv
    import io

    bucket = plain_bucket(oss_env)
    bucket.put_object(f"{prefix}a,comma.txt", b"12345", headers={"Content-Type": "text/plain"})
    bucket.put_object(f"{prefix}b.bin", os.urandom(7))
    records = list(objects.inventory(prefix, concurrency=2))

    lines = [RecordFormat("jsonl").line(r) for r in records]
    assert RecordFormat("jsonl").header() is None
    assert [json.loads(line)["key"] for line in lines] == [f"{prefix}a,comma.txt", f"{prefix}b.bin"]
    assert list(json.loads(lines[0])) == list(RECORD_FIELDS)

    fmt = RecordFormat("csv")
    text = "\n".join([fmt.header() or "", *(fmt.line(r) for r in records)])
    table = list(csv.DictReader(io.StringIO(text)))
    assert table[0]["key"] == f"{prefix}a,comma.txt" and table[0]["size"] == "5" and table[0]["encrypted"] == "false"
    assert table[0]["content_type"] == "text/plain" and table[1]["error"] == ""

    summary = InventorySummary(bucket=BUCKET, prefix=prefix).consume(records)
    assert json.loads(summary_text(summary, "jsonl"))["plaintext"] == {"objects": 2, "bytes": 12}
    rows = list(csv.DictReader(io.StringIO(summary_text(summary, "csv"))))
    assert {"measure": "plaintext", "cmk": "", "key_version": "", "objects": "2", "bytes": "12"} in rows
    with pytest.raises(ValueError, match="format must be one of"):
        RecordFormat("xml")


def test_concurrency_out_of_range_is_refused_before_any_request(objects: EncryptedObjects) -> None:
    for bad in (0, 65, True, "8"):
        with pytest.raises(ValueError, match="concurrency must be"):
            objects.inventory("x/", concurrency=bad)  # type: ignore[arg-type]


def test_an_inventory_of_each_listing_shard_covers_every_object_once(
    objects: EncryptedObjects, oss_env: LocalOSSServer, prefix: str
) -> None:
    """Mapped over ``listing_shards`` (as a fleet rewrap is), the shards' inventories together are the
    prefix's inventory: nothing twice, nothing missed."""
    bucket = plain_bucket(oss_env)
    names = [f"{prefix}{i:02d}" for i in range(7)]
    for name in names:
        bucket.put_object(name, b"plain")
    shards = objects.listing_shards(prefix, objects_per_shard=3)
    assert len(shards) == 3

    seen = [
        record.key
        for shard in shards
        for record in objects.inventory(prefix, concurrency=2, start_after=shard["start_after"], end_at=shard["end_at"])
    ]
    assert seen == names
