"""Ranged reads and multipart parts reproduce exactly the bytes of one continuous encryption."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_osscse.envelope import DataKey, EnvelopeWriter, plan_parts, plan_range
from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.multipart import MAX_PART_COUNT, MIN_PART_SIZE
from airflow_provider_osscse.envelope.ranges import RangePlan
from airflow_provider_osscse.exceptions import InvalidRangeError, PartPlanError, RangeNotSatisfiableError
from tests.envelope.conftest import VECTOR_KEY

CARRY_IVS = st.sampled_from(
    [b"\x01" * 8 + b"\xff" * 8, b"\x01" * 8 + b"\x00\x00\x00\x00\xff\xff\xff\xf0", os.urandom(16)]
)


def _read_range(ck: DataKey, ciphertext: bytes, plan: RangePlan) -> bytes:
    end = len(ciphertext) if plan.request_end is None else plan.request_end + 1
    plain = CtrCipher(ck.key, ck.iv, plan.counter_offset).update(ciphertext[plan.request_start : end])
    plain = plain[plan.discard :]
    return plain if plan.length is None else plain[: plan.length]


def test_closed_range_is_aligned_down_and_trimmed() -> None:
    plan = plan_range("bytes=20-40", 100)
    assert (plan.request_start, plan.request_end, plan.discard, plan.length) == (16, 40, 4, 21)
    assert plan.http_range == "bytes=16-40"


def test_open_range_without_size_reads_to_end() -> None:
    plan = plan_range("33-")
    assert (plan.request_start, plan.request_end, plan.discard, plan.length) == (32, None, 1, None)


def test_suffix_range_returns_last_n_bytes() -> None:
    plan = plan_range("bytes=-10", 100)
    assert (plan.start, plan.end, plan.request_start, plan.discard, plan.length) == (90, 99, 80, 10, 10)


def test_suffix_longer_than_object_returns_whole_object() -> None:
    plan = plan_range("-500", 100)
    assert (plan.start, plan.end, plan.length) == (0, 99, 100)


def test_suffix_range_without_object_size_is_refused() -> None:
    with pytest.raises(InvalidRangeError, match="needs the object size"):
        plan_range("-10")


@pytest.mark.parametrize("spec", ["bytes=5-2", "x-", "bytes=-", "", "1-2-3", "bytes=a-b"])
def test_malformed_range_is_refused(spec: str) -> None:
    with pytest.raises(InvalidRangeError):
        plan_range(spec, 100)


@pytest.mark.parametrize("spec", ["100-", "200-300", "-0"])
def test_unsatisfiable_range_is_refused(spec: str) -> None:
    with pytest.raises(RangeNotSatisfiableError):
        plan_range(spec, 100)


def test_end_past_object_is_clamped() -> None:
    assert plan_range("90-1000", 100).length == 10


@settings(max_examples=80, deadline=None)
@given(data=st.data(), size=st.integers(min_value=1, max_value=600), iv=CARRY_IVS)
def test_any_range_including_suffix_equals_slice_of_single_stream(data: st.DataObject, size: int, iv: bytes) -> None:
    ck = DataKey(key=VECTOR_KEY, iv=iv)
    plain = os.urandom(size)
    cipher = CtrCipher(ck.key, ck.iv).update(plain)
    kind = data.draw(st.sampled_from(["closed", "open", "suffix"]))
    if kind == "suffix":
        n = data.draw(st.integers(min_value=1, max_value=size + 50))
        spec, expected = f"bytes=-{n}", plain[-n:]
    else:
        start = data.draw(st.integers(min_value=0, max_value=size - 1))
        if kind == "open":
            spec, expected = f"bytes={start}-", plain[start:]
        else:
            end = data.draw(st.integers(min_value=start, max_value=size + 50))
            spec, expected = f"bytes={start}-{end}", plain[start : end + 1]
    assert _read_range(ck, cipher, plan_range(spec, size)) == expected


def test_part_plan_keeps_a_valid_requested_size() -> None:
    plan = plan_parts(1_000_000, 204_800)
    assert (plan.part_size, plan.part_count) == (204_800, 5)
    assert [p.size for p in plan.parts()] == [204_800] * 4 + [1_000_000 - 4 * 204_800]


def test_part_size_is_rounded_up_to_16_and_minimum() -> None:
    assert plan_parts(10**6, 1000).part_size == MIN_PART_SIZE
    assert plan_parts(10**7, 200_001).part_size == 200_016


def test_huge_object_grows_part_size_to_fit_10000_parts() -> None:
    total = 2 * 1024**4
    plan = plan_parts(total, MIN_PART_SIZE)
    assert plan.part_count <= MAX_PART_COUNT and plan.part_size % 16 == 0
    assert plan.part_size * plan.part_count >= total


def test_object_beyond_10000_max_parts_is_refused() -> None:
    with pytest.raises(PartPlanError):
        plan_parts(10_001 * 5 * 1024**3)


def test_part_with_wrong_length_is_refused(rsa_key) -> None:
    writer = EnvelopeWriter(rsa_key, object_name="o")
    plan = plan_parts(300_000, MIN_PART_SIZE)
    with pytest.raises(PartPlanError, match="part 1 must be"):
        writer.encrypt_part(plan, 1, b"short")


@settings(max_examples=25, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=5 * MIN_PART_SIZE),
    part_blocks=st.integers(min_value=MIN_PART_SIZE // 16, max_value=MIN_PART_SIZE // 16 + 40),
    iv=CARRY_IVS,
    order_seed=st.randoms(use_true_random=False),
)
def test_parts_in_any_order_concatenate_to_single_stream(
    rsa_key, total: int, part_blocks: int, iv: bytes, order_seed
) -> None:
    ck = DataKey(key=VECTOR_KEY, iv=iv)
    writer = EnvelopeWriter(rsa_key, object_name="o", data_key=ck)
    plain = os.urandom(total)
    plan = plan_parts(total, part_blocks * 16)
    parts = list(plan.parts())
    order_seed.shuffle(parts)
    out = {p.number: writer.encrypt_part(plan, p.number, plain[p.offset : p.offset + p.size]) for p in parts}
    assert b"".join(out[n] for n in sorted(out)) == CtrCipher(ck.key, ck.iv).update(plain)
