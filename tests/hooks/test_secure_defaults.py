"""Issue 9 through the hook, with default settings, against the local OSS server and real CMKs.

Each "What was seen" item that concerns the hook: a stripped tag plus flipped bits is refused (and
nothing written); a stream of a tampered object yields no byte; an object moved by a plain copy does
not verify, ``hook.copy`` keeps it valid; a forged ``seg=1`` header fails at once; unauthenticated
reads are logged at WARNING and reported; ranges under ``require`` verify the whole object first.
Also: the matdesc written is exactly the configured one (none by default), unbound tags are an
explicit option, objects of earlier versions (identity in the matdesc, v1 tags) read and rewrap.
"""

from __future__ import annotations

import io
import json
import logging
import os
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import oss2
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from oss2.crypto import RsaProvider

from airflow_provider_osscse.envelope.headers import (
    CMK_HEADER,
    CMK_VERSION_HEADER,
    CSE_PREFIX,
    parse_envelope,
)
from airflow_provider_osscse.envelope.integrity import INTEGRITY_HEADER
from airflow_provider_osscse.envelope.matdesc import MATDESC_HEADER
from airflow_provider_osscse.exceptions import (
    EnvelopeFormatError,
    IntegrityError,
    ObjectChangedError,
    UnauthenticatedObjectError,
)
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.keys.reference import resolve_cmk
from airflow_provider_osscse.transport.results import PlaintextBytes, PlaintextStream
from tests.legacy_tags import v1_tag
from tests.transfer_fixtures import oss_conn

from .conftest import BUCKET, PART

SIZES = [1000, 3 * PART + 5]  # one PUT; multipart (parallel ranges, spooled stream)
READER_LOG = "airflow_provider_osscse.envelope.reader"


def _stored(oss_env: Any, key: str) -> tuple[bytearray, dict[str, str]]:
    record = oss_env.stored_object(BUCKET, key)
    return bytearray(record.data), {k.lower(): v for k, v in record.metadata.items()}


def _flip(oss_env: Any, key: str, position: int) -> None:
    data, _ = _stored(oss_env, key)
    data[position] ^= 0x01
    oss_env.overwrite_stored(BUCKET, key, bytes(data))


def _set_metadata(oss_env: Any, key: str, metadata: dict[str, str]) -> None:
    oss_env.overwrite_stored(BUCKET, key, metadata=metadata)


def _rsa_pair(rsa_ref: str) -> dict[str, str]:
    pem = Path(rsa_ref.removeprefix("rsa-file://")).read_text()
    private = serialization.load_pem_private_key(pem.encode(), None)
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return {"private_key": pem, "public_key": public}


def _crypto_bucket(hook: EncryptedOSSHook, rsa_ref: str, **provider_kwargs: Any) -> oss2.CryptoBucket:
    settings = hook.get_conn().settings
    provider = RsaProvider(key_pair=_rsa_pair(rsa_ref), **provider_kwargs)
    return oss2.CryptoBucket(
        settings.make_auth(), settings.resolved_endpoint, BUCKET, crypto_provider=provider, region=settings.region
    )


# ------------------------------------------------------------------ tampering, default settings
@pytest.mark.parametrize("size", SIZES)
def test_stripped_tag_and_flipped_bits_fail_every_default_read_and_write_nothing(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, tmp_path: Path, size: int
) -> None:
    """Seen: with the default policy, stripping the tag and flipping ciphertext bits returned altered plaintext."""
    hook = make_hook()  # integrity=None: no connection extra, so 'require'
    key = f"secure/stripped/{size}"
    hook.upload(io.BytesIO(os.urandom(size)), key)
    _, meta = _stored(oss_env, key)
    del meta[INTEGRITY_HEADER]
    _set_metadata(oss_env, key, meta)
    _flip(oss_env, key, size // 2)
    for attempt in (
        lambda: hook.read(key),
        lambda: list(hook.stream(key)),
        lambda: hook.download(key, tmp_path / "out.bin"),
        lambda: hook.read(key, byte_range="0-9"),
    ):
        # The hook's words (the command line says --integrity if-present: tests/cli/test_cli_integrity.py).
        with pytest.raises(UnauthenticatedObjectError, match=r"; pass integrity='if-present' to read it anyway"):
            attempt()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("where", ["first", "last"])
def test_stream_of_a_tampered_object_yields_no_byte_even_to_a_consumer_that_stops_at_the_known_length(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, size: int, where: str
) -> None:
    """Seen: stream() yielded every plaintext byte of a tampered object, then raised (too late)."""
    hook = make_hook()
    key = f"secure/stream-tampered/{size}"
    hook.upload(io.BytesIO(os.urandom(size)), key)
    _flip(oss_env, key, 0 if where == "first" else size - 1)
    stream = hook.stream(key)
    received = bytearray()

    def read_up_to_the_known_length() -> None:
        for chunk in stream:
            received.extend(chunk)
            if len(received) >= size:  # knows the length, stops without asking for more
                break

    with pytest.raises(IntegrityError, match="mismatch"):
        read_up_to_the_known_length()
    assert received == b"" and stream.integrity is None


@pytest.mark.parametrize("size", SIZES)
def test_stream_and_read_report_verified_and_carry_their_attributes(
    make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str, size: int
) -> None:
    hook = make_hook()
    data = os.urandom(size)
    key = f"secure/attrs/{size}"
    hook.upload(io.BytesIO(data), key)
    stream = hook.stream(key)
    assert isinstance(stream, PlaintextStream) and stream.uri == f"oss://{BUCKET}/{key}"
    assert stream.cmk == rsa_ref and stream.integrity is None  # verified on the first next()
    assert b"".join(stream) == data and stream.integrity == "verified"
    got = hook.read(key)
    assert isinstance(got, bytes) and isinstance(got, PlaintextBytes) and got == data
    assert (got.uri, got.integrity, got.cmk) == (f"oss://{BUCKET}/{key}", "verified", rsa_ref)
    assert got.key_version == stream.key_version


@pytest.mark.parametrize("size", SIZES)
def test_range_under_require_verifies_the_whole_object_first(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, size: int
) -> None:
    hook = make_hook()
    data = os.urandom(size)
    key = f"secure/range/{size}"
    hook.upload(io.BytesIO(data), key)
    got = hook.read(key, byte_range="-77")
    assert got == data[-77:] and got.integrity == "verified"
    _flip(oss_env, key, 3)  # far from the requested range
    stream = hook.stream(key, byte_range="-77")
    with pytest.raises(IntegrityError):
        next(stream)


def test_range_after_the_verifying_pass_is_pinned_to_the_verified_version(
    make_hook: Callable[..., EncryptedOSSHook],
) -> None:
    """The object replaced between the verifying pass and the range fetch: If-Match fails, no plaintext."""
    hook = make_hook()
    key = "secure/range-race"
    hook.upload(io.BytesIO(os.urandom(3 * PART + 5)), key)
    # A race no server can time: the object is replaced right after the verifying pass, so the
    # transfer layer's verifying step is wrapped in place.
    objects = hook._objects  # noqa: SLF001
    real_verify = objects._verify_whole  # noqa: SLF001

    def verify_then_replace(*args: Any, **kwargs: Any) -> None:
        real_verify(*args, **kwargs)
        make_hook().upload(io.BytesIO(os.urandom(3 * PART + 5)), key)

    objects._verify_whole = verify_then_replace  # type: ignore[method-assign]  # noqa: SLF001
    try:
        with pytest.raises(ObjectChangedError, match="changed while it was being read"):
            hook.read(key, byte_range="0-99")
    finally:
        del objects._verify_whole  # noqa: SLF001


# ------------------------------------------------------------------ unauthenticated reads are reported
@pytest.mark.parametrize("size", SIZES)
def test_unauthenticated_reads_are_logged_and_reported_on_every_read_path(
    make_hook: Callable[..., EncryptedOSSHook],
    oss_env: Any,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    size: int,
) -> None:
    data = os.urandom(size)
    key = f"secure/untagged/{size}"
    make_hook().upload(io.BytesIO(data), key)
    _, meta = _stored(oss_env, key)
    del meta[INTEGRITY_HEADER]
    _set_metadata(oss_env, key, meta)
    lenient = make_hook(integrity="if-present")
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        got = lenient.read(key)
        stream = lenient.stream(key)
        streamed = b"".join(stream)
        downloaded = lenient.download(key, tmp_path / "out.bin")
    assert got == streamed == data and (tmp_path / "out.bin").read_bytes() == data
    assert got.integrity == stream.integrity == downloaded.integrity == "unauthenticated"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "UNAUTHENTICATED" in r.getMessage()]
    assert len(warnings) == 3 and all(key in r.getMessage() for r in warnings)


def test_policy_off_and_ranges_under_if_present_are_skipped_and_logged(
    make_hook: Callable[..., EncryptedOSSHook], caplog: pytest.LogCaptureFixture
) -> None:
    data = os.urandom(3 * PART + 5)
    key = "secure/skipped"
    make_hook().upload(io.BytesIO(data), key)
    with caplog.at_level(logging.WARNING, logger=READER_LOG):
        off = make_hook(integrity="off").read(key)
        ranged = make_hook(integrity="if-present").read(key, byte_range="10-20")
    assert off == data and off.integrity == "skipped"
    assert ranged == data[10:21] and ranged.integrity == "skipped"
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("verification is off" in m for m in messages)
    assert any("ranged read decrypted WITHOUT verifying" in m for m in messages)


def test_the_connection_extra_sets_the_deployments_default_and_the_hook_argument_wins(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "secure/extra-policy"
    data = b"official-sdk style object"
    make_hook().upload(io.BytesIO(data), key)
    _, meta = _stored(oss_env, key)
    del meta[INTEGRITY_HEADER]
    _set_metadata(oss_env, key, meta)
    monkeypatch.setenv("AIRFLOW_CONN_OSS_LENIENT", oss_conn(oss_env, integrity="if-present"))
    assert make_hook("oss_lenient").read(key).integrity == "unauthenticated"
    with pytest.raises(UnauthenticatedObjectError):
        make_hook("oss_lenient", integrity="require").read(key)
    with pytest.raises(UnauthenticatedObjectError):
        make_hook().read(key)


# ------------------------------------------------------------------ forged header values
@pytest.mark.parametrize("operation", ["read", "stream", "download"])
def test_small_segment_size_header_fails_quickly_with_a_clear_error(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, tmp_path: Path, operation: str
) -> None:
    """Seen: seg=1 on a 2 MiB object cost 20 s and ~2 GiB of memory before the expected error."""
    hook = make_hook()
    key = f"secure/seg1/{operation}"
    hook.upload(io.BytesIO(os.urandom(2 * 1024 * 1024)), key)
    _, meta = _stored(oss_env, key)
    meta[INTEGRITY_HEADER] = "v2;seg=1;" + meta[INTEGRITY_HEADER].split(";", 2)[2]
    _set_metadata(oss_env, key, meta)
    run = {
        "read": lambda: hook.read(key),
        "stream": lambda: list(hook.stream(key)),
        "download": lambda: hook.download(key, tmp_path / "out"),
    }[operation]
    tracemalloc.start()
    started = time.monotonic()
    with pytest.raises(EnvelopeFormatError, match="segment size 1"):
        run()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.monotonic() - started < 2.0 and peak < 32 * 1024 * 1024
    assert list(tmp_path.iterdir()) == []


def test_length_header_that_disagrees_with_the_stored_size_is_refused_before_reading(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, tmp_path: Path
) -> None:
    hook = make_hook()
    key = "secure/length"
    hook.upload(io.BytesIO(os.urandom(5000)), key)
    data, _ = _stored(oss_env, key)
    oss_env.overwrite_stored(BUCKET, key, bytes(data[:4000]))  # truncated at rest, headers unchanged
    with pytest.raises(EnvelopeFormatError, match="says 5000 bytes but the object holds 4000"):
        hook.download(key, tmp_path / "out")
    with pytest.raises(EnvelopeFormatError, match="truncated"):
        hook.inspect(key)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ names are bound; copy re-binds
@pytest.mark.parametrize("size", SIZES)
def test_object_copied_by_plain_oss2_to_another_key_does_not_verify(
    make_hook: Callable[..., EncryptedOSSHook], size: int
) -> None:
    hook = make_hook()
    data = os.urandom(size)
    hook.upload(io.BytesIO(data), f"secure/bound/{size}")
    hook.get_bucket().copy_object(BUCKET, f"secure/bound/{size}", f"secure/replayed/{size}")
    with pytest.raises(IntegrityError, match="another bucket/key"):
        hook.read(f"secure/replayed/{size}")
    assert hook.inspect(f"secure/bound/{size}").integrity_bound


@pytest.mark.parametrize("size", SIZES)
def test_hook_copy_rebinds_the_tag_keeping_envelope_metadata_and_content_type(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, size: int
) -> None:
    hook = make_hook()
    data = os.urandom(size)
    src, dst = f"secure/copy-src/{size}", f"secure/copy-dst/{size}"
    hook.upload(io.BytesIO(data), src, metadata={"owner": "team-a"}, content_type="text/csv")
    hook.copy(src, dst)
    got = hook.read(dst)
    assert got == data and got.integrity == "verified"
    _, src_meta = _stored(oss_env, src)
    _, dst_meta = _stored(oss_env, dst)
    src_cse = {k: v for k, v in src_meta.items() if k.startswith(CSE_PREFIX)}
    dst_cse = {k: v for k, v in dst_meta.items() if k.startswith(CSE_PREFIX)}
    if size < PART:  # CopyObject REPLACE: every client-side-encryption header unchanged
        assert dst_cse == src_cse
    else:  # UploadPartCopy: the copy is multipart, so data-size/part-size describe its parts
        assert {k: v for k, v in dst_cse.items() if not k.endswith(("data-size", "part-size"))} == {
            k: v for k, v in src_cse.items() if not k.endswith(("data-size", "part-size"))
        }
    assert dst_meta[INTEGRITY_HEADER] != src_meta[INTEGRITY_HEADER] and dst_meta["x-oss-meta-owner"] == "team-a"
    assert hook.get_bucket().head_object(dst).headers["Content-Type"] == "text/csv"
    assert hook.read(src) == data  # the source stays valid at its own name


@pytest.mark.parametrize("size", SIZES)
def test_hook_copy_to_another_bucket_rebinds_to_that_bucket(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, size: int
) -> None:
    other = "hook-tests-copies"
    oss_env.create_bucket(other)
    hook = make_hook()
    data = os.urandom(size)
    hook.upload(io.BytesIO(data), f"secure/xbucket/{size}")
    hook.copy(f"secure/xbucket/{size}", f"secure/xbucket/{size}", dest_bucket=other)
    assert hook.read(f"secure/xbucket/{size}", bucket=other) == data
    hook.get_bucket(other).copy_object(other, f"secure/xbucket/{size}", f"secure/xbucket/{size}-plain")
    with pytest.raises(IntegrityError, match="another bucket/key"):
        hook.read(f"secure/xbucket/{size}-plain", bucket=other)


def test_hook_copy_refuses_to_launder_an_object_that_was_already_moved(
    make_hook: Callable[..., EncryptedOSSHook],
) -> None:
    hook = make_hook()
    hook.upload(io.BytesIO(b"payload"), "secure/launder/a")
    hook.get_bucket().copy_object(BUCKET, "secure/launder/a", "secure/launder/moved")
    with pytest.raises(IntegrityError, match="moved or replayed"):
        hook.copy("secure/launder/moved", "secure/launder/clean")
    assert not hook.exists("secure/launder/clean")


def test_copy_of_a_bound_object_without_a_cmk_says_what_is_missing(make_hook: Callable[..., EncryptedOSSHook]) -> None:
    make_hook().upload(io.BytesIO(b"payload"), "secure/copy-nocmk/a")
    with pytest.raises(Exception, match=r"re-bound.*cmk= or decrypt_cmks="):
        make_hook(cmk=None).copy("secure/copy-nocmk/a", "secure/copy-nocmk/b")


def test_unbound_tags_are_an_explicit_option_logged_once_per_hook(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any
) -> None:
    hook = make_hook(bind_integrity_tag=False)
    with structlog.testing.capture_logs() as events:
        first = hook.upload(io.BytesIO(b"one"), "secure/unbound/a")
        hook.upload(io.BytesIO(b"two"), "secure/unbound/b")
    warnings = [e for e in events if e["log_level"] == "warning" and "bind_integrity_tag=False" in str(e["event"])]
    assert len(warnings) == 1 and first.integrity == "tagged-unbound"
    _, meta = _stored(oss_env, "secure/unbound/a")
    assert ";bind=" not in meta[INTEGRITY_HEADER]
    hook.get_bucket().copy_object(BUCKET, "secure/unbound/a", "secure/unbound/elsewhere")
    assert make_hook().read("secure/unbound/elsewhere") == b"one"


# ------------------------------------------------------------------ matdesc: exactly the user's
def test_default_objects_carry_no_matdesc_and_oss2_reads_them_with_a_plain_rsa_provider(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, rsa_ref: str
) -> None:
    """Seen: oss2 ``RsaProvider(key_pair)`` built as its docs show refused our RSA objects."""
    hook = make_hook()
    data = os.urandom(3 * PART + 5)
    hook.upload(io.BytesIO(data), "secure/matdesc/none")
    _, meta = _stored(oss_env, "secure/matdesc/none")
    assert MATDESC_HEADER not in meta and meta[CMK_HEADER].startswith("rsa-sha256:")
    assert _crypto_bucket(hook, rsa_ref).get_object("secure/matdesc/none").read() == data


def test_configured_matdesc_is_written_compact_and_read_by_oss2_with_the_same_mat_desc(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, rsa_ref: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    hook = make_hook(matdesc={"team": "finance", "env": "prod"})
    data = os.urandom(2000)
    hook.upload(io.BytesIO(data), "secure/matdesc/hook")
    _, meta = _stored(oss_env, "secure/matdesc/hook")
    assert meta[MATDESC_HEADER] == '{"env":"prod","team":"finance"}'
    crypto = _crypto_bucket(hook, rsa_ref, mat_desc={"team": "finance", "env": "prod"})
    assert crypto.get_object("secure/matdesc/hook").read() == data
    assert hook.read("secure/matdesc/hook") == data  # reads never need the matdesc
    monkeypatch.setenv("AIRFLOW_CONN_OSS_MATDESC", oss_conn(oss_env, matdesc=json.dumps({"team": "ops"})))
    make_hook("oss_matdesc").upload(io.BytesIO(data), "secure/matdesc/extra")
    make_hook("oss_matdesc", matdesc={}).upload(io.BytesIO(data), "secure/matdesc/overridden")
    assert _stored(oss_env, "secure/matdesc/extra")[1][MATDESC_HEADER] == '{"team":"ops"}'
    assert MATDESC_HEADER not in _stored(oss_env, "secure/matdesc/overridden")[1]


def test_matdesc_values_must_be_strings(make_hook: Callable[..., EncryptedOSSHook]) -> None:
    with pytest.raises(EnvelopeFormatError, match="str -> str"):
        EncryptedOSSHook("oss_v4", matdesc={"n": 1})  # type: ignore[dict-item]


# ------------------------------------------------------------------ inspect
def test_inspect_names_the_cmk_and_version_from_our_headers_and_falls_back_to_the_transit_prefix(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, transit_ref: Any
) -> None:
    ref = transit_ref("secure-inspect")
    hook = make_hook(cmk=ref)
    hook.upload(io.BytesIO(b"x" * 100), "secure/inspect")
    info = hook.inspect("secure/inspect")
    assert info.cmk == "vault-transit:transit/secure-inspect" and info.key_version == "v1" and info.matdesc == {}
    _, meta = _stored(oss_env, "secure/inspect")
    meta.pop(CMK_VERSION_HEADER, None)
    _set_metadata(oss_env, "secure/inspect", meta)
    assert hook.inspect("secure/inspect").key_version == "v1"  # from the vault:v1: prefix


# ------------------------------------------------------------------ objects of earlier versions


@pytest.mark.parametrize("size", SIZES)
def test_objects_of_earlier_versions_read_and_rewrap_under_require(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, rsa_ref: str, other_rsa_ref: str, size: int
) -> None:
    """Identity in the matdesc (``osscse-cmk``) and a v1 tag, written with plain oss2 ``put_object``."""
    hook = make_hook()
    data = os.urandom(size)
    scratch = f"secure/legacy-src/{size}"
    hook.upload(io.BytesIO(data), scratch)
    ciphertext, meta = _stored(oss_env, scratch)
    wrapped = parse_envelope(meta, object_name=scratch).wrapped
    data_key = resolve_cmk(rsa_ref).unwrap(wrapped)
    headers = {k: v for k, v in meta.items() if k.startswith(CSE_PREFIX) and not k.endswith(("data-size", "part-size"))}
    headers[MATDESC_HEADER] = json.dumps({"osscse-cmk": meta[CMK_HEADER]})  # as earlier versions wrote it
    headers[INTEGRITY_HEADER] = v1_tag(data_key.key, data_key.iv, data, 128 * 1024)
    key = f"secure/legacy/{size}"
    hook.get_bucket().put_object(key, bytes(ciphertext), headers=headers)
    got = hook.read(key)
    assert got == data and got.integrity == "verified"
    assert hook.inspect(key).cmk == meta[CMK_HEADER]
    result = make_hook(cmk=other_rsa_ref, decrypt_cmks=[rsa_ref]).rewrap(key)
    assert result.status == "rewrapped" and result.from_cmk == rsa_ref
    rewrapped = make_hook(cmk=other_rsa_ref, integrity="require").read(key)
    assert rewrapped == data and rewrapped.integrity == "verified"
    _, after = _stored(oss_env, key)
    assert MATDESC_HEADER not in after and after[INTEGRITY_HEADER].startswith("v1;")


def test_rewrapped_bound_object_still_reads_under_require(
    make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str, other_rsa_ref: str
) -> None:
    hook = make_hook()
    data = os.urandom(3 * PART + 5)
    hook.upload(io.BytesIO(data), "secure/rewrap-bound")
    assert hook.inspect("secure/rewrap-bound").integrity_bound
    assert make_hook(cmk=other_rsa_ref, decrypt_cmks=[rsa_ref]).rewrap("secure/rewrap-bound").status == "rewrapped"
    got = make_hook(cmk=other_rsa_ref).read("secure/rewrap-bound")
    assert got == data and got.integrity == "verified" and got.cmk == other_rsa_ref
