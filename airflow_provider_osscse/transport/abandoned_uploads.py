"""Multipart uploads in progress: which ones this provider started (by their marker part), and
aborting the ones a killed run abandoned.

Why: OSS bills the parts of an upload that was neither completed nor aborted, and shows them nowhere
but ListMultipartUploads. A failed upload aborts itself (``transport.multipart_upload``), but a
process killed between InitiateMultipartUpload and Complete runs no clean-up at all.

Identified without guessing: OSS keeps no metadata on an upload in progress (ListMultipartUploads
gives key, upload id and when it was initiated; ListParts each part's number, ETag, size and
last-modified), so every upload of this provider carries a marker part, number 10,000, whose fixed
body per purpose (``put``, ``copy``, ``rewrap``) gives a known ETag. An upload without it is another
client's (or one killed in the instant between Init's answer and the marker, which a bucket
lifecycle rule removes): it is reported ``not-ours`` and never aborted, whatever its age.

Cost: one ListMultipartUploads per 1000 uploads under the prefix, then one ListParts per upload
found (more only for an upload of more than 1000 parts); nothing when there is none.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any

import oss2
import oss2.exceptions

from airflow_provider_osscse.envelope.multipart import MAX_PART_COUNT
from airflow_provider_osscse.exceptions import OssAccessDeniedError
from airflow_provider_osscse.transport.multipart_upload import (
    MARKER_PART_NUMBER,
    UPLOAD_PURPOSES,
    marker_purpose,
)
from airflow_provider_osscse.transport.oss_errors import translate_oss_error, translated_iter
from airflow_provider_osscse.transport.results import oss_uri
from airflow_provider_osscse.transport.transfer_base import TransferBase

#: Uploads (ListMultipartUploads) and parts (ListParts) per page: OSS's maximum for both.
PAGE = 1000
#: What ``abort_abandoned`` did with each upload found.
UPLOAD_STATUSES = ("aborted", "kept", "not-ours", "gone", "failed")

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str | float | timedelta) -> float:
    """Seconds from ``30m``, ``2h``, ``1h30m``, ``90s``, ``1d`` or ``0`` (also a number of seconds or a
    ``timedelta``): how long an upload must have been idle before it counts as abandoned."""
    if isinstance(text, timedelta):
        return text.total_seconds()
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        value = text.strip()
        if value.isdigit():
            seconds = float(value)
        elif value and _DURATION.sub("", value) == "":
            seconds = float(sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION.findall(value)))
        else:
            raise ValueError(f"expected a duration like 30m, 2h, 1h30m, 90s or 1d, got {text!r}")
    if seconds < 0:
        raise ValueError(f"a duration is not negative, got {text!r}")
    return seconds


def duration_text(seconds: float) -> str:
    """``2h03m``, ``5m10s``, ``45s``, ``3d04h``: an age as a person reads it (whole seconds)."""
    whole = max(0, int(seconds))
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _server_time(headers: Mapping[str, str]) -> float:
    """OSS's clock from an answer's ``Date`` (this machine's when there is none)."""
    try:
        return parsedate_to_datetime(headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError):
        return time.time()


def iso_utc(timestamp: float | None) -> str | None:
    """``2025-01-01T10:00:00Z``: an OSS time (epoch seconds) as ISO 8601 UTC."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class InProgressUpload:
    """A multipart upload neither completed nor aborted, as OSS lists it.

    ``purpose`` is what its marker part says (``put``, ``copy``, ``rewrap``), ``None`` when it has
    none: not this provider's. Times are epoch seconds on OSS's clock, never this machine's (OSS
    accepts requests from clocks up to 15 minutes off): ``listed_at`` is the ``Date`` of the listing
    answer, ``last_activity`` the newest part's last-modified (the marker's when no data part was
    written), ``None`` when not known (another client's upload of over 1000 parts is not paged
    through); ``parts`` counts data parts, the marker left out.
    """

    bucket: str
    key: str
    upload_id: str
    initiated: float
    purpose: str | None
    last_activity: float | None
    parts: int | None
    listed_at: float

    @property
    def ours(self) -> bool:
        return self.purpose is not None

    @property
    def uri(self) -> str:
        return oss_uri(self.bucket, self.key)

    def idle_seconds(self, now: float | None = None) -> float:
        """Seconds, up to ``now`` (default: when it was listed; OSS's clock), since anything was written
        to it (since it was initiated, when that is all that is known)."""
        since = self.last_activity if self.last_activity is not None else self.initiated
        return max(0.0, (self.listed_at if now is None else now) - since)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (times as ISO 8601 UTC; ``idle_seconds`` as of the listing)."""
        return {
            "uri": self.uri,
            "bucket": self.bucket,
            "key": self.key,
            "upload_id": self.upload_id,
            "ours": self.ours,
            "purpose": self.purpose,
            "initiated": iso_utc(self.initiated),
            "last_activity": iso_utc(self.last_activity),
            "idle_seconds": int(self.idle_seconds()),
            "parts": self.parts,
        }


@dataclass(frozen=True)
class UploadOutcome:
    """What :meth:`MultipartUploads.abort_abandoned` did with one upload: ``aborted``; ``kept`` (ours,
    but not selected: another purpose, too recent, or started after the run); ``not-ours`` (never
    aborted); ``gone`` (completed or aborted meanwhile); ``failed`` (the abort did not succeed:
    ``error`` says why)."""

    upload: InProgressUpload
    status: str
    error: str | None = None
    exception: BaseException | None = field(default=None, compare=False, repr=False)


class MultipartUploads(TransferBase):
    """List the multipart uploads in progress under a prefix and abort this provider's abandoned ones."""

    def in_progress(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        start_after: str | None = None,
        end_at: str | None = None,
    ) -> Iterator[InProgressUpload]:
        """Every upload in progress under ``prefix`` (only keys after ``start_after`` and up to
        ``end_at``: a listing shard's range), in key order, each with its purpose; lazily, page by page."""
        oss_bucket = self._bucket(bucket)
        described = (
            upload
            for info, listed_at in self._listed(oss_bucket, prefix, start_after, end_at)
            if (upload := self._described(oss_bucket, info, listed_at)) is not None
        )
        return translated_iter(described, lambda: self.oss_site("list uploads", prefix or None, bucket))

    def abort_abandoned(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        purposes: Collection[str] = UPLOAD_PURPOSES,
        older_than: float | str | timedelta | None = 3600.0,
        initiated_before: float | None = None,
        start_after: str | None = None,
        end_at: str | None = None,
    ) -> Iterator[UploadOutcome]:
        """Abort this provider's uploads under ``prefix`` whose marker names one of ``purposes``, idle
        for at least ``older_than`` (seconds or ``2h``; ``None``: any age) and, with
        ``initiated_before`` (epoch seconds on OSS's clock), initiated before it; one
        :class:`UploadOutcome` per upload found, lazily. Other clients' uploads are never aborted.
        Each abort is logged (INFO), each failed one at WARNING. Idle times are OSS's: the newest part's
        last-modified against the listing answer's ``Date``."""
        unknown = set(purposes) - set(UPLOAD_PURPOSES)
        if unknown:
            raise ValueError(f"upload purposes are {', '.join(UPLOAD_PURPOSES)}, not {', '.join(sorted(unknown))}")
        min_idle = parse_duration(older_than) if older_than is not None else None
        found = self.in_progress(prefix, bucket=bucket, start_after=start_after, end_at=end_at)
        return self._abort_selected(found, set(purposes), min_idle, initiated_before)

    def _abort_selected(
        self,
        found: Iterator[InProgressUpload],
        purposes: Collection[str],
        min_idle: float | None,
        initiated_before: float | None,
    ) -> Iterator[UploadOutcome]:
        for upload in found:
            if not upload.ours:
                yield UploadOutcome(upload, "not-ours")
            elif (
                upload.purpose not in purposes
                or (initiated_before is not None and upload.initiated >= initiated_before)
                or (min_idle is not None and upload.idle_seconds() < min_idle)
            ):
                yield UploadOutcome(upload, "kept")
            else:
                yield self._abort(upload)

    def abort_abandoned_rewraps(
        self, prefix: str = "", *, bucket: str | None = None, start_after: str | None = None, end_at: str | None = None
    ) -> list[UploadOutcome]:
        """A fleet rewrap's clean-up before it starts: abort the ``rewrap`` uploads in its own key range
        (``prefix``, and a shard's ``start_after``/``end_at``: concurrent shards never touch each
        other's keys). It runs before the rewrap starts any upload, so every one it finds was
        initiated before the run, by a run that was killed (no time is compared: OSS's Initiated
        against this machine's clock would be wrong by their skew); had another run of the same range
        been still going, its object would fail there and be rewrapped here. Returns the aborted and failed
        ones. A clean-up the RAM policy does not allow (``oss:ListMultipartUploads``, ``oss:ListParts``,
        ``oss:AbortMultipartUpload``) is logged at WARNING and the rewrap goes on; any other failure
        (no bucket, refused credentials, OSS unavailable) is the rewrap's own and is raised."""
        try:
            outcomes = self.abort_abandoned(
                prefix,
                bucket=bucket,
                purposes=("rewrap",),
                older_than=None,
                start_after=start_after,
                end_at=end_at,
            )
            return [outcome for outcome in outcomes if outcome.status in ("aborted", "failed")]
        except OssAccessDeniedError as exc:
            self._log.warning(
                "could not look for rewrap uploads abandoned under %s: %s. The rewrap goes on without that "
                "clean-up; a later run or 'osscse uploads --abort' does it (with oss:ListMultipartUploads, "
                "oss:ListParts and oss:AbortMultipartUpload allowed)",
                oss_uri(self._bucket(bucket).bucket_name, prefix),
                exc,
            )
            return []

    # ------------------------------------------------------------------ OSS requests
    def _listed(
        self, oss_bucket: oss2.Bucket, prefix: str, start_after: str | None, end_at: str | None
    ) -> Iterator[tuple[Any, float]]:
        """ListMultipartUploads page by page, each upload with the time of its page's answer (OSS's
        ``Date``): key-marker ``start_after`` lists only later keys (OSS: without an upload-id-marker,
        keys greater than the key-marker), stopped after ``end_at``."""
        key_marker, id_marker = start_after or "", ""
        while True:
            page = self.config.retry.call(
                partial(
                    oss_bucket.list_multipart_uploads,
                    prefix=prefix,
                    key_marker=key_marker,
                    upload_id_marker=id_marker,
                    max_uploads=PAGE,
                ),
                what=f"ListMultipartUploads {prefix!r}",
            )
            listed_at = _server_time(page.headers)
            for info in page.upload_list:
                if end_at is not None and info.key > end_at:
                    return
                yield info, listed_at
            if not page.is_truncated:
                return
            key_marker, id_marker = page.next_key_marker, page.next_upload_id_marker

    def _parts(self, oss_bucket: oss2.Bucket, key: str, upload_id: str, marker: int, limit: int | None = None) -> Any:
        """One ListParts page: the parts numbered above ``marker``."""
        return self.config.retry.call(
            partial(
                oss_bucket.list_parts, key, upload_id, marker=str(marker) if marker else "", max_parts=limit or PAGE
            ),
            what=f"ListParts {key!r}",
        )

    def _described(self, oss_bucket: oss2.Bucket, info: Any, listed_at: float) -> InProgressUpload | None:
        """The upload with its purpose (from part 10,000) and last activity; ``None`` when it is gone."""
        key, upload_id = info.key, info.upload_id
        try:
            page = self._parts(oss_bucket, key, upload_id, 0)
            parts = list(page.parts)
            if page.is_truncated:  # over 1000 parts: the marker, if any, is the very last part
                probe = self._parts(oss_bucket, key, upload_id, MAX_PART_COUNT, 1).parts
                if not any(marker_purpose(p.part_number, p.etag) for p in probe):
                    return self._upload(oss_bucket, info, listed_at, None, None, None)
                while page.is_truncated:
                    page = self._parts(oss_bucket, key, upload_id, int(page.next_marker))
                    parts.extend(page.parts)
        except oss2.exceptions.NoSuchUpload:
            return None  # completed or aborted since it was listed
        purpose = next((p for part in parts if (p := marker_purpose(part.part_number, part.etag))), None)
        stamps = [part.last_modified for part in parts if part.last_modified]
        data_parts = sum(1 for part in parts if part.part_number != MARKER_PART_NUMBER)
        return self._upload(oss_bucket, info, listed_at, purpose, max(stamps) if stamps else None, data_parts)

    @staticmethod
    def _upload(
        oss_bucket: oss2.Bucket,
        info: Any,
        listed_at: float,
        purpose: str | None,
        last_activity: float | None,
        parts: int | None,
    ) -> InProgressUpload:
        return InProgressUpload(
            bucket=oss_bucket.bucket_name,
            key=info.key,
            upload_id=info.upload_id,
            initiated=float(info.initiation_date),
            purpose=purpose,
            last_activity=float(last_activity) if last_activity is not None else None,
            parts=parts,
            listed_at=listed_at,
        )

    def _abort(self, upload: InProgressUpload) -> UploadOutcome:
        oss_bucket = self._bucket(upload.bucket)
        try:
            self.config.retry.call(
                partial(oss_bucket.abort_multipart_upload, upload.key, upload.upload_id),
                what=f"AbortMultipartUpload {upload.key!r}",
            )
        except oss2.exceptions.NoSuchUpload:
            return UploadOutcome(upload, "gone")
        except oss2.exceptions.OssError as exc:
            error = translate_oss_error(exc, self.oss_site("abort upload", upload.key, upload.bucket)) or exc
            self._log.warning(
                "could not abort %s upload %s of %s: %s", upload.purpose, upload.upload_id, upload.uri, error
            )
            return UploadOutcome(upload, "failed", str(error), error)
        self._log.info(
            "aborted the %s upload %s of %s, abandoned (initiated %s, idle %s)",
            upload.purpose,
            upload.upload_id,
            upload.uri,
            iso_utc(upload.initiated),
            duration_text(upload.idle_seconds()),
        )
        return UploadOutcome(upload, "aborted")


__all__ = [
    "UPLOAD_STATUSES",
    "InProgressUpload",
    "MultipartUploads",
    "UploadOutcome",
    "duration_text",
    "iso_utc",
    "parse_duration",
]
