"""The streaming part bodies and the worker-side ranged download keep the exact bytes and integrity semantics."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import oss2
import pytest

from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.keywrap import DataKey
from airflow_provider_osscse.exceptions import IntegrityError
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.transport.encrypted_objects import EncryptedObjects, TransferConfig
from airflow_provider_osscse.transport.file_download import range_size_for
from airflow_provider_osscse.transport.part_body import PartBody, PieceBuffers, fd_read_into
from airflow_provider_osscse.transport.retry import RetryPolicy, is_transient

BUCKET = "transport-paths"
PART = 300 * 1024  # > OSS's 100 KiB minimum; with 16 KiB pieces a part is many pieces


@pytest.fixture(scope="module")
def server(osscse_oss_server: LocalOSSServer) -> LocalOSSServer:
    osscse_oss_server.create_bucket(BUCKET)
    return osscse_oss_server


@pytest.fixture(scope="module")
def cmk() -> LocalRsaKey:
    return LocalRsaKey.generate(reference="rsa-transport-paths")


def _bucket(server: LocalOSSServer) -> oss2.Bucket:
    return oss2.Bucket(
        oss2.AuthV4(server.access_key_id, server.access_key_secret), server.endpoint, BUCKET, region=server.region
    )


@pytest.fixture
def objects(server: LocalOSSServer) -> Iterator[EncryptedObjects]:
    bucket = _bucket(server)
    config = TransferConfig(
        multipart_threshold=PART,
        part_size=PART,
        max_workers=3,
        retry=RetryPolicy(attempts=5, initial_backoff=0.01, transient=is_transient),
    )
    yield EncryptedObjects(lambda _name: bucket, config)
    server.clear_faults()


def test_part_body_encrypts_its_slice_like_one_cipher_over_the_object(tmp_path: Path) -> None:
    data = os.urandom(100_003)
    path = tmp_path / "src"
    path.write_bytes(data)
    key = DataKey(key=os.urandom(32), iv=os.urandom(8) + bytes(8))
    expected = CtrCipher(key.key, key.iv).update(data)
    offset, size = 40_001, 50_000  # not 16-aligned: the cipher positions itself mid-block
    with open(path, "rb") as handle:
        body = PartBody(
            fd_read_into(handle.fileno()), offset, size, CtrCipher(key.key, key.iv, offset), PieceBuffers(4096)
        )
        pieces = [body.read(n) for n in (1, 4095, 7000, 333)]
        pieces.append(body.read())
    assert len(body) == size
    assert b"".join(pieces) == expected[offset : offset + size]


def test_part_body_without_cipher_sends_source_bytes_and_reports_shrunk_source(tmp_path: Path) -> None:
    path = tmp_path / "src"
    path.write_bytes(b"x" * 1000)
    with open(path, "rb") as handle:
        assert PartBody(fd_read_into(handle.fileno()), 10, 990, None, PieceBuffers(64)).read() == b"x" * 990
        with pytest.raises(OSError, match="shrank"):
            PartBody(fd_read_into(handle.fileno()), 10, 2000, None, PieceBuffers(64)).read()


def test_range_size_is_a_whole_number_of_integrity_segments() -> None:
    assert range_size_for(8 * 2**20, 2 * 2**20) == 8 * 2**20
    assert range_size_for(2 * 2**20, 3 * 2**20) == 3 * 2**20
    assert range_size_for(1000, None) == 992


@pytest.mark.parametrize("source_kind", ["path", "file-object-without-fd", "iterator"])
def test_multipart_upload_then_parallel_download_round_trips(
    objects: EncryptedObjects, cmk: LocalRsaKey, tmp_path: Path, source_kind: str
) -> None:
    data = os.urandom(5 * PART + 12_345)
    path = tmp_path / "src"
    path.write_bytes(data)
    source = {
        "path": str(path),
        "file-object-without-fd": io.BytesIO(data),
        "iterator": iter([data[i : i + 70_000] for i in range(0, len(data), 70_000)]),
    }[source_kind]
    result = objects.put(f"round-trip/{source_kind}", source, cmk)
    assert result.parts > 1 and result.size == len(data)
    out = tmp_path / "out"
    downloaded = objects.download(f"round-trip/{source_kind}", out, cmk)
    assert downloaded.integrity == "verified" and out.read_bytes() == data


def test_failed_range_is_retried_without_double_counting_its_segments(
    objects: EncryptedObjects, server: LocalOSSServer, cmk: LocalRsaKey, tmp_path: Path
) -> None:
    data = os.urandom(6 * PART)
    objects.put("retry/range", io.BytesIO(data), cmk)
    server.inject_fault("GET", path_contains="retry/range", action="reset", times=2)
    server.inject_fault("GET", path_contains="retry/range", action="status:500", times=1)
    out = tmp_path / "out"
    assert objects.download("retry/range", out, cmk).integrity == "verified"
    assert out.read_bytes() == data


def test_ranges_spanning_several_segments_in_small_pieces_verify(
    objects: EncryptedObjects,
    server: LocalOSSServer,
    cmk: LocalRsaKey,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow_provider_osscse.transport import file_download

    monkeypatch.setattr(file_download, "PIECE_SIZE", 64 * 1024)  # pieces straddle the 300 KiB segments
    data = os.urandom(7 * PART + 3)
    objects.put("wide/ranges", io.BytesIO(data), cmk)
    bucket = _bucket(server)
    wide = EncryptedObjects(
        lambda _name: bucket, TransferConfig(multipart_threshold=PART, part_size=3 * PART + 5, max_workers=2)
    )
    out = tmp_path / "out"
    assert wide.download("wide/ranges", out, cmk).integrity == "verified"
    assert out.read_bytes() == data


def test_altered_ciphertext_fails_verification_and_no_file_appears(
    objects: EncryptedObjects, server: LocalOSSServer, cmk: LocalRsaKey, tmp_path: Path
) -> None:
    data = os.urandom(4 * PART + 1)
    objects.put("tamper/bit", io.BytesIO(data), cmk)
    stored = server.stored_object(BUCKET, "tamper/bit")
    flipped = bytearray(stored.data)
    flipped[3 * PART + 7] ^= 1
    server.overwrite_stored(BUCKET, "tamper/bit", bytes(flipped))
    with pytest.raises(IntegrityError):
        objects.download("tamper/bit", tmp_path / "out", cmk)
    assert list(tmp_path.iterdir()) == []


def test_verify_first_stream_spools_only_ciphertext_in_bounded_memory(
    server: LocalOSSServer, cmk: LocalRsaKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large whole-object stream: the workers spool the stored ciphertext (never plaintext), the tag
    verifies, then the spool is decrypted; memory stays a few pieces whatever the object size."""
    import tempfile
    import tracemalloc

    from airflow_provider_osscse.transport import download

    mib = 1024 * 1024
    bucket = _bucket(server)
    objects = EncryptedObjects(
        lambda _name: bucket, TransferConfig(multipart_threshold=mib, part_size=mib, max_workers=3)
    )
    data = os.urandom(16 * mib + 5)
    objects.put("spool/large", io.BytesIO(data), cmk)
    spools: list[str] = []

    def visible_spool(*args: object, **kwargs: object) -> object:
        handle = tempfile.NamedTemporaryFile(dir=tmp_path, delete=False)  # noqa: SIM115 - closed by the reader
        spools.append(handle.name)
        return handle

    monkeypatch.setattr(download.tempfile, "TemporaryFile", visible_spool)
    stream = objects.stream("spool/large", cmk)
    tracemalloc.start()
    received = 0
    for chunk in stream:
        assert data[received : received + len(chunk)] == chunk
        received += len(chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert received == len(data) and stream.integrity == "verified"
    assert peak < 12 * mib, f"peak {peak / mib:.1f} MiB"
    assert len(spools) == 1 and Path(spools[0]).read_bytes() == server.stored_object(BUCKET, "spool/large").data
