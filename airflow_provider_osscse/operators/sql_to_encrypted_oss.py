"""Compliance export: a SQL query's rows, streamed into one client-side-encrypted OSS object."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseHook

from airflow_provider_osscse.lineage import operator_lineage, oss_dataset, sql_datasets
from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields
from airflow_provider_osscse.operators.export_formats import CONTENT_TYPES, ExportStats, cursor_batches, export_chunks

if TYPE_CHECKING:
    from airflow.sdk import Context


class SqlToEncryptedOSSOperator(EncryptedOSSBaseOperator):
    """Run ``sql`` on any Airflow SQL connection and upload the rows encrypted, without plaintext on disk.

    Rows are fetched with ``cursor.fetchmany(batch_size)``, serialised batch by batch
    (:mod:`~airflow_provider_osscse.operators.export_formats`) and the byte chunks are handed as an
    iterator to ``EncryptedOSSHook.upload``, which encrypts while it uploads (multipart above the
    threshold). ``sql`` is templated (``{{ data_interval_start }}``, ...) and may be a ``.sql`` file.

    :param conn_id: any connection whose hook is a common-sql ``DbApiHook`` (sqlite, postgres, ...).
    :param export_format: ``csv`` (header row), ``jsonl`` or ``parquet`` (one row group per batch).
    :param parameters: bound query parameters (``cursor.execute(sql, parameters)``).
    :param cmk: the CMK reference that wraps the object's data key.
    :param metadata: extra user metadata (``x-oss-meta-*``) for the object. Never put secrets in it.

    ``oss_conn_id``, ``matdesc``, ``bind_integrity_tag``, ``multipart_threshold``, ``part_size`` and
    ``max_workers``: see :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator`.

    :return: ``UploadResult.to_xcom()`` plus ``rows``, ``columns`` and ``format``.
    """

    template_fields: Sequence[str] = osscse_template_fields(
        "sql", "parameters", "conn_id", "dest_key", "dest_bucket", "cmk", "metadata", "export_format"
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {"sql": "sql"}
    ui_color = "#ede7f6"

    def __init__(
        self,
        *,
        sql: str,
        conn_id: str,
        dest_key: str,
        cmk: str,
        dest_bucket: str | None = None,
        export_format: str = "csv",
        batch_size: int = 10_000,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.conn_id = conn_id
        self.dest_key = dest_key
        self.cmk = cmk
        self.dest_bucket = dest_bucket
        self.export_format = export_format
        self.batch_size = batch_size
        self.parameters = parameters
        self.metadata = metadata
        self._output: tuple[str, str] | None = None

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "cmk": self.cmk}

    def execute(self, context: Context) -> dict[str, Any]:
        if self.export_format not in CONTENT_TYPES:
            raise ValueError(f"export_format must be one of {sorted(CONTENT_TYPES)}, got {self.export_format!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        db_hook = BaseHook.get_connection(self.conn_id).get_hook()
        if not hasattr(db_hook, "get_conn"):
            raise TypeError(f"connection {self.conn_id!r} does not give a DB-API hook")
        stats = ExportStats()
        connection = db_hook.get_conn()
        try:
            cursor = connection.cursor()
            try:
                if self.parameters is None:
                    cursor.execute(self.sql)
                else:
                    cursor.execute(self.sql, self.parameters)
                columns = [d[0] for d in cursor.description or ()]
                chunks = export_chunks(self.export_format, columns, cursor_batches(cursor, self.batch_size), stats)
                result = self.hook.upload(
                    chunks,
                    self.dest_key,
                    self.dest_bucket,
                    metadata=self.metadata,
                    content_type=CONTENT_TYPES[self.export_format],
                )
            finally:
                cursor.close()
        finally:
            connection.close()
        self._output = (result.bucket, result.key)
        self.log.info(
            "Exported %d rows (%s) to %s, CMK %s %s",
            stats.rows,
            self.export_format,
            result.uri,
            result.cmk,
            result.key_version or "",
        )
        return result.to_xcom() | {"rows": stats.rows, "columns": stats.columns, "format": self.export_format}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from airflow.sdk import BaseHook as _BaseHook

        conn = _BaseHook.get_connection(self.conn_id)
        return operator_lineage(
            inputs=sql_datasets(self.sql or "", conn.conn_type, conn.host, conn.port, conn.schema),
            outputs=[oss_dataset(*self._output)] if self._output else [],
            sql=self.sql,
        )
