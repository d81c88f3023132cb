"""Inventory a prefix from object headers alone, and fail the task on what an audit would flag.

Why an operator: a scheduled inventory finds plaintext, untagged and stale-CMK objects before an
auditor does, and a failed task is what on-call sees. Nothing is unwrapped and no key service is
called (``hook.inventory``: one HEAD per object, bounded concurrency, constant memory), so the task
needs only OSS read access, not the CMKs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_osscse.transport.inventory_records import InventoryRecord, InventoryStream
    from airflow_provider_osscse.transport.inventory_report import InventorySummary

#: Unreadable objects named in the task log (the count is always complete, in the summary).
MAX_LOGGED_ERRORS = 20


class EncryptedOSSInventoryOperator(EncryptedOSSBaseOperator):
    """List every object under a prefix with its CMK, CMK version, integrity tag and size, from its
    headers only, and return the summary (counts, not rows) as the XCom result.

    :param prefix: key prefix (templated); ``""`` is the whole bucket.
    :param bucket: default: the connection's ``schema`` (templated).
    :param report_path: local file to write one record per object to (templated), written atomically
        (complete or not at all); ``None`` writes no report. Upload it with
        ``LocalFilesystemToEncryptedOSSOperator`` to keep it beside the data.
    :param report_format: ``jsonl`` (default) or ``csv``, the columns of ``osscse inventory``.
    :param concurrency: HEAD requests in flight (1-64, default 8; the base operator's argument).
    :param current_versions: CMK identity (as in the ``cmk`` column, e.g. ``vault-transit:transit/orders``)
        -> its current version (templated): encrypted objects of such a CMK on another version are
        counted ``stale``.
    :param fail_on_plaintext: fail the task when any object is not encrypted.
    :param fail_on_untagged: fail the task when any encrypted object has no integrity tag.
    :param fail_on_stale: fail the task when any object is stale (needs ``current_versions``).
    :param fail_on_error: fail the task when any object's headers could not be read (default ``True``:
        the inventory is then incomplete).

    A failing task pushes the summary under XCom key ``inventory_summary`` first. ``oss_conn_id``:
    see :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator` (the CMK and
    integrity arguments are accepted and unused: nothing is decrypted).

    :return: the summary of ``osscse inventory --summary`` plus ``report_path``.
    """

    template_fields: Sequence[str] = osscse_template_fields("prefix", "bucket", "report_path", "current_versions")
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        prefix: str = "",
        bucket: str | None = None,
        report_path: str | None = None,
        report_format: str = "jsonl",
        current_versions: Mapping[str, str] | None = None,
        fail_on_plaintext: bool = False,
        fail_on_untagged: bool = False,
        fail_on_stale: bool = False,
        fail_on_error: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_provider_osscse.transport.inventory_records import check_concurrency  # no oss2 import
        from airflow_provider_osscse.transport.inventory_report import check_format

        # Typos fail when the DAG is parsed, not in the task.
        self.report_format = check_format(report_format)
        check_concurrency(self.concurrency)  # the base's argument; HEADs in flight here, at most 64
        if fail_on_stale and current_versions is None:
            raise ValueError("fail_on_stale needs current_versions: {CMK identity: its current version}")
        self.prefix = prefix
        self.bucket = bucket
        self.report_path = report_path
        self.current_versions = current_versions
        self.fail_on_plaintext = fail_on_plaintext
        self.fail_on_untagged = fail_on_untagged
        self.fail_on_stale = fail_on_stale
        self.fail_on_error = fail_on_error

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        # The connection pool sized for the HEADs in flight.
        return {**super()._hook_parameters, "max_workers": max(self.max_workers, self.concurrency)}

    def execute(self, context: Context) -> dict[str, Any]:
        summary = self._inventory()
        result = {**summary.to_dict(), "report_path": self.report_path}
        uri = f"oss://{summary.bucket}/{self.prefix}"
        self.log.info("Inventory of %s: %s", uri, summary.tally_line())
        violations = self._violations(result)
        if violations:
            context["ti"].xcom_push(key="inventory_summary", value=result)
            raise AirflowException(f"Inventory of {uri}: {'; '.join(violations)}")
        return result

    def _inventory(self) -> InventorySummary:
        """Stream the records into the summary (and the report file, when asked for)."""
        from airflow_provider_osscse.transport.inventory_report import InventorySummary

        summary = InventorySummary(prefix=self.prefix, current_versions=self.current_versions)
        with self.hook.inventory(self.prefix, self.bucket, concurrency=self.concurrency) as stream:
            summary.bucket = stream.bucket
            if self.report_path:
                self._write_report(stream, summary)
            else:
                for record in stream:
                    self._add(summary, record)
            summary.skipped_from(stream)
        return summary

    def _write_report(self, stream: InventoryStream, summary: InventorySummary) -> None:
        from airflow_provider_osscse.transport.atomic_file import atomic_write
        from airflow_provider_osscse.transport.inventory_report import RecordFormat

        lines = RecordFormat(self.report_format)
        with atomic_write(str(self.report_path)) as out:
            header = lines.header()
            if header is not None:
                out.write(header.encode() + b"\n")
            for record in stream:
                self._add(summary, record)
                out.write(lines.line(record).encode() + b"\n")

    def _add(self, summary: InventorySummary, record: InventoryRecord) -> None:
        summary.add(record)
        if record.error is not None and summary.errors <= MAX_LOGGED_ERRORS:
            self.log.warning("Inventory: %s: %s", record.uri, record.error)

    def _violations(self, result: Mapping[str, Any]) -> list[str]:
        """What the ``fail_on_*`` arguments flag in the summary, one phrase each."""
        checks = (
            (self.fail_on_error, result["errors"], "object(s) whose headers could not be read"),
            (self.fail_on_plaintext, result["plaintext"]["objects"], "plaintext object(s)"),
            (self.fail_on_untagged, result["untagged"]["objects"], "encrypted object(s) without an integrity tag"),
            (self.fail_on_stale, result["stale"]["objects"], "object(s) on a CMK version that is not current"),
        )
        return [f"{count} {what}" for enabled, count, what in checks if enabled and count]
