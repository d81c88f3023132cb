"""One retry policy for OSS requests and key-service calls: bounds, backoff, and a predicate for what
is transient. Operations here are plain functions that fail on cue (no service is needed to prove the
policy's arithmetic); the real faults are exercised through the servers in tests/transport and
tests/keys."""

from __future__ import annotations

import ast
import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

import oss2.exceptions
import pytest

from airflow_provider_osscse import retry as top
from airflow_provider_osscse.exceptions import (
    KeyServiceUnavailableError,
    TransferChecksumError,
    TransientKeyServiceError,
)
from airflow_provider_osscse.keys import retry as key_retry
from airflow_provider_osscse.retry import RetryPolicy
from airflow_provider_osscse.transport import retry as oss_retry

PACKAGE = Path(__file__).resolve().parents[1] / "airflow_provider_osscse"
#: Millisecond backoff, so the tests of attempts and predicates take no time.
FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.002)


def _failing(times: int, error: Callable[[], BaseException], result: str = "ok") -> tuple[Callable[[], str], list[int]]:
    calls: list[int] = []

    def operation() -> str:
        calls.append(1)
        if len(calls) <= times:
            raise error()
        return result

    return operation, calls


def test_the_package_defines_one_retry_policy_class_and_both_layers_use_it() -> None:
    defined = [
        path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef) and node.name == "RetryPolicy"
    ]
    assert defined == ["retry.py"]
    assert type(key_retry.DEFAULT_RETRY) is RetryPolicy and type(oss_retry.DEFAULT_RETRY) is RetryPolicy


def test_transient_errors_are_retried_until_the_operation_succeeds() -> None:
    operation, calls = _failing(2, lambda: TransientKeyServiceError("refused"))
    assert dataclasses.replace(FAST, attempts=3).call(operation) == "ok" and len(calls) == 3


def test_the_last_transient_error_propagates_unchanged_after_the_attempts() -> None:
    operation, calls = _failing(9, lambda: TransferChecksumError("corrupted in transit"))
    with pytest.raises(TransferChecksumError, match="corrupted in transit"):
        dataclasses.replace(FAST, attempts=3).call(operation)
    assert len(calls) == 3


def test_an_error_the_predicate_rejects_is_raised_at_the_first_attempt() -> None:
    operation, calls = _failing(9, lambda: ValueError("caller's problem"))
    with pytest.raises(ValueError, match="caller's problem"):
        dataclasses.replace(FAST, attempts=5).call(operation)
    assert len(calls) == 1


def test_the_predicate_decides_what_is_transient_not_the_class() -> None:
    operation, calls = _failing(1, lambda: ValueError("flaky"))
    policy = dataclasses.replace(FAST, attempts=2, transient=lambda error: isinstance(error, ValueError))
    assert policy.call(operation) == "ok" and len(calls) == 2


def test_no_sleep_starts_that_would_end_after_the_total_bound() -> None:
    operation, calls = _failing(9, lambda: TransientKeyServiceError("timeout"))
    policy = RetryPolicy(attempts=50, initial_backoff=0.05, max_backoff=0.05, max_total_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(TransientKeyServiceError):
        policy.call(operation)
    assert time.monotonic() - started < 0.2 and 2 <= len(calls) < 50


def test_backoff_doubles_up_to_the_cap_and_is_jittered_to_between_half_and_all_of_it() -> None:
    policy = RetryPolicy(initial_backoff=0.2, max_backoff=1.0)
    for attempt, full in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (9, 1.0)]:
        delays = {policy.backoff(attempt) for _ in range(50)}
        assert all(full / 2 <= d <= full for d in delays) and len(delays) > 1


def test_attempts_below_one_are_refused() -> None:
    with pytest.raises(ValueError, match="attempts must be >= 1"):
        RetryPolicy(attempts=0)


def test_each_retry_is_logged_with_the_operation_and_the_kind_of_fault(caplog: pytest.LogCaptureFixture) -> None:
    operation, _ = _failing(1, lambda: TransientKeyServiceError("cannot reach Vault (ConnectionError)"))
    with caplog.at_level(logging.WARNING, logger="airflow_provider_osscse.retry"):
        dataclasses.replace(FAST, attempts=2).call(operation, what="Vault call for CMK vault-transit://v/transit/k")
    (record,) = caplog.records
    assert record.getMessage().startswith(
        "Vault call for CMK vault-transit://v/transit/k failed (cannot reach Vault (ConnectionError)); retry 1/1 in"
    )


def test_an_unavailable_key_service_is_reported_with_service_reference_and_attempts_and_nothing_chained() -> None:
    operation, calls = _failing(9, lambda: TransientKeyServiceError("Vault answered InternalServerError"))
    policy = dataclasses.replace(key_retry.DEFAULT_RETRY, attempts=3, initial_backoff=0.001, max_backoff=0.002)
    with pytest.raises(KeyServiceUnavailableError) as info:
        key_retry.call_key_service(policy, operation, service="Vault", reference="vault-transit://v/transit/k")
    assert str(info.value) == (
        "Vault is unavailable for CMK vault-transit://v/transit/k after 3 attempt(s): "
        "Vault answered InternalServerError"
    )
    assert len(calls) == 3 and info.value.__context__ is None and info.value.__cause__ is None


def test_key_service_calls_stop_within_the_total_bound_even_with_attempts_left() -> None:
    operation, calls = _failing(9, lambda: TransientKeyServiceError("timeout"))
    policy = RetryPolicy(attempts=100, initial_backoff=0.04, max_backoff=0.04, max_total_seconds=0.1)
    with pytest.raises(KeyServiceUnavailableError, match=r"after \d attempt\(s\): timeout"):
        key_retry.call_key_service(policy, operation, service="KMS", reference="kms://k/alias/x")
    assert len(calls) < 100


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (oss2.exceptions.ServerError(500, {}, b"", {}), True),
        (oss2.exceptions.ServerError(503, {}, b"", {}), True),
        (oss2.exceptions.ServerError(429, {}, b"", {}), True),
        (oss2.exceptions.RequestError(ConnectionResetError("reset")), True),
        (oss2.exceptions.InconsistentError("crc mismatch"), True),
        (TransferChecksumError("x"), True),
        (ConnectionResetError("reset"), True),
        (oss2.exceptions.NotFound(404, {}, b"", {}), False),
        (oss2.exceptions.AccessDenied(403, {}, b"", {}), False),
        (oss2.exceptions.PreconditionFailed(412, {}, b"", {}), False),
        (TransientKeyServiceError("a key service fault is not an OSS one"), True),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value),
)
def test_oss_predicate_retries_network_5xx_throttling_and_corruption_only(
    error: BaseException, transient: bool
) -> None:
    assert oss_retry.is_transient(error) is transient


def test_oss_default_policy_retries_a_5xx_and_has_no_total_bound() -> None:
    operation, calls = _failing(2, lambda: oss2.exceptions.ServerError(503, {}, b"", {}))
    policy = dataclasses.replace(oss_retry.DEFAULT_RETRY, initial_backoff=0.001, max_backoff=0.002)
    assert policy.call(operation, what="PUT 'k'") == "ok" and len(calls) == 3
    assert oss_retry.DEFAULT_RETRY.max_total_seconds is None


def test_the_default_predicate_retries_only_the_errors_this_package_marks_transient() -> None:
    assert top.is_marked_transient(TransientKeyServiceError("x")) and top.is_marked_transient(
        TransferChecksumError("x")
    )
    assert not top.is_marked_transient(oss2.exceptions.ServerError(503, {}, b"", {}))
    assert not top.is_marked_transient(ConnectionResetError())


def test_a_fault_is_described_by_status_detail_or_type_never_by_its_text() -> None:
    secret = "plaintext-of-another-batch-item"
    assert top.describe_error(oss2.exceptions.ServerError(503, {}, secret.encode(), {})) == "HTTP 503"
    assert top.describe_error(TransientKeyServiceError("Vault answered VaultDown")) == "Vault answered VaultDown"
    assert top.describe_error(RuntimeError(secret)) == "RuntimeError"
