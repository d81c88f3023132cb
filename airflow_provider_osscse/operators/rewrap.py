"""Rotate the CMK of encrypted objects by rewrapping their data keys; content is not re-encrypted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_osscse.transport.results import RewrapResult

#: Failures listed in the report (the counts are always complete).
MAX_REPORTED_FAILURES = 50
#: A progress line in the task log every this many objects.
PROGRESS_EVERY = 1000


class EncryptedOSSRewrapOperator(EncryptedOSSBaseOperator):
    """Rewrap the data key of one object, of every object under a prefix, or of one listing shard.

    Only the wrapped key and IV in the object's metadata change (a server-side copy onto itself), so
    content is never re-encrypted. A prefix is a fleet operation (``hook.rewrap_many``): objects
    already on the target's newest version are skipped by their headers (no key-service call, so a
    re-run after a killed run finishes only what is left), stale ones are re-wrapped in batches
    (one Vault Transit ``rewrap`` per 128 objects; KMS ``ReEncrypt`` per object), ``concurrency``
    objects at a time. A prefix or shard run first aborts the multipart uploads a killed rewrap left
    in its own key range (found by their marker part; never another client's, never outside the
    range, so concurrent shards never touch each other's), logged and counted in the report. Shard
    a big prefix over workers by mapping over listing pages, not objects::

        shards = EncryptedOSSListingShardsOperator(task_id="shards", prefix="logs/", objects_per_shard=10_000)
        EncryptedOSSRewrapOperator.partial(task_id="rewrap", decrypt_cmks=[CMK]).expand(shard=shards.output)

    :param key: an object key, or a prefix ending in ``/`` (ignored when ``shard`` is given).
    :param shard: one element of :class:`EncryptedOSSListingShardsOperator`'s list
        (``{"prefix", "start_after", "end_at"}``): the keys of that listing range.
    :param new_cmk: the CMK to wrap under; ``None`` rewraps under the newest version of the first
        ``decrypt_cmks`` entry (a Vault Transit rotation).
    :param decrypt_cmks: CMK references that may unwrap the current data keys.
    :param dry_run: report ``would-rewrap`` without changing anything.
    :param fail_on_error: fail the task (after pushing the report under XCom key ``rewrap_report``)
        when any object failed; the other objects are rewrapped first either way.

    ``oss_conn_id``, ``concurrency`` and ``matdesc`` (written with the new wrapped key): see
    :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator`.

    :return: ``{"prefix", "bucket", "dry_run", "total", "counts": {status: n}, "to_versions",
        "failures": [{"key", "error"}], "aborted_uploads"}`` (at most :data:`MAX_REPORTED_FAILURES`
        failures listed; ``aborted_uploads``: abandoned rewrap uploads aborted first).
    """

    template_fields: Sequence[str] = osscse_template_fields("key", "bucket", "new_cmk", "shard")
    ui_color = "#fce4ec"

    def __init__(
        self,
        *,
        key: str = "",
        shard: Mapping[str, str | None] | None = None,
        bucket: str | None = None,
        new_cmk: str | None = None,
        dry_run: bool = False,
        fail_on_error: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.shard = shard
        self.bucket = bucket
        self.new_cmk = new_cmk
        # Not ``self.dry_run``: that is BaseOperator's method (render the template fields only).
        self.rewrap_dry_run = dry_run
        self.fail_on_error = fail_on_error

    @property
    def target_cmk(self) -> str | None:
        """``new_cmk``, else the first of ``decrypt_cmks`` (rewrapped onto its newest version)."""
        cmks = self.decrypt_cmk_list
        return self.new_cmk or (cmks[0] if cmks else None)

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "cmk": self.target_cmk}

    def execute(self, context: Context) -> dict[str, Any]:
        target = self.target_cmk
        if not target:
            raise ValueError("give new_cmk, or decrypt_cmks whose first entry is rewrapped onto its newest version")
        hook = self.hook
        bucket = hook.get_bucket(self.bucket).bucket_name
        prefix = self.shard.get("prefix") or "" if self.shard is not None else self.key
        report = RewrapReport(prefix=prefix, bucket=bucket, dry_run=self.rewrap_dry_run)
        if self.shard is not None or prefix == "" or prefix.endswith("/"):
            shard = self.shard or {}
            if not self.rewrap_dry_run:  # first, what a killed rewrap of this range left behind
                report.aborted_uploads = self._abort_abandoned(prefix, bucket, shard)
            listed = hook.list_keys(prefix, bucket, start_after=shard.get("start_after"), end_at=shard.get("end_at"))
            keys: Iterable[str] = (k for k in listed if not k.endswith("/"))
        else:
            keys = [self.key]
        results = hook.rewrap_many(
            keys, bucket, new_cmk=target, dry_run=self.rewrap_dry_run, concurrency=self.concurrency
        )
        for result in results:
            report.add(result)
            if result.status == "failed":
                self.log.warning("Rewrap failed for %s: %s", result.uri, result.error)
            if report.total % PROGRESS_EVERY == 0:
                self.log.info(
                    "Rewrap of oss://%s/%s: %d objects so far %s", bucket, prefix, report.total, dict(report.counts)
                )
        summary = report.to_xcom()
        self.log.info("Rewrap of oss://%s/%s: %s", bucket, prefix, summary["counts"])
        if report.counts["failed"] and self.fail_on_error:
            context["ti"].xcom_push(key="rewrap_report", value=summary)
            raise AirflowException(
                f"{report.counts['failed']} of {report.total} objects failed to rewrap: {report.failures[:3]}"
            )
        return summary

    def _abort_abandoned(self, prefix: str, bucket: str, shard: Mapping[str, str | None]) -> int:
        """Abort the ``rewrap`` uploads a killed run left in this task's key range; how many were aborted."""
        outcomes = self.hook.multipart_uploads.abort_abandoned_rewraps(
            prefix, bucket=bucket, start_after=shard.get("start_after"), end_at=shard.get("end_at")
        )
        for outcome in outcomes:
            upload = outcome.upload
            if outcome.status == "aborted":
                self.log.warning(
                    "Aborted the rewrap upload %s of %s that a killed run left", upload.upload_id, upload.uri
                )
        return sum(outcome.status == "aborted" for outcome in outcomes)


class RewrapReport:
    """Counts of a rewrap run in constant memory (failures listed up to :data:`MAX_REPORTED_FAILURES`)."""

    def __init__(self, *, prefix: str, bucket: str, dry_run: bool) -> None:
        self.prefix, self.bucket, self.dry_run = prefix, bucket, dry_run
        self.total = 0
        self.counts: Counter[str] = Counter()
        self.to_versions: Counter[str] = Counter()
        self.failures: list[dict[str, str]] = []
        #: Abandoned rewrap uploads (of a killed run) aborted before the objects were rewrapped.
        self.aborted_uploads = 0

    def add(self, result: RewrapResult) -> None:
        self.total += 1
        self.counts[result.status] += 1
        if result.to_version and result.status in ("rewrapped", "already-current", "would-rewrap"):
            self.to_versions[result.to_version] += 1
        if result.status == "failed" and len(self.failures) < MAX_REPORTED_FAILURES:
            error = result.error or "unknown error"
            if result.exception is not None:  # the kind of failure first, as a task's error shows it
                error = f"{type(result.exception).__name__}: {error}"
            self.failures.append({"key": result.key, "error": error})

    def to_xcom(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "bucket": self.bucket,
            "dry_run": self.dry_run,
            "total": self.total,
            "counts": dict(self.counts),
            "to_versions": dict(self.to_versions),
            "failures": self.failures,
            "aborted_uploads": self.aborted_uploads,
        }


class EncryptedOSSListingShardsOperator(EncryptedOSSBaseOperator):
    """Cut a prefix's listing into shards of ``objects_per_shard`` keys, to map a fleet operation over
    workers (``EncryptedOSSRewrapOperator.partial(...).expand(shard=shards.output)``): one task per
    shard, not per object. Listing costs one request per 1000 keys; nothing is read or unwrapped.

    :param prefix: the prefix to shard.
    :param objects_per_shard: keys per shard (e.g. 10,000: minutes of work per mapped task).
    :return: ``[{"prefix", "start_after", "end_at"}, ...]`` (one small dict per shard).
    """

    template_fields: Sequence[str] = osscse_template_fields("prefix", "bucket", "objects_per_shard")
    ui_color = "#fce4ec"

    def __init__(
        self, *, prefix: str, bucket: str | None = None, objects_per_shard: int | str = 10_000, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix
        self.bucket = bucket
        self.objects_per_shard = objects_per_shard

    def execute(self, context: Context) -> list[dict[str, str | None]]:
        per_shard = int(self.objects_per_shard)  # templated: "{{ params.n }}" renders to a string
        shards = self.hook.listing_shards(self.prefix, self.bucket, objects_per_shard=per_shard)
        self.log.info(
            "oss://%s listing cut into %d shard(s) of up to %d objects",
            self.prefix,
            len(shards),
            per_shard,
        )
        return shards
