"""Which OSS failures are transient, and the transport's default :class:`RetryPolicy`.

Transient: connection resets, timeouts (oss2 ``RequestError``), HTTP 5xx and 429 throttling, and
bytes corrupted in transit (a part whose ETag is not the MD5 of what was sent or a body whose CRC-64
is not OSS's, :class:`TransferChecksumError`; a body OSS refused for its ``Content-MD5``,
``InvalidDigest``; oss2's CRC64 mismatch, ``InconsistentError``): resending the same bytes is the
remedy for all of them. Everything else (403, 404, 400, precondition failures) is the
caller's problem and is raised at once. The policy itself (bounds, backoff, tenacity) is the
provider's one :class:`~airflow_provider_osscse.retry.RetryPolicy`; this module only supplies its
predicate for OSS.
"""

from __future__ import annotations

import oss2.exceptions

from airflow_provider_osscse.exceptions import TransferChecksumError
from airflow_provider_osscse.retry import RetryPolicy, is_marked_transient

__all__ = ["DEFAULT_RETRY", "RetryPolicy", "TransferChecksumError", "is_transient"]


def is_transient(error: BaseException) -> bool:
    """Whether sending the same OSS request again could succeed."""
    if is_marked_transient(error) or isinstance(
        error, (oss2.exceptions.InconsistentError, oss2.exceptions.InvalidDigest)
    ):
        return True
    if isinstance(error, oss2.exceptions.RequestError):
        return True
    if isinstance(error, oss2.exceptions.OssError):
        status: int = error.status
        return status >= 500 or status == 429
    return isinstance(error, (ConnectionError, TimeoutError))


#: OSS requests: 4 attempts, 0.2 s doubling up to 5 s (jittered), no total bound (a part upload may
#: itself take minutes). Build a variant with ``dataclasses.replace(DEFAULT_RETRY, attempts=...)`` so
#: it keeps this predicate.
DEFAULT_RETRY = RetryPolicy(attempts=4, initial_backoff=0.2, max_backoff=5.0, transient=is_transient)
