"""``osscse uploads``: the multipart uploads in progress under a prefix, and aborting the abandoned ones.

Why a command: a process killed between InitiateMultipartUpload and Complete leaves an upload whose
parts OSS bills and shows nowhere else. Every upload of this provider carries a marker part naming
its purpose (``transport.abandoned_uploads``), so this command tells its own uploads from other
clients' without guessing, and ``--abort`` aborts only its own, only once they have been idle for
``--older-than`` (default 1h: a task still uploading is left alone), idle times measured on OSS's
clock (the newest part's last-modified against the listing answer's ``Date``), never this machine's.
The lines are data (stdout)::

    rewrap      2h03m  oss://b/k  UPLOAD_ID              (listing: purpose, idle time, object, upload id)
    not-ours   12m05s  oss://b/k  UPLOAD_ID
    2 in progress: 1 ours (1 rewrap), 1 not ours

    aborted oss://b/k: rewrap upload UPLOAD_ID, idle 2h03m  (--abort)
    kept oss://b/k: put upload UPLOAD_ID, idle 5m10s (less than --older-than 1h00m)
    not-ours oss://b/k: upload UPLOAD_ID, initiated 2025-01-01T10:00:00Z (never aborted)
    1 aborted, 1 kept, 1 not ours, 0 gone, 0 failed

``--json`` prints one JSON document per upload instead (with ``status`` under ``--abort``) and the
summary on stderr. Exit status 1 when an abort failed. The fleet rewrap does the same clean-up for
its own ``rewrap`` uploads by itself (``cli_rewrap.abort_abandoned_rewraps``).

The transport (and so oss2) is imported when the command runs, not when the parser is built.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_osscse.cli_terminal import CommandOutput
    from airflow_provider_osscse.hooks.encrypted_oss_operations import EncryptedOSSOperations
    from airflow_provider_osscse.transport.abandoned_uploads import InProgressUpload, UploadOutcome

#: ``--abort`` without ``--older-than``: an upload idle this long is abandoned (a running task writes parts).
DEFAULT_OLDER_THAN = "1h"

UPLOADS_DESCRIPTION = (
    "List the multipart uploads in progress under a prefix: this provider's with their purpose (put, copy, "
    "rewrap; read from the marker part each of its uploads carries) and how long they have been idle, "
    "other clients' as not-ours. A run killed between the start and the end of an upload leaves one "
    "behind, and OSS bills its parts until it is aborted.\n"
    "--abort aborts this provider's uploads idle for at least --older-than (default 1h, so a task still "
    "uploading is left alone); other clients' uploads are never aborted. A fleet rewrap of a prefix aborts "
    "its own abandoned rewrap uploads by itself.\n"
    "Examples:\n  osscse uploads oss://my-bucket/reports/\n  osscse uploads oss://my-bucket/ --abort --older-than 2h"
)


def duration_argument(text: str) -> float:
    """``--older-than``: seconds, or a usage error (exit 2) unless like ``30m``, ``2h``, ``1h30m``, ``1d``, ``0``."""
    from airflow_provider_osscse.transport.abandoned_uploads import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _listing_line(upload: InProgressUpload) -> str:
    from airflow_provider_osscse.transport.abandoned_uploads import duration_text

    label = upload.purpose or "not-ours"
    return f"{label:<8}  {duration_text(upload.idle_seconds()):>7}  {upload.uri}  {upload.upload_id}"


def _outcome_line(outcome: UploadOutcome, older_than: float) -> str:
    from airflow_provider_osscse.transport.abandoned_uploads import duration_text, iso_utc

    upload = outcome.upload
    idle = duration_text(upload.idle_seconds())
    what = f"{upload.purpose} upload {upload.upload_id}"
    detail = {
        "aborted": f"{what}, idle {idle}",
        "kept": f"{what}, idle {idle} (less than --older-than {duration_text(older_than)})",
        "not-ours": f"upload {upload.upload_id}, initiated {iso_utc(upload.initiated)} (never aborted)",
        "gone": f"{what} (completed or aborted meanwhile)",
        "failed": f"{what}: {outcome.error}",
    }[outcome.status]
    return f"{outcome.status} {upload.uri}: {detail}"


def uploads_each(
    hook: EncryptedOSSOperations,
    bucket: str,
    prefix: str,
    *,
    abort: bool,
    older_than: float | None,
    as_json: bool,
    term: CommandOutput,
) -> int:
    """List (or with ``abort``, abort and report) every upload in progress under ``prefix``; exit status."""
    uploads = hook.multipart_uploads
    if not abort:
        counts: Counter[str] = Counter()
        for upload in uploads.in_progress(prefix, bucket=bucket):
            counts[upload.purpose or "not-ours"] += 1
            term.result(json.dumps(upload.to_dict(), sort_keys=True) if as_json else _listing_line(upload))
        theirs = counts.pop("not-ours", 0)
        ours = ", ".join(f"{n} {purpose}" for purpose, n in sorted(counts.items()))
        summary = f"{sum(counts.values()) + theirs} in progress: {sum(counts.values())} ours"
        summary += f" ({ours}), {theirs} not ours" if ours else f", {theirs} not ours"
        (term.note if as_json else term.result)(summary)
        return 0
    min_idle = older_than if older_than is not None else duration_argument(DEFAULT_OLDER_THAN)
    statuses: Counter[str] = Counter()
    for outcome in uploads.abort_abandoned(prefix, bucket=bucket, older_than=min_idle):
        statuses[outcome.status] += 1
        if as_json:
            document = {**outcome.upload.to_dict(), "status": outcome.status, "error": outcome.error}
            term.result(json.dumps(document, sort_keys=True))
        else:
            term.result(_outcome_line(outcome, min_idle))
    summary = ", ".join(
        f"{statuses[status]} {status.replace('-', ' ')}" for status in ("aborted", "kept", "not-ours", "gone", "failed")
    )
    (term.note if as_json else term.result)(summary)
    if statuses["failed"]:
        term.error(f"{statuses['failed']} abandoned upload(s) could not be aborted")
    return 1 if statuses["failed"] else 0
