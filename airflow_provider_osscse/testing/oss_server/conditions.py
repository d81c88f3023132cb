"""Conditional requests, evaluated in one place for every operation that takes them.

* GetObject / HeadObject: ``If-Match``, ``If-None-Match``, ``If-Modified-Since``,
  ``If-Unmodified-Since`` against the object itself.
* CopyObject / UploadPartCopy: the same four as ``x-oss-copy-source-if-*`` against the SOURCE.
* PutObject / CopyObject / InitiateMultipartUpload / CompleteMultipartUpload:
  ``x-oss-forbid-overwrite: true`` refuses to replace an existing target (409 ``FileAlreadyExists``).

Evaluation follows RFC 7232 section 6, as OSS (and S3) do: a present ``If-Match`` decides alone and
``If-Unmodified-Since`` is then ignored; a present ``If-None-Match`` decides alone and
``If-Modified-Since`` is then ignored. ``If-Match`` / ``If-Unmodified-Since`` fail with 412
``PreconditionFailed``; ``If-None-Match`` / ``If-Modified-Since`` fail with 304 Not Modified, for
the copy-source variants too (the OSS API reference documents 304 there, where S3 answers 412).
A date that does not parse is ignored. Dates compare at whole seconds, as ``Last-Modified`` shows.

The functions here are pure (they only read an immutable :class:`ObjectRecord`), so they are
thread-safe; atomicity with a write comes from the store calling a :data:`Precondition` under its
lock with the record current at the moment of the commit.
"""

from __future__ import annotations

from collections.abc import Mapping

from .protocol import OSSServiceError, parse_http_date
from .storage import ObjectRecord, Precondition

COPY_SOURCE_PREFIX = "x-oss-copy-source-"
FORBID_OVERWRITE = "x-oss-forbid-overwrite"


def precondition_failed(condition: str) -> OSSServiceError:
    return OSSServiceError(
        412,
        "PreconditionFailed",
        "At least one of the pre-conditions you specified did not hold.",
        extra={"Condition": condition},
    )


def not_modified() -> OSSServiceError:
    return OSSServiceError(304, "NotModified", "Not Modified")


def file_already_exists() -> OSSServiceError:
    return OSSServiceError(
        409,
        "FileAlreadyExists",
        "The object you specified already exists and can not be overwritten.",
        ec="0026-00000002",
    )


def _normalize(tag: str) -> str:
    tag = tag.strip()
    if tag[:2].upper() == "W/":
        tag = tag[2:]
    return tag.strip().strip('"').upper()


def etag_matches(header: str, etag: str) -> bool:
    """Whether an ``If-Match``-style list (``"A", b``, ``*``) names ``etag``; quotes and hex case do not matter."""
    wanted = _normalize(etag)
    for listed in header.split(","):
        candidate = listed.strip()
        if candidate == "*" or (candidate and _normalize(candidate) == wanted):
            return True
    return False


def _evaluate(headers: Mapping[str, str], prefix: str, record: ObjectRecord) -> None:
    """The four conditions named ``<prefix>if-*`` against ``record``; raise 412 or 304 when one fails."""
    seconds = int(record.last_modified)
    if_match = headers.get(prefix + "if-match")
    if if_match is not None:
        if not etag_matches(if_match, record.etag):
            raise precondition_failed(prefix + "if-match" if prefix else "If-Match")
    else:
        text = headers.get(prefix + "if-unmodified-since")
        since = parse_http_date(text) if text else None
        if since is not None and seconds > since:
            raise precondition_failed(prefix + "if-unmodified-since" if prefix else "If-Unmodified-Since")
    if_none_match = headers.get(prefix + "if-none-match")
    if if_none_match is not None:
        if etag_matches(if_none_match, record.etag):
            raise not_modified()
    else:
        text = headers.get(prefix + "if-modified-since")
        since = parse_http_date(text) if text else None
        if since is not None and seconds <= since:
            raise not_modified()


def check_read(headers: Mapping[str, str], record: ObjectRecord) -> None:
    """GetObject / HeadObject conditions (``headers`` lower-case) against the object being read."""
    _evaluate(headers, "", record)


def has_copy_source_conditions(headers: Mapping[str, str]) -> bool:
    return any(name.startswith(COPY_SOURCE_PREFIX + "if-") for name in headers)


def check_copy_source(headers: Mapping[str, str], source: ObjectRecord) -> None:
    """CopyObject / UploadPartCopy ``x-oss-copy-source-if-*`` against the source object."""
    _evaluate(headers, COPY_SOURCE_PREFIX, source)


def forbids_overwrite(headers: Mapping[str, str]) -> bool:
    return (headers.get(FORBID_OVERWRITE) or "").strip().lower() == "true"


def check_overwrite(headers: Mapping[str, str], current: ObjectRecord | None) -> None:
    """409 ``FileAlreadyExists`` when the request forbids overwriting and the target exists."""
    if current is not None and forbids_overwrite(headers):
        raise file_already_exists()


def write_precondition(headers: Mapping[str, str]) -> Precondition | None:
    """What the store must check atomically with the write of the target, or None when nothing."""
    if not forbids_overwrite(headers):
        return None
    return lambda current: check_overwrite(headers, current)
