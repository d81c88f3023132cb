"""Abort the multipart uploads this provider started and a killed task abandoned.

Why an operator: a worker killed between the start and the end of a multipart upload (OOM, a lost
node, ``airflow tasks`` killed) runs no clean-up, and OSS bills the upload's parts until it is
aborted. The fleet rewrap cleans its own key range when it runs again; this task, scheduled daily
next to the DAGs that upload or copy large objects, cleans the rest, including the uploads of
operators that will never run again. Only this provider's uploads are touched (each carries a marker
part naming its purpose; ``transport.abandoned_uploads``), only once they have been idle for
``older_than``: other clients' uploads are counted and never aborted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Failed aborts named in the task's error (the count is complete, and each is in the task log).
MAX_NAMED_FAILURES = 5


class EncryptedOSSAbortAbandonedUploadsOperator(EncryptedOSSBaseOperator):
    """Abort this provider's multipart uploads under ``prefix`` to which no part was written for
    ``older_than``; list and count the others.

    :param prefix: key prefix (templated); ``""`` is the whole bucket.
    :param bucket: default: the connection's ``schema`` (templated).
    :param older_than: how long an upload must have been idle to count as abandoned (templated): a
        duration like ``"2h"``, ``"30m"``, ``"1d"``, seconds, or a ``timedelta``. Default ``"1h"``, far
        above the time between two parts of a running upload, so a running task's upload is left alone.
    :param purposes: which of this provider's uploads to abort: ``put``, ``copy``, ``rewrap`` (default all).
    :param fail_on_error: fail the task when an abort failed (default ``True``), after every other
        upload was handled and the counts were pushed under XCom key ``uploads_report``.

    ``oss_conn_id``: see :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator`
    (no CMK is needed: nothing is read or decrypted).

    :return: ``{"bucket", "prefix", "older_than_seconds", "aborted", "kept", "not_ours", "gone",
        "failed"}``: counts of the uploads found (``kept``: ours but too recent or of another purpose).
    """

    template_fields: Sequence[str] = osscse_template_fields("prefix", "bucket", "older_than")
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        prefix: str = "",
        bucket: str | None = None,
        older_than: str | float | timedelta = "1h",
        purposes: Sequence[str] = ("put", "copy", "rewrap"),
        fail_on_error: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_osscse.transport.abandoned_uploads import parse_duration
        from airflow_provider_osscse.transport.multipart_upload import UPLOAD_PURPOSES

        if not (isinstance(older_than, str) and "{{" in older_than):
            parse_duration(older_than)  # a typo fails when the DAG is parsed, not in the task
        unknown = sorted(set(purposes) - set(UPLOAD_PURPOSES))
        if unknown:
            raise ValueError(f"purposes are {', '.join(UPLOAD_PURPOSES)}, not {', '.join(unknown)}")
        self.prefix = prefix
        self.bucket = bucket
        self.older_than = older_than
        self.purposes = tuple(purposes)
        self.fail_on_error = fail_on_error

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_osscse.transport.abandoned_uploads import UPLOAD_STATUSES, duration_text, parse_duration

        seconds = parse_duration(self.older_than)
        bucket = self.hook.get_bucket(self.bucket).bucket_name
        counts: Counter[str] = Counter()
        failures: list[str] = []
        outcomes = self.hook.multipart_uploads.abort_abandoned(
            self.prefix, bucket=bucket, purposes=self.purposes, older_than=seconds
        )
        for outcome in outcomes:
            upload = outcome.upload
            counts[outcome.status] += 1
            if outcome.status == "aborted":
                self.log.info("Aborted the abandoned %s upload %s of %s", upload.purpose, upload.upload_id, upload.uri)
            elif outcome.status == "not-ours":
                self.log.info("Left %s upload %s alone: not this provider's", upload.uri, upload.upload_id)
            elif outcome.status == "failed":
                failures.append(f"{upload.uri} (upload {upload.upload_id}): {outcome.error}")
        result = {
            "bucket": bucket,
            "prefix": self.prefix,
            "older_than_seconds": int(seconds),
            **{status.replace("-", "_"): counts[status] for status in UPLOAD_STATUSES},
        }
        self.log.info(
            "Uploads in progress under oss://%s/%s idle %s or more: %s",
            bucket,
            self.prefix,
            duration_text(seconds),
            result,
        )
        if failures and self.fail_on_error:
            context["ti"].xcom_push(key="uploads_report", value=result)
            named = "; ".join(failures[:MAX_NAMED_FAILURES])
            raise AirflowException(f"{len(failures)} abandoned upload(s) could not be aborted: {named}")
        return result
