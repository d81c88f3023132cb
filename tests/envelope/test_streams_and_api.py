"""Streaming in constant memory from paths, file objects and iterators; the writer/reader round trip."""

from __future__ import annotations

import io
import os
import tracemalloc
from pathlib import Path

from airflow_provider_osscse.envelope import (
    DataKey,
    EnvelopeReader,
    EnvelopeWriter,
    IntegrityStatus,
    decrypt_object,
    encrypt_object,
)
from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.streams import transform_chunks, transform_file

PLAIN = os.urandom(300_000)


def test_path_file_object_and_iterator_give_the_same_ciphertext(tmp_path: Path) -> None:
    ck = DataKey.generate()
    src = tmp_path / "p.bin"
    src.write_bytes(PLAIN)
    expected = CtrCipher(ck.key, ck.iv).update(PLAIN)
    chunks = (PLAIN[i : i + 777] for i in range(0, len(PLAIN), 777))
    assert b"".join(transform_chunks(src, ck, chunk_size=4096)) == expected
    assert b"".join(transform_chunks(io.BytesIO(PLAIN), ck, chunk_size=5000)) == expected
    assert b"".join(transform_chunks(chunks, ck)) == expected


def test_stream_can_start_at_an_aligned_offset() -> None:
    ck = DataKey.generate()
    whole = CtrCipher(ck.key, ck.iv).update(PLAIN)
    assert b"".join(transform_chunks(PLAIN[4096:], ck, offset=4096)) == whole[4096:]


def test_transform_file_round_trips_with_preallocated_buffers(tmp_path: Path) -> None:
    ck = DataKey.generate()
    (tmp_path / "p").write_bytes(PLAIN)
    assert transform_file(tmp_path / "p", tmp_path / "c", ck, chunk_size=10_000) == len(PLAIN)
    transform_file(tmp_path / "c", tmp_path / "d", ck)
    assert (tmp_path / "d").read_bytes() == PLAIN


def test_memory_is_independent_of_object_size() -> None:
    ck = DataKey.generate()
    chunk = os.urandom(64 * 1024)

    def peak(total_chunks: int) -> int:
        tracemalloc.start()
        for _ in transform_chunks((chunk for _ in range(total_chunks)), ck):
            pass
        _, high = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return high

    small, large = peak(16), peak(512)  # 1 MiB vs 32 MiB
    assert large < 4 * 64 * 1024 and large < small + 64 * 1024


def test_one_shot_iterator_is_spooled_as_ciphertext_and_verifies(rsa_key) -> None:
    obj = encrypt_object(iter([PLAIN[:1000], PLAIN[1000:]]), rsa_key, object_name="o", segment_size=64 * 1024)
    assert obj.length == len(PLAIN)
    ct = b"".join(obj.chunks)
    assert PLAIN[:64] not in ct
    reader = EnvelopeReader(obj.metadata, rsa_key, object_name="o", integrity_policy="require")
    assert b"".join(reader.decrypt_chunks(ct)) == PLAIN and reader.status is IntegrityStatus.VERIFIED


def test_seekable_file_gets_a_second_pass_from_its_start(rsa_key) -> None:
    handle = io.BytesIO(b"xx" + PLAIN)
    handle.seek(2)
    obj = encrypt_object(handle, rsa_key, object_name="o")
    assert b"".join(decrypt_object(obj.metadata, b"".join(obj.chunks), rsa_key, object_name="o")) == PLAIN


def test_integrity_can_be_turned_off_for_official_compatible_minimal_headers(rsa_key) -> None:
    obj = encrypt_object(PLAIN, rsa_key, object_name="o", integrity=False)
    assert "x-oss-meta-osscse-integrity" not in obj.metadata
    reader = EnvelopeReader(obj.metadata, rsa_key, object_name="o", integrity_policy="if-present")
    assert b"".join(reader.decrypt_chunks(b"".join(obj.chunks))) == PLAIN
    assert reader.status is IntegrityStatus.UNAUTHENTICATED


def test_reader_picks_the_matching_cmk_from_a_list_or_a_resolver(rsa_key, other_rsa_key) -> None:
    from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

    tagged = LocalRsaKey(private_key_pem=other_rsa_key.private_key_pem(), reference="b", matdesc={"k": "b"})
    obj = encrypt_object(PLAIN, tagged, object_name="o")
    ct = b"".join(obj.chunks)
    plain_a = LocalRsaKey(private_key_pem=rsa_key.private_key_pem(), reference="a", matdesc={"k": "a"})
    assert b"".join(decrypt_object(obj.metadata, ct, [plain_a, tagged], object_name="o")) == PLAIN
    assert b"".join(decrypt_object(obj.metadata, ct, lambda w: tagged, object_name="o")) == PLAIN


def test_writer_with_public_key_only_encrypts(rsa_key) -> None:
    from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

    public = LocalRsaKey(public_key_pem=rsa_key.public_key_pem())
    writer = EnvelopeWriter(public, object_name="o")
    meta = writer.metadata(plaintext_length=len(PLAIN))
    ct = b"".join(writer.encrypt_chunks(PLAIN))
    assert b"".join(decrypt_object(meta, ct, rsa_key, object_name="o", integrity_policy="if-present")) == PLAIN
