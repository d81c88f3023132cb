"""AES-256-CTR and counter arithmetic against the format's known-answer vectors."""

from __future__ import annotations

import hashlib
import itertools

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_osscse.envelope import DataKey
from airflow_provider_osscse.envelope.aes_ctr import CtrCipher, counter_block, iv_from_legacy_counter
from airflow_provider_osscse.envelope.streams import transform_chunks
from tests.envelope.conftest import VECTOR_A_CIPHER, VECTOR_A_PLAIN, VECTOR_IV, VECTOR_KEY

VECTOR_B_PLAIN = bytes(range(256)) * 2


def test_vector_a_encrypts_to_known_ciphertext() -> None:
    assert CtrCipher(VECTOR_KEY, VECTOR_IV).update(VECTOR_A_PLAIN) == VECTOR_A_CIPHER


def test_vector_b_matches_known_slices_and_digest() -> None:
    ct = CtrCipher(VECTOR_KEY, VECTOR_IV).update(VECTOR_B_PLAIN)
    assert ct[:32].hex() == "987feeeffdfed8d78e69735ee1a9301a87954caba489ec26f15b0c79f03e7ea1"
    assert ct[480:].hex() == "be97f40581c4a7f015c92be218c022cc133b9512e105e074df8a1128b87b27e5"
    assert hashlib.sha256(ct).hexdigest() == "4cdbe12930eda37e29f63da1439e9d5b983db1d52eca735eedf153fc88d39e8a"


def test_vector_b_in_128_byte_parts_equals_one_stream() -> None:
    whole = CtrCipher(VECTOR_KEY, VECTOR_IV).update(VECTOR_B_PLAIN)
    parts = b"".join(
        CtrCipher(VECTOR_KEY, VECTOR_IV, off).update(VECTOR_B_PLAIN[off : off + 128]) for off in range(0, 512, 128)
    )
    assert parts == whole


def test_counter_advances_as_documented() -> None:
    assert counter_block(VECTOR_IV, 16).hex() == "0102030405060708000000000a0b0c0e"
    assert counter_block(VECTOR_IV, 102400).hex() == "0102030405060708000000000a0b250d"
    assert counter_block(VECTOR_IV, 15) == VECTOR_IV


def test_counter_carries_over_all_128_bits() -> None:
    iv = bytes.fromhex("00000000000000ffffffffffffffffff")
    assert counter_block(iv, 16).hex() == "00000000000001000000000000000000"
    assert counter_block(b"\xff" * 16, 16) == bytes(16)


def test_cryptography_ctr_carries_like_the_sdks() -> None:
    iv = bytes.fromhex("0102030405060708ffffffffffffffff")
    ours = CtrCipher(VECTOR_KEY, iv).update(bytes(64))
    blocks = b"".join(
        Cipher(algorithms.AES(VECTOR_KEY), modes.ECB()).encryptor().update(counter_block(iv, 16 * i)) for i in range(4)
    )
    assert ours == blocks


def test_unaligned_offset_skips_into_the_block() -> None:
    whole = CtrCipher(VECTOR_KEY, VECTOR_IV).update(VECTOR_A_PLAIN)
    assert CtrCipher(VECTOR_KEY, VECTOR_IV, 21).update(VECTOR_A_PLAIN[21:]) == whole[21:]


def test_update_into_reuses_a_preallocated_buffer() -> None:
    out = bytearray(len(VECTOR_A_PLAIN) + 15)
    n = CtrCipher(VECTOR_KEY, VECTOR_IV).update_into(VECTOR_A_PLAIN, out)
    assert bytes(out[:n]) == VECTOR_A_CIPHER


def test_legacy_decimal_counter_becomes_a_counter_block() -> None:
    assert iv_from_legacy_counter(b"7") == (7).to_bytes(16, "big")


@settings(max_examples=60, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=700),
    cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=8),
    low=st.sampled_from([b"\xff" * 8, b"\xff" * 7 + b"\xf0", b"\x00" * 8]),
)
def test_any_chunking_equals_single_stream_across_carries(data: bytes, cuts: list[int], low: bytes) -> None:
    ck = DataKey(key=VECTOR_KEY, iv=b"\x01" * 8 + low)
    expected = CtrCipher(ck.key, ck.iv).update(data)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    chunks = [data[a:b] for a, b in itertools.pairwise(bounds)]
    assert b"".join(transform_chunks(iter(chunks), ck)) == expected
