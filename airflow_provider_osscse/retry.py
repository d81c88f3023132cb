"""The one retry policy of the provider: bounded attempts, exponential backoff with jitter, tenacity
underneath.

OSS requests (``transport/``) and key-service calls (``keys/``) fail transiently for the same
reasons (a reset connection, a timeout, a 5xx answer) and must give up the same way: after a bounded
number of attempts, and for key services within a bounded total time, so a service that is down
fails a task quickly and clearly instead of hanging it. What differs between them is only *which*
errors are worth another attempt, so that is a predicate of the policy (:attr:`RetryPolicy.transient`)
rather than a second class: ``transport.retry.DEFAULT_RETRY`` retries oss2's transient errors,
``keys.retry.DEFAULT_RETRY`` the :class:`~airflow_provider_osscse.exceptions.TransientKeyServiceError`
a provider's classifier raises.

The module sits at the top of the package, beside ``exceptions``, so both layers import it without
either importing the other; it imports no I/O library (the predicates that know oss2 live in the
transport).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

from airflow_provider_osscse.exceptions import TransferChecksumError, TransientKeyServiceError

T = TypeVar("T")
log = logging.getLogger(__name__)

#: Decides whether an error raised by the retried operation is worth another attempt.
TransientPredicate = Callable[[BaseException], bool]


def is_marked_transient(error: BaseException) -> bool:
    """The errors this package raises to mean "the same request may succeed if sent again".

    The default predicate: a key provider's classifier turns a refused connection, a timeout or a
    5xx into :class:`TransientKeyServiceError`, and the transport raises
    :class:`TransferChecksumError` for bytes corrupted in transit. Anything else is not retried.
    """
    return isinstance(error, (TransientKeyServiceError, TransferChecksumError))


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in total, sleeping ``initial_backoff * 2**n`` (capped at ``max_backoff``,
    then jittered to between half and all of it) in between, and never starting a sleep that would
    end after ``max_total_seconds`` (no total bound when ``None``).

    The jitter keeps parallel part uploads that failed together from retrying in lockstep. Only
    errors for which ``transient`` is true are retried; the last one, or the first that is not
    transient, propagates unchanged. Tests pass a tiny policy so an unreachable service fails in
    milliseconds.
    """

    attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 5.0
    max_total_seconds: float | None = None
    transient: TransientPredicate = is_marked_transient

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.initial_backoff < 0 or self.max_backoff < 0:
            raise ValueError("initial_backoff and max_backoff must be >= 0")

    def backoff(self, attempt: int) -> float:
        """The sleep after failed attempt ``attempt`` (1-based), jitter included."""
        jitter = 0.5 + random.random() / 2  # noqa: S311 - spreads retries in time, not a secret
        return min(self.max_backoff, self.initial_backoff * 2.0 ** (attempt - 1)) * jitter

    def call(self, operation: Callable[[], T], *, what: str = "request") -> T:
        """Run ``operation``, retrying transient errors within the bounds; ``what`` names it in logs."""
        stop: tenacity.stop.stop_base = tenacity.stop_after_attempt(self.attempts)
        if self.max_total_seconds is not None:
            stop = stop | tenacity.stop_before_delay(self.max_total_seconds)
        retrying = tenacity.Retrying(
            stop=stop,
            wait=lambda state: self.backoff(state.attempt_number),
            retry=tenacity.retry_if_exception(self.transient),
            before_sleep=lambda state: _log_retry(state, what, self.attempts),
            reraise=True,
        )
        return retrying(operation)


def _log_retry(state: tenacity.RetryCallState, what: str, attempts: int) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    log.warning(
        "%s failed (%s); retry %d/%d in %.1fs",
        what,
        describe_error(error),
        state.attempt_number,
        attempts - 1,
        state.upcoming_sleep,
    )


def describe_error(error: BaseException | None) -> str:
    """A short, secret-free name for a failed attempt: the HTTP status and code of a service error
    (oss2's ``status``/``code``), a classifier's ``detail``, or else the exception type only.

    Never ``str(error)``: a service's error body may quote the request, which can carry key material.
    """
    status = getattr(error, "status", None)
    if isinstance(status, int):
        return f"HTTP {status} {getattr(error, 'code', None) or ''}".strip()
    detail = getattr(error, "detail", None)
    if isinstance(detail, str) and detail:
        return detail
    return type(error).__name__
