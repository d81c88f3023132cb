"""Shared fixtures for the envelope core: RSA CMKs generated once per session (generation is slow)."""

from __future__ import annotations

import pytest

from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

#: The known-answer vectors of the OSS CSE format (docs/envelope-format.md).
VECTOR_KEY = bytes.fromhex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")
VECTOR_IV = bytes.fromhex("0102030405060708000000000a0b0c0d")
VECTOR_A_PLAIN = b"Hello OSS client-side encryption! 0123456789abcdefghijklmnopqrstuvwxyz"
VECTOR_A_CIPHER = bytes.fromhex(
    "d01b808096db9183d5401a3984c15061baf737dcd5bc9f5f8a306f12984a0fd0"
    "c84e09946e7af891e5ba6623f294b3e5d21e9801acfaad0ac7195946154ca6049b79f051a19c"
)


@pytest.fixture(scope="session")
def rsa_key() -> LocalRsaKey:
    return LocalRsaKey.generate(2048, reference="rsa-test-a")


@pytest.fixture(scope="session")
def other_rsa_key() -> LocalRsaKey:
    return LocalRsaKey.generate(2048, reference="rsa-test-b")
