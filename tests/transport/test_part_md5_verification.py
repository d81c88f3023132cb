"""Encrypted parts are sent without oss2's CRC64 and verified by MD5 against the part ETags instead.

Everything runs against the real local OSS server. No server corrupts bytes on demand (its fault
injection drops connections, answers 5xx or delays), so corruption in transit is made by a minimal
stand-in on the client side of the wire: it alters bytes *after* the part body hashed them, so the
server really stores different bytes and really answers with their MD5.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterator

import oss2
import pytest

from airflow_provider_osscse.exceptions import TransferChecksumError
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.transport import multipart_upload
from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig
from airflow_provider_osscse.transport.oss_client import without_client_crc
from airflow_provider_osscse.transport.part_body import PartBody
from airflow_provider_osscse.transport.retry import RetryPolicy, is_transient

BUCKET = "part-md5"
PART = 200 * 1024


@pytest.fixture(scope="module")
def server(osscse_oss_server: LocalOSSServer) -> LocalOSSServer:
    osscse_oss_server.create_bucket(BUCKET)
    return osscse_oss_server


@pytest.fixture(scope="module")
def cmk() -> LocalRsaKey:
    return LocalRsaKey.generate(reference="rsa-part-md5")


@pytest.fixture
def bucket(server: LocalOSSServer) -> oss2.Bucket:
    return oss2.Bucket(
        oss2.AuthV4(server.access_key_id, server.access_key_secret), server.endpoint, BUCKET, region=server.region
    )


@pytest.fixture
def objects(bucket: oss2.Bucket, server: LocalOSSServer) -> Iterator[EncryptedObjects]:
    config = TransferConfig(
        multipart_threshold=PART,
        part_size=PART,
        max_workers=3,
        retry=RetryPolicy(attempts=3, initial_backoff=0.01, transient=is_transient),
    )
    yield EncryptedObjects(lambda _name: bucket, config)
    server.clear_faults()


class _CorruptOnTheWire:
    """A body that flips one bit of what the wrapped :class:`PartBody` hands out, after it was hashed."""

    def __init__(self, body: PartBody) -> None:
        self.body = body
        self._flipped = False

    def __len__(self) -> int:
        return len(self.body)

    def read(self, amt: int | None = -1) -> bytes:
        chunk = self.body.read(amt)
        if chunk and not self._flipped:
            self._flipped = True
            chunk = bytes([chunk[0] ^ 0x01]) + chunk[1:]
        return chunk


@pytest.fixture
def corrupt_parts(monkeypatch: pytest.MonkeyPatch, bucket: oss2.Bucket) -> dict[str, int]:
    """Corrupt the next ``state['left']`` encrypted parts in transit; counts CRC-free sends in ``sent``."""
    state = {"left": 0, "sent": 0, "corrupted": 0}
    crc_free = without_client_crc(bucket)
    assert crc_free is not bucket and crc_free.enable_crc is False and bucket.enable_crc is True
    real = oss2.Bucket.upload_part
    lock = threading.Lock()

    def upload_part(self, key, upload_id, part_number, data, *args, **kwargs):
        if self is crc_free and isinstance(data, PartBody):
            with lock:
                state["sent"] += 1
                corrupt = state["left"] > 0
                if corrupt:
                    state["left"] -= 1
                    state["corrupted"] += 1
            if corrupt:
                data = _CorruptOnTheWire(data)
        return real(self, key, upload_id, part_number, data, *args, **kwargs)

    monkeypatch.setattr(oss2.Bucket, "upload_part", upload_part)
    return state


def _stored_ciphertext_md5s(server: LocalOSSServer, key: str, part_size: int) -> tuple[str, list[bytes]]:
    data = server.stored_object(BUCKET, key).data
    return server.stored_object(BUCKET, key).etag, [
        hashlib.md5(data[i : i + part_size]).digest() for i in range(0, len(data), part_size)
    ]


def test_multipart_upload_verifies_every_part_by_md5_instead_of_crc64(
    objects: EncryptedObjects,
    server: LocalOSSServer,
    cmk: LocalRsaKey,
    corrupt_parts: dict[str, int],
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checked: list[tuple[int, str]] = []
    real_verify = multipart_upload._verify_part_etag  # noqa: SLF001 - spied on to see each part checked by MD5

    def verify(key, number, body, etag):
        real_verify(key, number, body, etag)
        checked.append((number, body.md5_hex()))

    monkeypatch.setattr(multipart_upload, "_verify_part_etag", verify)
    data = os.urandom(4 * PART + 777)
    result = objects.put("verified/ok", io.BytesIO(data), cmk)
    assert result.parts == 5 and corrupt_parts["sent"] == 5  # every part went without client CRC64
    assert sorted(n for n, _ in checked) == [1, 2, 3, 4, 5]
    etag, md5s = _stored_ciphertext_md5s(server, "verified/ok", PART)
    assert [md5.hex().upper() for md5 in md5s] == [h for _, h in sorted(checked)]
    assert result.etag == etag
    out = tmp_path / "out"
    assert objects.download("verified/ok", out, cmk).integrity == "verified"
    assert out.read_bytes() == data


@pytest.mark.parametrize("source_kind", ["file", "iterator"])
def test_a_part_corrupted_in_transit_is_detected_and_resent(
    objects: EncryptedObjects,
    server: LocalOSSServer,
    cmk: LocalRsaKey,
    corrupt_parts: dict[str, int],
    tmp_path,
    source_kind: str,
) -> None:
    data = os.urandom(3 * PART + 5)
    source = (
        io.BytesIO(data) if source_kind == "file" else iter([data[i : i + 50_000] for i in range(0, len(data), 50_000)])
    )
    corrupt_parts["left"] = 2  # two corrupted sends: the third attempt (attempts=3) of a part gets through
    key = f"verified/retried-{source_kind}"
    result = objects.put(key, source, cmk)
    assert corrupt_parts["corrupted"] == 2 and corrupt_parts["sent"] == result.parts + 2
    assert server.list_multipart_uploads(BUCKET) == []
    out = tmp_path / "out"
    assert objects.download(key, out, cmk).integrity == "verified"
    assert out.read_bytes() == data


def test_a_persistent_mismatch_aborts_the_upload_leaving_no_object_and_no_parts(
    objects: EncryptedObjects,
    server: LocalOSSServer,
    cmk: LocalRsaKey,
    corrupt_parts: dict[str, int],
) -> None:
    corrupt_parts["left"] = 1000
    with pytest.raises(TransferChecksumError, match="corrupted in transit"):
        objects.put("verified/never", io.BytesIO(os.urandom(3 * PART)), cmk)
    assert corrupt_parts["corrupted"] >= 3  # retried up to the policy's 3 attempts
    assert server.list_multipart_uploads(BUCKET) == []
    assert not objects.exists("verified/never")


def test_mismatch_is_transient_like_a_crc_mismatch() -> None:
    assert is_transient(TransferChecksumError("x"))
    assert is_transient(oss2.exceptions.InconsistentError("crc mismatch"))
