"""The envelope as metadata: exact official headers out, strict parsing in, errors naming header and object."""

from __future__ import annotations

import base64
import json

import pytest

from airflow_provider_osscse.envelope import (
    Envelope,
    EnvelopeWriter,
    WrappedDataKey,
    is_encrypted,
    parse_envelope,
    plan_parts,
)
from airflow_provider_osscse.envelope.headers import (
    CEK_ALG_HEADER,
    KEY_HEADER,
    WRAP_ALG_HEADER,
)
from airflow_provider_osscse.envelope.matdesc import dump_matdesc, parse_matdesc
from airflow_provider_osscse.exceptions import (
    EnvelopeFormatError,
    MetadataTooLargeError,
    NotEncryptedError,
    UnsupportedAlgorithmError,
)

WRAPPED = WrappedDataKey(wrap_alg="RSA/NONE/PKCS1Padding", wrapped_key=b"K" * 256, wrapped_iv=b"I" * 256)


def _meta(**overrides: str | None) -> dict[str, str]:
    meta = Envelope(wrapped=WRAPPED).to_metadata()
    for name, value in overrides.items():
        header = "x-oss-meta-client-side-encryption-" + name.replace("_", "-")
        if value is None:
            meta.pop(header, None)
        else:
            meta[header] = value
    return meta


def test_writer_emits_the_official_headers(rsa_key) -> None:
    writer = EnvelopeWriter(rsa_key, object_name="o")
    meta = writer.metadata(plaintext_length=5, part_plan=plan_parts(300_000, 102_400))
    assert meta[CEK_ALG_HEADER] == "AES/CTR/NoPadding"
    assert meta[WRAP_ALG_HEADER] == "RSA/NONE/PKCS1Padding"
    assert len(base64.b64decode(meta[KEY_HEADER], validate=True)) == 256
    assert meta["x-oss-meta-client-side-encryption-data-size"] == "300000"
    assert meta["x-oss-meta-client-side-encryption-part-size"] == "102400"
    assert "x-oss-meta-client-side-encryption-matdesc" not in meta  # omitted when empty


def test_no_plaintext_md5_unless_the_caller_passes_one(rsa_key) -> None:
    writer = EnvelopeWriter(rsa_key, object_name="o")
    assert not any("md5" in h for h in writer.metadata(plaintext_length=3))
    assert writer.metadata(content_md5="abc==")["x-oss-meta-client-side-encryption-unencrypted-content-md5"] == "abc=="


def test_written_iv_has_bytes_8_to_11_zero(rsa_key) -> None:
    writer = EnvelopeWriter(rsa_key, object_name="o")
    assert rsa_key.unwrap(writer.wrapped).iv[8:12] == bytes(4)


def test_matdesc_is_written_compact_sorted_ascii() -> None:
    assert dump_matdesc({"z": "1", "a": "é"}) == '{"a":"\\u00e9","z":"1"}'


def test_both_matdesc_spellings_parse_to_the_same_map() -> None:
    spaced = json.dumps({"desc": "test", "b": "c"})
    compact = '{"desc":"test","b":"c"}'
    assert parse_matdesc(spaced, object_name="o") == parse_matdesc(compact, object_name="o")


def test_header_names_in_any_case_and_without_prefix_are_normalised() -> None:
    meta = {k.title(): v for k, v in _meta(matdesc='{"a": "b"}').items()}
    assert parse_envelope(meta, object_name="o").wrapped.matdesc == {"a": "b"}
    bare = {k.removeprefix("x-oss-meta-"): v for k, v in _meta().items()}
    assert parse_envelope(bare, object_name="o").wrapped.wrapped_key == b"K" * 256
    assert is_encrypted({"X-Oss-Meta-Client-Side-Encryption-Key": "x"})


@pytest.mark.parametrize("missing", ["key", "start", "cek_alg", "wrap_alg"])
def test_missing_required_header_is_named(missing: str) -> None:
    header = "x-oss-meta-client-side-encryption-" + missing.replace("_", "-")
    meta = _meta(**{missing: None})
    with pytest.raises(EnvelopeFormatError, match=f"'obj/a'.*{header}"):
        parse_envelope(meta, object_name="obj/a")


@pytest.mark.parametrize("header", ["key", "start"])
def test_non_base64_value_is_refused_naming_the_header(header: str) -> None:
    with pytest.raises(EnvelopeFormatError, match=f"encryption-{header} is not valid base64"):
        parse_envelope(_meta(**{header: "not base64!!"}), object_name="o")


def test_unknown_cek_alg_is_refused() -> None:
    with pytest.raises(UnsupportedAlgorithmError, match="cek-alg is 'AES/GCM/NoPadding'"):
        parse_envelope(_meta(cek_alg="AES/GCM/NoPadding"), object_name="o")


@pytest.mark.parametrize("value", ["12x", "-1", "1e3"])
def test_malformed_decimal_is_refused(value: str) -> None:
    with pytest.raises(EnvelopeFormatError, match="data-size is not a decimal"):
        parse_envelope(_meta(data_size=value), object_name="o")


@pytest.mark.parametrize("value", ["[1]", '{"a": 1}', "{not json"])
def test_malformed_matdesc_is_refused(value: str) -> None:
    with pytest.raises(EnvelopeFormatError, match="matdesc"):
        parse_envelope(_meta(matdesc=value), object_name="o")


def test_a_matdesc_number_over_pythons_digit_limit_is_a_format_error_not_a_crash() -> None:
    """``json.loads`` raises a plain ``ValueError`` (not ``JSONDecodeError``) for an integer of more
    than 4300 digits: still the project's format error naming the header."""
    with pytest.raises(EnvelopeFormatError, match="matdesc is not valid JSON"):
        parse_envelope(_meta(matdesc='{"a": ' + "1" * 5000 + "}"), object_name="o")


def test_plain_object_is_reported_not_encrypted() -> None:
    with pytest.raises(NotEncryptedError):
        parse_envelope({"x-oss-meta-owner": "me"}, object_name="o")


def test_oaep_wrap_alg_needs_the_legacy_opt_in() -> None:
    meta = _meta(wrap_alg="RSA/NONE/OAEPWithSHA-1AndMGF1Padding")
    with pytest.raises(UnsupportedAlgorithmError, match="allow_legacy"):
        parse_envelope(meta, object_name="o")
    assert parse_envelope(meta, object_name="o", allow_legacy=True).wrapped.wrap_alg.startswith("RSA/NONE/OAEP")


def test_legacy_headers_are_refused_without_opt_in_and_parsed_with_it() -> None:
    legacy = {
        "x-oss-meta-oss-crypto-key": base64.b64encode(b"k" * 256).decode(),
        "x-oss-meta-oss-crypto-start": base64.b64encode(b"s" * 256).decode(),
        "x-oss-meta-oss-cek-alg": "AES/GCM/NoPadding",
        "x-oss-meta-oss-wrap-alg": "rsa",
    }
    with pytest.raises(UnsupportedAlgorithmError, match="allow_legacy"):
        parse_envelope(legacy, object_name="o")
    env = parse_envelope(legacy, object_name="o", allow_legacy=True)
    assert env.legacy and env.cek_alg == "AES/CTR/NoPadding"
    assert env.wrapped.wrap_alg == "RSA/NONE/OAEPWithSHA-1AndMGF1Padding"


def test_huge_matdesc_is_caught_before_upload(rsa_key) -> None:
    from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

    big = LocalRsaKey(public_key_pem=rsa_key.public_key_pem(), matdesc={"desc": "x" * 8000})
    with pytest.raises(MetadataTooLargeError, match="8192"):
        EnvelopeWriter(big, object_name="o").metadata()


def test_huge_user_metadata_is_caught_before_upload(rsa_key) -> None:
    writer = EnvelopeWriter(rsa_key, object_name="o")
    with pytest.raises(MetadataTooLargeError, match="'o'"):
        writer.metadata(user_metadata={"note": "y" * 7500})
    assert writer.metadata(user_metadata={"Owner": "me"})["x-oss-meta-owner"] == "me"


def test_user_metadata_may_not_overwrite_encryption_headers(rsa_key) -> None:
    with pytest.raises(EnvelopeFormatError, match="collides"):
        EnvelopeWriter(rsa_key, object_name="o").metadata(user_metadata={"client-side-encryption-key": "x"})


def test_envelope_round_trips_through_metadata() -> None:
    env = Envelope(wrapped=WRAPPED, unencrypted_content_length=7, data_size=10, part_size=16)
    assert parse_envelope(env.to_metadata(), object_name="o") == env
