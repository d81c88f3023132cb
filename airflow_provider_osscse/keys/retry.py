"""Key-service calls through the provider's one :class:`~airflow_provider_osscse.retry.RetryPolicy`.

A key service that is down must fail a task quickly and clearly, not hang it: every provider calls
the service through :func:`call_key_service`, which retries only transient faults (connection
refused, timeouts, 5xx: a provider's classifier raises them as :class:`TransientKeyServiceError`) a
bounded number of times within a bounded total time, then raises
:class:`~airflow_provider_osscse.exceptions.KeyServiceUnavailableError` naming the service and
the CMK reference (never the request, which may carry key material).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from airflow_provider_osscse.exceptions import KeyServiceUnavailableError, TransientKeyServiceError
from airflow_provider_osscse.retry import RetryPolicy

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "TransientKeyServiceError", "call_key_service"]

T = TypeVar("T")

#: Key services: give up after 4 attempts and at most 10 s (about 2 s of backoff in all), retrying
#: :class:`TransientKeyServiceError` only (the policy's default predicate).
DEFAULT_RETRY = RetryPolicy(attempts=4, initial_backoff=0.25, max_backoff=2.0, max_total_seconds=10.0)


def call_key_service(retry: RetryPolicy, fn: Callable[[], T], *, service: str, reference: str) -> T:
    """Run ``fn`` under ``retry``; when transient faults outlast it, raise
    :class:`KeyServiceUnavailableError` naming ``service``, ``reference``, the attempts made and the
    last fault's ``detail`` (which the classifier built from the kind of failure only).

    Other errors propagate unchanged, for the provider to map by kind.
    """
    attempts = 0

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        return fn()

    try:
        return retry.call(counted, what=f"{service} call for CMK {reference}")
    except TransientKeyServiceError as exc:
        last = exc.detail
    # Raised outside the except block so nothing of the service's failure is even kept as __context__.
    raise KeyServiceUnavailableError(
        f"{service} is unavailable for CMK {reference} after {attempts} attempt(s): {last}"
    )
