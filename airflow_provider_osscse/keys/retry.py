"""Bounded retries with exponential backoff for key-service calls.

A key service that is down must fail a task quickly and clearly, not hang it: every provider calls
the service through :meth:`RetryPolicy.call`, which retries only transient faults (connection refused,
timeouts, 5xx) a bounded number of times within a bounded total time, then raises
:class:`~airflow_provider_osscse.envelope.errors.KeyServiceUnavailableError` naming the service and
the CMK reference (never the request, which may carry key material).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from airflow_provider_osscse.envelope.errors import KeyServiceUnavailableError

T = TypeVar("T")


class TransientKeyServiceError(Exception):
    """Internal marker: the call failed in a way worth retrying (raised by a provider's classifier)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient key-service failure.

    The defaults give up after about 3 s (4 attempts). Tests pass a tiny policy so an unreachable
    service fails in milliseconds.
    """

    attempts: int = 4
    initial_backoff: float = 0.25
    max_backoff: float = 2.0
    max_total_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be >= 1")

    def call(self, fn: Callable[[], T], *, service: str, reference: str) -> T:
        """Run ``fn``; on :class:`TransientKeyServiceError` back off and retry within the bounds."""
        deadline = time.monotonic() + self.max_total_seconds
        delay = self.initial_backoff
        last = ""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except TransientKeyServiceError as exc:
                last = exc.detail
            if attempt == self.attempts or time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, self.max_backoff)
        raise KeyServiceUnavailableError(
            f"{service} is unavailable for CMK {reference} after {attempt} attempt(s): {last}"
        )


DEFAULT_RETRY = RetryPolicy()
