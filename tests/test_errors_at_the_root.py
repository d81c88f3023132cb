"""Errors at the root: one flat module, one root type, one type per condition, the object an attribute.

These run without services: the envelope core and the RSA file CMK raise the errors for real (a
tampered object, a wrong key, a malformed header, an unusable PEM); nothing is mocked.
"""

from __future__ import annotations

import inspect
import pickle
from pathlib import Path

import pytest

from airflow_provider_osscse import exceptions
from airflow_provider_osscse.envelope.headers import CMK_HEADER, KEY_HEADER, parse_envelope
from airflow_provider_osscse.envelope.reader import EnvelopeReader
from airflow_provider_osscse.envelope.writer import encrypt_object
from airflow_provider_osscse.exceptions import (
    CmkReferenceError,
    EnvelopeFormatError,
    IntegrityError,
    InvalidKeyMaterialError,
    KeyUnwrapError,
    OSSCSEError,
)
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.rsa_file import load_rsa_file_key

NAME = "finance/2026/orders.csv"


@pytest.fixture(scope="module")
def cmk() -> LocalRsaKey:
    return LocalRsaKey.generate(2048, reference="rsa-root-a")


@pytest.fixture(scope="module")
def stored(cmk: LocalRsaKey) -> tuple[dict[str, str], bytes]:
    obj = encrypt_object(b"id,amount\n1,10\n" * 400, cmk, object_name=NAME)
    return obj.metadata, b"".join(obj.chunks)


def test_every_error_type_lives_in_one_module_under_one_root() -> None:
    defined = {
        name
        for name, value in vars(exceptions).items()
        if inspect.isclass(value) and issubclass(value, BaseException) and value.__module__ == exceptions.__name__
    }
    assert defined == set(exceptions.__all__)
    assert all(issubclass(getattr(exceptions, name), OSSCSEError) for name in defined)


def test_a_tampered_object_names_the_object_by_attribute_and_once_in_the_message(
    cmk: LocalRsaKey, stored: tuple[dict[str, str], bytes]
) -> None:
    metadata, ciphertext = stored
    altered = bytes([ciphertext[0] ^ 1]) + ciphertext[1:]
    reader = EnvelopeReader(metadata, cmk, object_name=NAME)
    with pytest.raises(IntegrityError) as caught:
        b"".join(reader.decrypt_chunks(altered))
    error = caught.value
    assert error.object_name == NAME
    assert str(error).startswith(f"object {NAME!r}: integrity tag mismatch")
    assert str(error).count(NAME) == 1
    assert error.message.startswith("integrity tag mismatch")  # the bare text, for callers that add their own


def test_an_unwrap_failure_gains_the_object_name_without_losing_its_own_words(
    stored: tuple[dict[str, str], bytes],
) -> None:
    metadata = dict(stored[0])
    del metadata[CMK_HEADER]  # as an official SDK writes it: no identity, so the unwrap itself must fail
    stranger = LocalRsaKey.generate(2048, reference="stranger")
    with pytest.raises(KeyUnwrapError) as caught:
        EnvelopeReader(metadata, stranger, object_name=NAME)
    assert caught.value.object_name == NAME
    assert str(caught.value).startswith(f"object {NAME!r}: RSA CMK 'stranger' could not unwrap the data key")


def test_a_header_error_survives_pickling_with_its_object_name(stored: tuple[dict[str, str], bytes]) -> None:
    metadata = dict(stored[0])
    metadata[KEY_HEADER] = "not base64 at all!"
    with pytest.raises(EnvelopeFormatError) as caught:
        parse_envelope(metadata, object_name=NAME)
    copy = pickle.loads(pickle.dumps(caught.value))  # errors cross process boundaries (triggers, pools)
    assert type(copy) is EnvelopeFormatError
    assert copy.object_name == NAME and str(copy) == str(caught.value)
    assert str(copy) == f"object {NAME!r}: header {KEY_HEADER} is not valid base64"


def test_an_object_name_already_attached_is_kept() -> None:
    error = IntegrityError("integrity tag mismatch", object_name="a").for_object("b")
    assert error.object_name == "a" and str(error) == "object 'a': integrity tag mismatch"
    assert str(IntegrityError("no object")) == "no object"


@pytest.mark.parametrize(
    ("pem", "says"),
    [
        (b"-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n", "not an unencrypted RSA PEM"),
        (b"no pem here", "no RSA key found"),
    ],
)
def test_an_unusable_rsa_pem_is_one_error_type_from_a_file_and_from_bytes(
    tmp_path: Path, pem: bytes, says: str
) -> None:
    path = tmp_path / "cmk.pem"
    path.write_bytes(pem)
    with pytest.raises(InvalidKeyMaterialError, match=says) as from_file:
        load_rsa_file_key(str(path))
    assert isinstance(from_file.value, CmkReferenceError)
    if b"BEGIN" in pem:
        with pytest.raises(InvalidKeyMaterialError):
            LocalRsaKey(private_key_pem=pem)


def test_a_public_half_of_another_pair_is_the_same_error_type(tmp_path: Path) -> None:
    a, b = LocalRsaKey.generate(2048), LocalRsaKey.generate(2048)
    path = tmp_path / "mixed.pem"
    path.write_bytes(a.private_key_pem() + b.public_key_pem())
    with pytest.raises(InvalidKeyMaterialError, match="does not belong"):
        load_rsa_file_key(str(path))
    with pytest.raises(InvalidKeyMaterialError, match="does not belong"):
        LocalRsaKey(private_key_pem=a.private_key_pem(), public_key_pem=b.public_key_pem())
