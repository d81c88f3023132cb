"""OSS failures in one line: oss2's errors become this package's, naming the bucket, the object and
the endpoint, and saying the likely fix.

oss2 raises its errors with OSS's whole answer as a dict (``NoSuchBucket: {'status': 404, ...}``),
and for a refused signature that dict quotes the ``StringToSign``. Inside the transport oss2's errors
stay as they are: the retry predicate (``transport.retry.is_transient``) and the handling of
conditional requests (``PreconditionFailed`` -> :class:`ObjectChangedError`) judge oss2's types. At
the edge of every public operation (:func:`translated`, :func:`translated_iter`) they are translated
once, with ``raise ... from``: the original stays the ``__cause__`` (the sensor's trigger walks it
to tell a transient outage from a refusal) but never reaches the message, which is built from OSS's
status, error code and request id only, plus what this package knows (bucket, key, endpoint, the
connection's name, the operation). Never OSS's message text or request details.

Types: ``NoSuchBucket`` -> :class:`BucketNotFoundError` (an :class:`ObjectNotFoundError`), other
404s -> :class:`ObjectNotFoundError`, a refused identity -> :class:`OssCredentialsError`,
``AccessDenied`` -> :class:`OssAccessDeniedError`, unreachable / 5xx / 429 after the retries ->
:class:`OssUnavailableError`, 412 -> :class:`ObjectChangedError`, a CRC mismatch ->
:class:`TransferChecksumError`, anything else -> :class:`OssServiceError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar, cast

import oss2.exceptions

from airflow_provider_osscse.exceptions import (
    BucketNotFoundError,
    ObjectChangedError,
    ObjectNotFoundError,
    OssAccessDeniedError,
    OssCredentialsError,
    OSSCSEError,
    OssServiceError,
    OssUnavailableError,
    TransferChecksumError,
)
from airflow_provider_osscse.transport.results import oss_uri

P = ParamSpec("P")
T = TypeVar("T")

#: The RAM action each operation needs, said in an ``AccessDenied`` message.
_RAM_ACTIONS = {
    "put": "oss:PutObject",
    "download": "oss:GetObject",
    "stream": "oss:GetObject",
    "read": "oss:GetObject",
    "head": "oss:GetObject",
    "inspect": "oss:GetObject",
    "exists": "oss:GetObject",
    "list_keys": "oss:ListObjects",
    "delete": "oss:DeleteObject",
    "copy": "oss:GetObject on the source and oss:PutObject on the destination",
    "rewrap": "oss:GetObject and oss:PutObject",
    "list uploads": "oss:ListMultipartUploads and oss:ListParts",
    "abort upload": "oss:AbortMultipartUpload",
}
#: Codes of a refused identity, and what to check for each (of the connection named).
_CREDENTIALS = {
    "SignatureDoesNotMatch": "check the access key secret of {conn} (for signature v4, also its region)",
    "InvalidAccessKeyId": "check the access_key_id of {conn}, and that {endpoint} is its account's endpoint",
    "InvalidSecurityToken": "renew the STS security_token of {conn}, or use a long-term access key",
    "SecurityTokenExpired": "renew the STS security_token of {conn}, or use a long-term access key",
}
#: Words of a network failure that say what happened (matched in the lower-cased exception text,
#: which itself is never shown: it quotes the request's URL).
_NETWORK = (
    ("connection refused", "connection refused"),
    ("name or service not known", "host not found"),
    ("nodename nor servname", "host not found"),
    ("failed to resolve", "host not found"),
    ("name resolution", "host not found"),
    ("getaddrinfo", "host not found"),
    ("timed out", "timed out"),
    ("timeout", "timed out"),
    ("connection reset", "connection reset"),
    ("connection aborted", "connection reset"),
    ("certificate", "TLS certificate not accepted"),
    ("ssl", "TLS failure"),
)


@dataclass(frozen=True)
class OssSite:
    """Where a failed operation went: what the messages name."""

    operation: str
    bucket: str | None = None
    key: str | None = None
    endpoint: str | None = None
    #: The Airflow connection the credentials came from (``None``: not known here).
    connection: str | None = None
    #: The bucket was the connection's default (its ``schema``), not given by the caller.
    default_bucket: bool = False

    @property
    def what(self) -> str:
        if self.bucket and self.key is not None:
            return oss_uri(self.bucket, self.key)
        return f"bucket {self.bucket!r}" if self.bucket else "the request"

    @property
    def conn(self) -> str:
        return f"connection {self.connection!r}" if self.connection else "the OSS connection"

    @property
    def at(self) -> str:
        return f" at {self.endpoint}" if self.endpoint else ""


def translate_oss_error(error: BaseException, site: OssSite) -> OSSCSEError | None:
    """This package's error for an oss2 error at ``site``; ``None`` for anything else (left as it is).

    Raise it ``from`` the original. Public for the code that calls oss2 outside the transport's
    operations (a hook's connection test, an operator reading a plain object).
    """
    if not isinstance(error, oss2.exceptions.OssError):
        return None
    return _translate(error, site)


def _translate(error: oss2.exceptions.OssError, site: OssSite) -> OSSCSEError:
    status = error.status if isinstance(error.status, int) else None
    code = str(getattr(error, "code", "") or "")
    details = error.details if isinstance(error.details, dict) else {}
    bucket = str(details.get("BucketName") or site.bucket or "") or None
    facts: dict[str, Any] = {
        "status": status,
        "code": code or None,
        "request_id": str(error.request_id or "") or None,
        "bucket": bucket,
        "endpoint": site.endpoint,
    }
    answer = f"{code}, HTTP {status}" if code else f"HTTP {status}"
    if isinstance(error, oss2.exceptions.RequestError):
        reason = _network_reason(error)
        return OssUnavailableError(
            f"cannot reach OSS{site.at} for {site.what} ({reason}, after retries): check the endpoint and "
            f"region of {site.conn}, and the network",
            **facts,
        )
    if isinstance(error, oss2.exceptions.InconsistentError):
        return TransferChecksumError(
            f"{site.what}: the bytes were corrupted in transit (CRC64 mismatch) on every retry; retry the transfer"
        )
    if code == "NoSuchBucket":
        name = f"the schema (default bucket) of {site.conn}" if site.default_bucket else "the bucket name"
        fix = f"create the bucket, or fix {name}"
        return BucketNotFoundError(f"bucket {bucket!r} does not exist{site.at} ({answer}): {fix}", **facts)
    if status == 404:
        return ObjectNotFoundError(f"{site.what} does not exist")
    if status == 412:
        return ObjectChangedError(
            f"{site.what} changed during the operation (its ETag no longer matches); nothing of the new "
            f"version was used; run it again"
        )
    if code in _CREDENTIALS:
        fix = _CREDENTIALS[code].format(conn=site.conn, endpoint=site.endpoint or "the endpoint")
        return OssCredentialsError(f"OSS{site.at} refused the credentials for {site.what} ({answer}): {fix}", **facts)
    if code == "AccessDenied":
        action = _RAM_ACTIONS.get(site.operation, f"the {site.operation} action")
        return OssAccessDeniedError(
            f"OSS{site.at} denied {site.operation} of {site.what} to the access key of {site.conn} ({answer}): "
            f"allow {action} on bucket {bucket!r} in its RAM policy (or the bucket policy)",
            **facts,
        )
    if status is not None and (status >= 500 or status == 429):
        return OssUnavailableError(
            f"OSS{site.at} kept failing for {site.what} ({answer}, after retries): the service is failing or "
            f"throttling; try again later (request id {facts['request_id']})",
            **facts,
        )
    return OssServiceError(
        f"OSS{site.at} refused {site.operation} of {site.what} ({answer}, request id {facts['request_id']}): "
        f"see the OSS error code reference for {code or 'this status'}",
        **facts,
    )


def _network_reason(error: oss2.exceptions.RequestError) -> str:
    """What kind of network failure, in a few fixed words (never the exception's text itself)."""
    text = repr(getattr(error, "exception", error)).lower()
    return next((words for needle, words in _NETWORK if needle in text), "network error")


class SiteOf(Protocol):
    """What the decorated operations belong to: it tells where an operation went (``TransferBase``)."""

    def oss_site(self, operation: str, key: str | None, bucket: str | None) -> OssSite: ...


def _site(owner: SiteOf, operation: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> OssSite:
    """By the transport's convention: the object key (or prefix) first, ``bucket=`` (``source_bucket=``)."""
    key = args[0] if args and isinstance(args[0], str) else None
    bucket = kwargs.get("bucket", kwargs.get("source_bucket"))
    return owner.oss_site(operation, key, bucket)


def translated(operation: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a public operation of the transport: an oss2 error leaving it is translated (see the
    module docstring); this package's errors pass unchanged, so nested operations translate once."""

    def decorate(method: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(method)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            try:
                return method(*args, **kwargs)
            except oss2.exceptions.OssError as exc:
                owner = cast("SiteOf", args[0])  # a method: the first argument is self
                raise _translate(exc, _site(owner, operation, args[1:], kwargs)) from exc

        return run

    return decorate


def translated_iter(items: Iterator[T], site: Callable[[], OssSite]) -> Iterator[T]:
    """``items``, with an oss2 error raised while iterating translated (for lazy results: listings,
    streams). ``site`` is called only on failure."""
    try:
        yield from items
    except oss2.exceptions.OssError as exc:
        raise _translate(exc, site()) from exc
