"""One answer for the CMK version of an object: the listing (no CMK at hand) and the Transit key agree."""

from __future__ import annotations

from airflow_provider_osscse.envelope.headers import WRAP_ALG_KMS, WRAP_ALG_VAULT_TRANSIT, Envelope
from airflow_provider_osscse.envelope.keywrap import WrappedDataKey
from airflow_provider_osscse.keys.vault_transit import transit_key_version
from airflow_provider_osscse.transport.listing import key_version_of


def _envelope(wrap_alg: str, wrapped_key: bytes, cmk_version: str | None) -> Envelope:
    return Envelope(WrappedDataKey(wrap_alg, wrapped_key, b"iv", cmk_version=cmk_version))


def test_a_transit_object_reports_its_ciphertext_version_even_when_the_header_says_otherwise() -> None:
    envelope = _envelope(WRAP_ALG_VAULT_TRANSIT, b"vault:v3:AAAA", cmk_version="v2")
    assert key_version_of(envelope) == transit_key_version(envelope.wrapped) == "v3"


def test_a_transit_value_that_is_not_a_ciphertext_falls_back_to_the_recorded_version() -> None:
    envelope = _envelope(WRAP_ALG_VAULT_TRANSIT, b"not-a-transit-ciphertext", cmk_version="v2")
    assert key_version_of(envelope) == "v2"


def test_other_cmks_report_the_recorded_version() -> None:
    assert key_version_of(_envelope(WRAP_ALG_KMS, b"blob", cmk_version="key-version-1")) == "key-version-1"
    assert key_version_of(_envelope(WRAP_ALG_KMS, b"blob", cmk_version=None)) is None
