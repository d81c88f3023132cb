"""Compliance export: a SQL query's rows, streamed into one client-side-encrypted OSS object."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook, BaseOperator

from airflow_provider_osscse.lineage import operator_lineage, oss_dataset, sql_dataset
from airflow_provider_osscse.operators.export_formats import CONTENT_TYPES, ExportStats, cursor_batches, export_chunks

if TYPE_CHECKING:
    from airflow.sdk import Context

_FROM_TABLE = re.compile(r"\bfrom\s+([A-Za-z_][\w.\"]*)", re.IGNORECASE)


class SqlToEncryptedOSSOperator(BaseOperator):
    """Run ``sql`` on any Airflow SQL connection and upload the rows encrypted, without plaintext on disk.

    Rows are fetched with ``cursor.fetchmany(batch_size)``, serialised batch by batch
    (:mod:`~airflow_provider_osscse.operators.export_formats`) and the byte chunks are handed as an
    iterator to ``EncryptedOSSHook.upload``, which encrypts while it uploads (multipart above the
    threshold). ``sql`` is templated (``{{ data_interval_start }}``, ...) and may be a ``.sql`` file.

    :param conn_id: any connection whose hook is a common-sql ``DbApiHook`` (sqlite, postgres, ...).
    :param export_format: ``csv`` (header row), ``jsonl`` or ``parquet`` (one row group per batch).
    :param parameters: bound query parameters (``cursor.execute(sql, parameters)``).
    :param matdesc: material description entries written to the objects' ``client-side-encryption-matdesc``
        (templated); ``None`` (default) means the OSS connection's ``matdesc`` extra, else none, which
        is what official SDK readers built without a matdesc expect.
    :param bind_integrity_tag: ``True`` (default) binds each object's integrity tag to its bucket and
        key, so the object swapped or replayed under another name fails verification. ``False``
        writes unbound tags, giving that up; only for objects that other tools copy or move.
    :return: ``UploadResult.to_xcom()`` plus ``rows``, ``columns`` and ``format``.
    """

    template_fields: Sequence[str] = (
        "sql", "parameters", "conn_id", "dest_key", "dest_bucket", "cmk", "oss_conn_id", "metadata", "export_format",
        "matdesc",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#ede7f6"

    def __init__(
        self,
        *,
        sql: str,
        conn_id: str,
        dest_key: str,
        cmk: str,
        dest_bucket: str | None = None,
        oss_conn_id: str = "oss_default",
        export_format: str = "csv",
        batch_size: int = 10_000,
        parameters: Mapping[str, Any] | Sequence[Any] | None = None,
        metadata: Mapping[str, str] | None = None,
        multipart_threshold: int = 32 * 2**20,
        part_size: int = 8 * 2**20,
        max_workers: int = 4,
        matdesc: Mapping[str, str] | None = None,
        bind_integrity_tag: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.sql = sql
        self.conn_id = conn_id
        self.dest_key = dest_key
        self.cmk = cmk
        self.dest_bucket = dest_bucket
        self.oss_conn_id = oss_conn_id
        self.export_format = export_format
        self.batch_size = batch_size
        self.parameters = parameters
        self.metadata = metadata
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_workers = max_workers
        self.matdesc = matdesc
        self.bind_integrity_tag = bind_integrity_tag
        self._output: tuple[str, str] | None = None

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        if self.export_format not in CONTENT_TYPES:
            raise ValueError(f"export_format must be one of {sorted(CONTENT_TYPES)}, got {self.export_format!r}")
        if self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        db_hook = BaseHook.get_connection(self.conn_id).get_hook()
        if not hasattr(db_hook, "get_conn"):
            raise TypeError(f"connection {self.conn_id!r} does not give a DB-API hook")
        oss_hook = EncryptedOSSHook(
            self.oss_conn_id, cmk=self.cmk, multipart_threshold=self.multipart_threshold,
            part_size=self.part_size, max_workers=self.max_workers,
            matdesc=self.matdesc, bind_integrity_tag=self.bind_integrity_tag,
        )
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
                result = oss_hook.upload(
                    chunks, self.dest_key, self.dest_bucket,
                    metadata=self.metadata, content_type=CONTENT_TYPES[self.export_format],
                )
            finally:
                cursor.close()
        finally:
            connection.close()
        self._output = (result.bucket, result.key)
        self.log.info("Exported %d rows (%s) to %s, CMK %s %s", stats.rows, self.export_format, result.uri,
                      result.cmk, result.key_version or "")
        return result.to_xcom() | {"rows": stats.rows, "columns": stats.columns, "format": self.export_format}

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        from airflow.sdk import BaseHook as _BaseHook

        conn = _BaseHook.get_connection(self.conn_id)
        match = _FROM_TABLE.search(self.sql or "")
        table = match.group(1).strip('"') if match else "query"
        source = sql_dataset(conn.conn_type, conn.host, conn.port, conn.schema, table)
        return operator_lineage(
            inputs=[source],
            outputs=[oss_dataset(*self._output)] if self._output else [],
            sql=self.sql,
        )
