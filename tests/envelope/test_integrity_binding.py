"""Tag v2: bound to bucket and object key by default, downgrade-proof, re-bindable; v1 still verifies;
header values bounded before use."""

from __future__ import annotations

import os
import time
import tracemalloc

import pytest

from airflow_provider_osscse.envelope import (
    EnvelopeReader,
    IntegrityStatus,
    IntegrityTag,
    ObjectBinding,
    encrypt_object,
    parse_envelope,
)
from airflow_provider_osscse.envelope.headers import (
    CMK_HEADER,
    CMK_VERSION_HEADER,
    UNENCRYPTED_CONTENT_LENGTH_HEADER,
)
from airflow_provider_osscse.envelope.integrity import INTEGRITY_HEADER, MAX_SEGMENT_COUNT, rebind_tag
from airflow_provider_osscse.envelope.matdesc import MATDESC_HEADER
from airflow_provider_osscse.exceptions import EnvelopeFormatError, IntegrityError
from tests.legacy_tags import v1_tag

SEG = 64 * 1024
PLAIN = os.urandom(3 * SEG + 123)
HERE = ObjectBinding("bucket-a", "exports/2026/a.csv")


def _bound_object(cmk, binding: ObjectBinding | None = HERE) -> tuple[dict[str, str], bytes]:
    obj = encrypt_object(PLAIN, cmk, object_name="obj", segment_size=SEG, binding=binding)
    return obj.metadata, b"".join(obj.chunks)


def _read(meta, ct, cmk, binding: ObjectBinding | None) -> bytes:
    reader = EnvelopeReader(meta, cmk, object_name="obj", binding=binding, object_size=len(ct))
    data = b"".join(reader.decrypt_chunks(ct))
    assert reader.status is IntegrityStatus.VERIFIED
    return data


def test_bound_tag_verifies_at_its_own_name(rsa_key) -> None:
    meta, ct = _bound_object(rsa_key)
    assert IntegrityTag.parse(meta[INTEGRITY_HEADER], object_name="obj").bound
    assert _read(meta, ct, rsa_key, HERE) == PLAIN


@pytest.mark.parametrize(
    "elsewhere",
    [
        ObjectBinding("bucket-a", "exports/2026/b.csv"),
        ObjectBinding("bucket-b", "exports/2026/a.csv"),
        # length-prefixed fields: moving a '/' between bucket and key is another name
        ObjectBinding("bucket-a/exports", "2026/a.csv"),
    ],
)
def test_object_swapped_or_replayed_under_another_name_is_detected(rsa_key, elsewhere: ObjectBinding) -> None:
    meta, ct = _bound_object(rsa_key)
    with pytest.raises(IntegrityError, match="another bucket/key"):
        _read(meta, ct, rsa_key, elsewhere)


def test_stripping_the_binding_to_pass_as_unbound_breaks_the_tag(rsa_key) -> None:
    meta, ct = _bound_object(rsa_key)
    meta[INTEGRITY_HEADER] = meta[INTEGRITY_HEADER].split(";bind=")[0]
    with pytest.raises(IntegrityError, match="mismatch"):
        _read(meta, ct, rsa_key, ObjectBinding("bucket-b", "moved.csv"))


def test_bound_tag_without_a_name_to_check_is_an_error_not_a_pass(rsa_key) -> None:
    meta, ct = _bound_object(rsa_key)
    with pytest.raises(IntegrityError, match="bound"):
        _read(meta, ct, rsa_key, None)


def test_explicitly_unbound_tag_verifies_under_any_name(rsa_key) -> None:
    meta, ct = _bound_object(rsa_key, binding=None)
    assert ";bind=" not in meta[INTEGRITY_HEADER]
    assert _read(meta, ct, rsa_key, ObjectBinding("any", "where")) == PLAIN


def test_rebind_moves_the_tag_to_a_copy_without_reading_content(rsa_key) -> None:
    meta, ct = _bound_object(rsa_key)
    envelope = parse_envelope(meta, object_name="obj")
    there = ObjectBinding("bucket-b", "copies/a.csv")
    new_tag = rebind_tag(rsa_key.unwrap(envelope.wrapped), envelope.integrity, source=HERE, destination=there)
    meta[INTEGRITY_HEADER] = new_tag.to_header_value()
    assert _read(meta, ct, rsa_key, there) == PLAIN
    with pytest.raises(IntegrityError):
        _read(meta, ct, rsa_key, HERE)


def test_rebind_refuses_an_object_that_was_already_moved(rsa_key) -> None:
    meta, _ = _bound_object(rsa_key)
    envelope = parse_envelope(meta, object_name="obj")
    with pytest.raises(IntegrityError, match="moved or replayed"):
        rebind_tag(
            rsa_key.unwrap(envelope.wrapped),
            envelope.integrity,
            source=ObjectBinding("bucket-a", "not-here"),
            destination=HERE,
        )


def test_v1_tags_of_earlier_versions_still_verify_and_still_catch_tampering(rsa_key) -> None:
    obj = encrypt_object(PLAIN, rsa_key, object_name="obj", integrity=False)
    meta, ct = obj.metadata, b"".join(obj.chunks)
    ck = rsa_key.unwrap(parse_envelope(meta, object_name="obj").wrapped)
    meta[INTEGRITY_HEADER] = v1_tag(ck.key, ck.iv, PLAIN, SEG)
    assert _read(meta, ct, rsa_key, ObjectBinding("any", "name")) == PLAIN
    bad = bytes([ct[0] ^ 1]) + ct[1:]
    with pytest.raises(IntegrityError):
        _read(meta, bad, rsa_key, None)


def test_declared_length_must_match_the_stored_object(rsa_key) -> None:
    meta, ct = _bound_object(rsa_key)
    meta[UNENCRYPTED_CONTENT_LENGTH_HEADER] = str(len(ct) + 1)
    with pytest.raises(EnvelopeFormatError, match="unencrypted-content-length"):
        EnvelopeReader(meta, rsa_key, object_name="obj", binding=HERE, object_size=len(ct))


def test_absurd_lengths_are_refused_before_use(rsa_key) -> None:
    meta, _ = _bound_object(rsa_key)
    meta[UNENCRYPTED_CONTENT_LENGTH_HEADER] = "9" * 19
    with pytest.raises(EnvelopeFormatError, match="largest object"):
        parse_envelope(meta, object_name="obj")


def test_small_segment_header_costs_nothing_before_the_error(rsa_key) -> None:
    """Seen: seg=1 on a 2 MiB object cost 20 s and ~2 GiB before the expected error."""
    obj = encrypt_object(os.urandom(2 * 1024 * 1024), rsa_key, object_name="obj", binding=HERE)
    meta, ct = obj.metadata, b"".join(obj.chunks)
    meta[INTEGRITY_HEADER] = "v2;seg=1;" + meta[INTEGRITY_HEADER].split(";", 2)[2]
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(EnvelopeFormatError, match="segment size 1"):
        EnvelopeReader(meta, rsa_key, object_name="obj", binding=HERE, object_size=len(ct))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.monotonic() - started < 1.0 and peak < 16 * 1024 * 1024


def test_segment_count_is_bounded_by_the_stored_size(rsa_key) -> None:
    tag = IntegrityTag(segment_size=SEG, tag=b"\0" * 32)
    assert tag.segment_count(SEG * MAX_SEGMENT_COUNT) == MAX_SEGMENT_COUNT
    with pytest.raises(EnvelopeFormatError, match="segments"):
        tag.segment_count(SEG * MAX_SEGMENT_COUNT + 1)


def test_identity_travels_in_our_own_headers_and_the_matdesc_stays_the_users(rsa_key) -> None:
    meta, _ = _bound_object(rsa_key)
    assert MATDESC_HEADER not in meta
    assert meta[CMK_HEADER] == rsa_key.identity
    wrapped = parse_envelope(meta, object_name="obj").wrapped
    assert wrapped.cmk_identity == rsa_key.identity and dict(wrapped.matdesc) == {}


def test_objects_of_earlier_versions_name_their_cmk_in_the_matdesc_and_still_resolve(rsa_key) -> None:
    meta, ct = _bound_object(rsa_key)
    identity = meta.pop(CMK_HEADER)
    meta.pop(CMK_VERSION_HEADER, None)
    meta[MATDESC_HEADER] = f'{{"osscse-cmk":"{identity}","osscse-cmk-version":"3","team":"x"}}'
    wrapped = parse_envelope(meta, object_name="obj").wrapped
    assert (wrapped.cmk_identity, wrapped.cmk_version, dict(wrapped.matdesc)) == (identity, "3", {"team": "x"})
    assert _read(meta, ct, rsa_key, HERE) == PLAIN
