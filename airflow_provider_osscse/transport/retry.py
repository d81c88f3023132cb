"""Bounded retries with exponential backoff for transient OSS failures.

Transient: connection resets, timeouts (oss2 ``RequestError``), HTTP 5xx and 429 throttling, and
bytes corrupted in transit (a part whose ETag is not the MD5 of what was sent,
:class:`TransferChecksumError`, or oss2's CRC64 mismatch, ``InconsistentError``): resending the same
bytes is the remedy for all of them. Everything else (403, 404, 400, precondition failures) is the caller's problem and is raised at once.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import oss2.exceptions

from airflow_provider_osscse.envelope.errors import OSSCSEError

T = TypeVar("T")
log = logging.getLogger(__name__)


class TransferChecksumError(OSSCSEError):
    """What OSS stored differs from what was sent (its ETag is not the MD5 of the bytes sent).

    A corrupted transfer: transient, so the request is retried within the :class:`RetryPolicy`.
    """


def is_transient(error: BaseException) -> bool:
    """Whether retrying the same request could succeed."""
    if isinstance(error, (TransferChecksumError, oss2.exceptions.InconsistentError)):
        return True
    if isinstance(error, oss2.exceptions.RequestError):
        return True
    if isinstance(error, oss2.exceptions.OssError):
        return error.status >= 500 or error.status == 429
    return isinstance(error, (ConnectionError, TimeoutError))


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in total, sleeping ``base_delay * 2**n`` (capped, jittered) in between."""

    attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0

    def call(self, operation: Callable[[], T], *, what: str = "request") -> T:
        """Run ``operation``, retrying transient errors; the last error propagates unchanged."""
        for attempt in range(1, self.attempts + 1):
            try:
                return operation()
            except Exception as error:  # noqa: BLE001 - filtered by is_transient
                if attempt >= self.attempts or not is_transient(error):
                    raise
                delay = min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
                log.warning("%s failed (%s); retry %d/%d in %.1fs", what, _short(error), attempt, self.attempts - 1, delay)
                time.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def _short(error: BaseException) -> str:
    if isinstance(error, oss2.exceptions.OssError):
        return f"HTTP {error.status} {error.code or ''}".strip()
    return type(error).__name__
