"""The integrity tag: every tamper is caught with a clear error; rotation keeps it valid."""

from __future__ import annotations

import base64
import os
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_provider_osscse.envelope import (
    DataKey,
    EnvelopeReader,
    EnvelopeWriter,
    IntegrityPolicy,
    IntegrityStatus,
    IntegrityTag,
    encrypt_object,
    parse_envelope,
    plan_parts,
)
from airflow_provider_osscse.envelope.headers import (
    CEK_ALG_HEADER,
    CMK_HEADER,
    KEY_HEADER,
    START_HEADER,
    WRAP_ALG_HEADER,
)
from airflow_provider_osscse.envelope.integrity import INTEGRITY_HEADER
from airflow_provider_osscse.exceptions import (
    EnvelopeFormatError,
    IntegrityError,
    KeyUnwrapError,
    NoMatchingKeyError,
    UnauthenticatedObjectError,
    UnsupportedAlgorithmError,
)
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

SEG = 64 * 1024
PLAIN = os.urandom(4 * SEG + 5000)


def _object(cmk, plain: bytes = PLAIN, seg: int = SEG) -> tuple[dict[str, str], bytes]:
    obj = encrypt_object(plain, cmk, object_name="obj", segment_size=seg)
    return obj.metadata, b"".join(obj.chunks)


def _read(meta, ct, cmk, policy="if-present", binding=None) -> tuple[bytes, IntegrityStatus | None]:
    reader = EnvelopeReader(meta, cmk, object_name="obj", integrity_policy=policy, binding=binding)
    out = b"".join(reader.decrypt_chunks(ct, chunk_size=7000))
    return out, reader.status


def test_untampered_object_verifies(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    assert meta[INTEGRITY_HEADER].startswith(f"v2;seg={SEG};tag=")
    assert _read(meta, ct, rsa_key) == (PLAIN, IntegrityStatus.VERIFIED)


def test_flipped_bit_raises_integrity_error(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    bad = bytearray(ct)
    bad[1234] ^= 0x01
    with pytest.raises(IntegrityError, match=r"'obj'.*mismatch"):
        _read(meta, bytes(bad), rsa_key)


@pytest.mark.parametrize("policy", ["require", "if-present"])
@pytest.mark.parametrize("where", [0, 1234, -1])
def test_tampered_object_yields_no_plaintext_byte_before_verification(rsa_key, policy: str, where: int) -> None:
    meta, ct = _object(rsa_key)
    reader = EnvelopeReader(meta, rsa_key, object_name="obj", integrity_policy=policy)
    bad = bytearray(ct)
    bad[where] ^= 1
    got: list[bytes] = []
    with pytest.raises(IntegrityError):
        got.extend(reader.decrypt_chunks(bytes(bad), chunk_size=1000))  # keeps what came before the raise
    assert got == []


@pytest.mark.parametrize("cut", [1, 16, SEG, 3000])
def test_truncation_raises_integrity_error(rsa_key, cut: int) -> None:
    meta, ct = _object(rsa_key)
    with pytest.raises(IntegrityError):
        _read(meta, ct[:-cut], rsa_key)


def test_extension_raises_integrity_error(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    with pytest.raises(IntegrityError):
        _read(meta, ct + b"\x00" * 20, rsa_key)


@pytest.mark.parametrize("header", [KEY_HEADER, START_HEADER])
def test_wrapped_value_swapped_from_another_object_is_caught(rsa_key, header: str) -> None:
    meta, ct = _object(rsa_key)
    other_meta, _ = _object(rsa_key)
    meta[header] = other_meta[header]
    with pytest.raises(IntegrityError):
        _read(meta, ct, rsa_key)


def test_relabelled_cek_alg_is_refused(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    meta[CEK_ALG_HEADER] = "AES/GCM/NoPadding"
    with pytest.raises(UnsupportedAlgorithmError):
        _read(meta, ct, rsa_key)


def test_relabelled_wrap_alg_finds_no_cmk(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    meta[WRAP_ALG_HEADER] = "KMS/ALICLOUD"
    with pytest.raises(NoMatchingKeyError, match="KMS/ALICLOUD"):
        _read(meta, ct, rsa_key)


def test_tag_binds_cek_alg(rsa_key) -> None:
    writer = EnvelopeWriter(rsa_key, object_name="obj")
    builder = writer.integrity_builder(SEG)
    builder.segment_mac(0, b"abc")
    tag = builder.finish(3, binding=None)
    writer.cek_alg = "AES/CTR/Other"
    other = writer.integrity_builder(SEG)
    other.segment_mac(0, b"abc")
    with pytest.raises(IntegrityError):
        other.verify(tag, 3)


def test_wrong_cmk_is_refused_before_any_output(rsa_key) -> None:
    meta, _ = _object(rsa_key)
    stranger = LocalRsaKey.generate(2048, reference="stranger")
    with pytest.raises(NoMatchingKeyError, match=r"'obj'.*stranger"):
        EnvelopeReader(meta, stranger, object_name="obj")
    del meta[CMK_HEADER]  # as an official SDK writes it: no identity, so the unwrap itself must fail
    with pytest.raises(KeyUnwrapError, match="stranger"):
        EnvelopeReader(meta, stranger, object_name="obj")


def test_stripped_tag_is_unauthenticated_or_refused_by_require(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    del meta[INTEGRITY_HEADER]
    assert _read(meta, ct, rsa_key) == (PLAIN, IntegrityStatus.UNAUTHENTICATED)
    assert _read(meta, ct, rsa_key, policy="off") == (PLAIN, IntegrityStatus.SKIPPED)
    with pytest.raises(UnauthenticatedObjectError, match="require"):
        _read(meta, ct, rsa_key, policy=IntegrityPolicy.REQUIRE)


def test_policy_off_does_not_verify(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    bad = bytes([ct[0] ^ 1]) + ct[1:]
    assert _read(meta, bad, rsa_key, policy="off")[1] is IntegrityStatus.SKIPPED


@pytest.mark.parametrize(
    "value",
    [
        "v3;seg=65536;tag=" + "A" * 43 + "=",
        "v1;seg=0;tag=" + "A" * 43 + "=",
        "v2;seg=65536;tag=short",
        "v2;tag=" + "A" * 43 + "=;seg=65536",
        "v2;seg=65536;tag=" + "!" * 43 + "=",
        "v1;seg=65536;tag=" + "A" * 43 + "=;bind=" + "A" * 43 + "=",
        # segment sizes a forged header could use to make a reader work per byte, or misalign segments
        "v2;seg=1;tag=" + "A" * 43 + "=",
        "v2;seg=65535;tag=" + "A" * 43 + "=",
        "v2;seg=65544;tag=" + "A" * 43 + "=",
    ],
)
def test_malformed_integrity_header_is_refused(value: str) -> None:
    with pytest.raises(EnvelopeFormatError, match="osscse-integrity"):
        IntegrityTag.parse(value, object_name="o")


def test_rotation_by_rewrapping_keeps_the_tag_valid(rsa_key, other_rsa_key) -> None:
    meta, ct = _object(rsa_key)
    env = parse_envelope(meta, object_name="obj")
    rewrapped = other_rsa_key.wrap(rsa_key.unwrap(env.wrapped))
    meta[KEY_HEADER] = base64.b64encode(rewrapped.wrapped_key).decode()
    meta[START_HEADER] = base64.b64encode(rewrapped.wrapped_iv).decode()
    meta[CMK_HEADER] = rewrapped.cmk_identity
    assert _read(meta, ct, other_rsa_key, policy="require") == (PLAIN, IntegrityStatus.VERIFIED)


def test_parallel_part_macs_equal_the_streaming_tag(rsa_key) -> None:
    plain = os.urandom(350_000)
    plan = plan_parts(len(plain), 102_400)
    writer = EnvelopeWriter(rsa_key, object_name="obj")
    builder = writer.integrity_builder(plan.part_size)

    def work(number: int) -> bytes:
        part = plan.part(number)
        data = plain[part.offset : part.offset + part.size]
        builder.segment_mac(number - 1, data)
        return writer.encrypt_part(plan, number, data)

    with ThreadPoolExecutor(4) as pool:
        parts = list(pool.map(work, reversed(range(1, plan.part_count + 1))))
    tag = writer.finish_integrity(builder, len(plain))
    assert tag == writer.compute_integrity(plain, segment_size=plan.part_size)
    meta = writer.metadata(part_plan=plan, integrity=tag)
    assert _read(meta, b"".join(reversed(parts)), rsa_key, policy="require") == (plain, IntegrityStatus.VERIFIED)


def test_missing_segment_is_reported(rsa_key) -> None:
    builder = EnvelopeWriter(rsa_key, object_name="obj").integrity_builder(SEG)
    builder.segment_mac(1, b"x" * 4)
    with pytest.raises(IntegrityError, match="do not cover"):
        builder.finish(SEG + 4, binding=None)


def test_ranged_read_is_skipped_or_refused_under_require(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    reader = EnvelopeReader(meta, rsa_key, object_name="obj", integrity_policy="if-present")
    plan = reader.plan_range("bytes=-100", len(ct))
    got = b"".join(reader.decrypt_chunks(ct[plan.request_start :], range_plan=plan))
    assert got == PLAIN[-100:] and reader.status is IntegrityStatus.SKIPPED
    strict = EnvelopeReader(meta, rsa_key, object_name="obj", integrity_policy="require")
    with pytest.raises(UnauthenticatedObjectError):
        strict.decrypt_chunks(ct, range_plan=plan)


def test_errors_and_reprs_never_contain_key_material(rsa_key) -> None:
    meta, ct = _object(rsa_key)
    reader = EnvelopeReader(meta, rsa_key, object_name="obj")
    ck: DataKey = reader._content_key  # noqa: SLF001 - the test looks for leaks of this value
    texts = [repr(reader), repr(ck), repr(reader.integrity_builder())]
    try:
        _read(meta, ct[:-1], rsa_key)
    except IntegrityError as exc:
        texts.append(str(exc))
    for text in texts:
        for secret in (ck.key, ck.iv):
            assert secret.hex() not in text and base64.b64encode(secret).decode() not in text
    with pytest.raises(TypeError):
        pickle.dumps(reader)
