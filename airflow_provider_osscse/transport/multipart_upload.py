"""Parallel multipart uploads whose memory is bounded by the thread pool, not the object.

Each part is *produced* on demand by a callable (read + encrypt one slice of a file or spool) inside
a worker thread, and at most ``max_workers`` parts are submitted at a time, so at most that many part
buffers exist however large the object is. Every part is retried on transient errors; if one still
fails, the upload is aborted so that OSS holds neither a half object nor orphaned parts.

Parts sent as a :class:`PartBody` are verified by MD5 instead of oss2's CRC64: see
:func:`upload_part_action`. Complete then names every part by its verified ETag, and OSS assembles
exactly those parts (``InvalidPart`` otherwise), so the object is made of verified parts. Its own
ETag is deliberately not re-derived and checked: the multipart ETag rule is not documented by OSS,
and a wrong guess would delete every committed upload.

**The marker part.** Right after Init, before any data part, every upload gets part
:data:`MARKER_PART_NUMBER` (10,000, which plans never use for data): a small fixed body per *purpose*
(``put``, ``copy``, ``rewrap``), so its ETag (the body's MD5) in ListParts says "this provider
started this upload, for this" without guessing. OSS has no metadata on an upload in progress, and a
process killed between Init and Complete runs no clean-up; the marker lets a later run, ``osscse
uploads --abort`` or an operator find exactly the uploads this provider abandoned
(``transport.abandoned_uploads``) and never touch another client's. Complete never names the
marker, so OSS drops it with the upload: the object's bytes and ETag are what they would be without
it. A kill between Init's answer and the marker's is the one window left (a lifecycle rule for
incomplete uploads is the backstop, docs/deployment.md).

The same driver copies server-side ranges (UploadPartCopy) for copy and rewrap: the part action is
a parameter. Part sizes and ranges are planned by :func:`~airflow_provider_osscse.envelope.multipart.plan_parts`
(the one planner, which knows OSS's part limits); this module only drives the parts it is given.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import oss2
from oss2.models import PartInfo

from airflow_provider_osscse.envelope.headers import CSE_PREFIX
from airflow_provider_osscse.envelope.multipart import MAX_PART_COUNT, MAX_PART_NUMBER
from airflow_provider_osscse.exceptions import PartPlanError, TransferChecksumError
from airflow_provider_osscse.retry import RetryPolicy
from airflow_provider_osscse.transport.oss_client import without_client_crc
from airflow_provider_osscse.transport.parallel import run_bounded
from airflow_provider_osscse.transport.part_body import PartBody
from airflow_provider_osscse.transport.progress import ProgressReporter
from airflow_provider_osscse.transport.retry import DEFAULT_RETRY

log = logging.getLogger(__name__)

#: ``send(upload_id, part_number) -> (etag, bytes_sent)``
PartAction = Callable[[str, int], tuple[str, int]]

#: The part number of the upload marker (OSS's highest; plans use 1..9,999 for data).
MARKER_PART_NUMBER = MAX_PART_NUMBER
#: What an upload is for, as its marker says: ``put`` (encrypt and upload), ``copy`` (server-side
#: copy to another name), ``rewrap`` (new wrapped data key, the object copied onto itself).
UPLOAD_PURPOSES = ("put", "copy", "rewrap")
#: Marker bodies are this long: a multiple of 16, like every part of an encrypted upload.
_MARKER_SIZE = 64


def marker_body(purpose: str) -> bytes:
    """The marker part's fixed body for ``purpose`` (64 bytes); versioned, so a later format is told apart."""
    if purpose not in UPLOAD_PURPOSES:
        raise ValueError(f"upload purpose must be one of {', '.join(UPLOAD_PURPOSES)}, not {purpose!r}")
    return f"airflow-provider-osscse upload marker v1: {purpose}".ljust(_MARKER_SIZE - 1).encode() + b"\n"


def _md5_etag(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest().upper()


#: The marker part's ETag (upper-case hex MD5, as OSS answers UploadPart and ListParts) -> purpose.
_PURPOSE_BY_MARKER_ETAG = {_md5_etag(marker_body(p)): p for p in UPLOAD_PURPOSES}


def marker_purpose(part_number: int, etag: str | None) -> str | None:
    """The purpose a listed part says its upload has, ``None`` when it is not this provider's marker."""
    if part_number != MARKER_PART_NUMBER:
        return None
    return _PURPOSE_BY_MARKER_ETAG.get(_unquoted(etag or "").upper())


@dataclass(frozen=True)
class MultipartOutcome:
    """The completed object's ETag and how many parts it has."""

    etag: str
    parts: int


def run_multipart(
    bucket: oss2.Bucket,
    key: str,
    *,
    part_count: int,
    send_part: PartAction,
    init_headers: Mapping[str, str],
    complete_headers: Mapping[str, str] | None = None,
    max_workers: int = 4,
    retry: RetryPolicy = DEFAULT_RETRY,
    progress: ProgressReporter | None = None,
    before_complete: Callable[[], None] | None = None,
    purpose: str = "put",
) -> MultipartOutcome:
    """Init, send the marker part for ``purpose``, send ``part_count`` parts with a bounded pool,
    complete; abort on any remaining failure.

    ``before_complete`` runs after the last part and may raise to abort (rewrap uses it to re-check
    the source ETag). The error that caused the abort propagates unchanged.
    """
    if part_count < 1 or part_count > MAX_PART_COUNT:
        raise PartPlanError(
            f"a multipart upload has 1..{MAX_PART_COUNT} data parts (part {MARKER_PART_NUMBER} is its marker), "
            f"not {part_count}: plan it with envelope.multipart.plan_parts"
        )
    marker = marker_body(purpose)  # an unknown purpose fails before anything is started
    upload_id = retry.call(
        lambda: bucket.init_multipart_upload(key, headers=dict(init_headers)).upload_id,
        what=f"InitiateMultipartUpload {key!r}",
    )
    try:
        _send_marker(bucket, key, upload_id, marker, init_headers, retry)
        etags = _send_all(upload_id, part_count, send_part, max_workers, retry, progress, key)
        if before_complete is not None:
            before_complete()
        parts = [PartInfo(n, etags[n]) for n in range(1, part_count + 1)]
        result = retry.call(
            lambda: bucket.complete_multipart_upload(key, upload_id, parts, headers=dict(complete_headers or {})),
            what=f"CompleteMultipartUpload {key!r}",
        )
    except BaseException:
        _abort(bucket, key, upload_id, retry)
        raise
    if progress is not None:
        progress.finish()  # the last report, so a terminal bar ends at 100%
    return MultipartOutcome(etag=result.etag, parts=part_count)


def _send_all(
    upload_id: str,
    part_count: int,
    send_part: PartAction,
    max_workers: int,
    retry: RetryPolicy,
    progress: ProgressReporter | None,
    key: str,
) -> dict[int, str]:
    """Keep at most ``max_workers`` parts in flight; stop submitting at the first failure."""
    etags: dict[int, str] = {}
    lock = threading.Lock()

    def one(number: int) -> None:
        etag, sent = retry.call(lambda: send_part(upload_id, number), what=f"UploadPart {number} of {key!r}")
        with lock:
            etags[number] = etag
        if progress is not None:
            progress.add(sent)

    run_bounded(one, range(1, part_count + 1), max_workers=max_workers, thread_name_prefix="osscse-part")
    return etags


def _send_marker(
    bucket: oss2.Bucket, key: str, upload_id: str, body: bytes, init_headers: Mapping[str, str], retry: RetryPolicy
) -> None:
    """Upload the marker part (with the CSE headers every part of an encrypted upload repeats) and
    check OSS stored exactly it: its ETag is what identifies the upload later."""
    headers = {k.lower(): v for k, v in init_headers.items() if k.lower().startswith(CSE_PREFIX)}
    expected = _md5_etag(body)
    crc_free = without_client_crc(bucket)  # the ETag (MD5) check below is the transfer check

    def send() -> None:
        etag = crc_free.upload_part(key, upload_id, MARKER_PART_NUMBER, body, headers=headers).etag
        if _unquoted(etag or "").upper() != expected:
            raise TransferChecksumError(
                f"UploadPart {MARKER_PART_NUMBER} (the upload marker) of {key!r}: OSS stored a part with "
                f"ETag {etag!r}, not the marker's {expected}; corrupted in transit"
            )

    retry.call(send, what=f"UploadPart {MARKER_PART_NUMBER} (upload marker) of {key!r}")


def _unquoted(etag: str) -> str:
    return etag.strip().strip('"')


def _abort(bucket: oss2.Bucket, key: str, upload_id: str, retry: RetryPolicy) -> None:
    """Abort so OSS keeps no parts (they are billed and invisible). Never masks the original error."""
    try:
        retry.call(lambda: bucket.abort_multipart_upload(key, upload_id), what=f"AbortMultipartUpload {key!r}")
    except oss2.exceptions.NoSuchUpload:
        pass
    except Exception as error:  # noqa: BLE001 - reported, the original error wins
        # No traceback: the original error propagates with its own; this one is only reported.
        log.error("could not abort multipart upload of %r (upload id %s): %s", key, upload_id, error)  # noqa: TRY400


def upload_part_action(
    bucket: oss2.Bucket,
    key: str,
    produce: Callable[[int], bytes | PartBody],
    part_headers: Mapping[str, str],
) -> PartAction:
    """A part action that uploads ``produce(part_number)`` (bytes made in the worker thread).

    A :class:`PartBody` is sent with oss2's client CRC64 off and verified by MD5 instead: the body
    hashes exactly the bytes it hands to the connection, and OSS answers UploadPart with the MD5 of
    the bytes it received and stored as the part's ETag (upper-case hex, quoted). Equal digests mean
    the stored part is the part sent, the same end-to-end guarantee as comparing CRC64s, with a
    128-bit digest instead of a 64-bit checksum (at least as strong against accidental corruption,
    which is what either guards against: ciphertext tampering is the integrity tag's job). A
    mismatch is a corrupted transfer: :class:`TransferChecksumError`, transient, so the part is
    resent within the retry policy, and if it persists the upload is aborted. ``bytes`` parts keep
    oss2's CRC64.
    """
    crc_free = without_client_crc(bucket)

    def send(upload_id: str, number: int) -> tuple[str, int]:
        data = produce(number)
        try:
            if isinstance(data, PartBody):
                result = crc_free.upload_part(key, upload_id, number, data, headers=dict(part_headers))
                _verify_part_etag(key, number, data, result.etag)
                return result.etag, len(data)
            result = bucket.upload_part(key, upload_id, number, data, headers=dict(part_headers))
        except Exception:
            # A source that failed mid-body (shrank, unreadable) is the caller's problem, not a network
            # one: surface it as raised, so the retry policy does not resend it as a transient error.
            source_error = getattr(data, "source_error", None)
            if source_error is not None:
                raise source_error from None
            raise
        return result.etag, len(data)

    return send


def _verify_part_etag(key: str, number: int, body: PartBody, etag: str | None) -> None:
    sent = body.md5_hex() if body.complete else None
    if sent is None or _unquoted(etag or "").upper() != sent:
        raise TransferChecksumError(
            f"UploadPart {number} of {key!r}: OSS stored a part with ETag {etag!r}, but the MD5 of the "
            f"{len(body)} bytes sent is {sent!r}; corrupted in transit"
        )


def copy_part_action(
    bucket: oss2.Bucket,
    key: str,
    *,
    source_bucket: str,
    source_key: str,
    ranges: list[tuple[int, int]],
    part_headers: Mapping[str, str],
    source_etag: str | None = None,
) -> PartAction:
    """A part action that copies ``ranges[n-1]`` (inclusive) of the source server-side.

    With ``source_etag`` every part carries ``x-oss-copy-source-if-match``: if the source changed
    the copy fails with 412 and the whole upload is aborted (no lost update).
    """
    headers = dict(part_headers)
    if source_etag:
        headers["x-oss-copy-source-if-match"] = _quoted(source_etag)

    def send(upload_id: str, number: int) -> tuple[str, int]:
        start, end = ranges[number - 1]
        result = bucket.upload_part_copy(
            source_bucket, source_key, (start, end), key, upload_id, number, headers=headers
        )
        return result.etag, end - start + 1

    return send


def _quoted(etag: str) -> str:
    return etag if etag.startswith('"') else f'"{etag}"'
