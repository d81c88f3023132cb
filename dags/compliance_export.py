"""Daily compliance export: one day's rows from a SQL database into one encrypted OSS object.

Scheduled daily (``CronDataIntervalTimetable``: the run for day D covers D) with catchup: each run
exports the rows of its data interval (``data_interval_start`` <= ``created_at`` < ``data_interval_end``),
so a backfill over N days writes N objects, ``exports/orders/<YYYY-MM-DD>.<format>``, and a re-run of a
day overwrites only that day's object.

| setting | environment | embedded default |
|---|---|---|
| SQL connection id | ``OSSCSE_EXPORT_SQL_CONN_ID`` | ``osscse_export_db`` (any DB-API connection: sqlite, postgres) |
| table | ``OSSCSE_EXPORT_TABLE`` | ``orders`` (columns ``id, customer, amount, created_at``) |
| bucket | ``OSSCSE_DEMO_BUCKET`` | ``osscse-demo`` |
| CMK | ``OSSCSE_EXPORT_CMK`` | ``vault-transit://vault_default/transit/osscse-demo`` |
| start / end date | ``OSSCSE_EXPORT_START`` / ``OSSCSE_EXPORT_END`` | ``2024-01-01`` / ``2024-01-04`` |
| format (param) | ``OSSCSE_EXPORT_FORMAT`` | ``csv`` (or ``jsonl``, ``parquet``) |

A scheduler backfills every day between the start and end dates.
"""

from __future__ import annotations

import os

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag

from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator

TABLE = os.environ.get("OSSCSE_EXPORT_TABLE", "orders")

# Interval bounds are rendered by Airflow (not user input) and compared as ISO text, which
# SQLite and PostgreSQL both order correctly for timestamps.
EXPORT_SQL = f"""
SELECT id, customer, amount, created_at
FROM {TABLE}
WHERE created_at >= '{{{{ data_interval_start.strftime('%Y-%m-%d %H:%M:%S') }}}}'
  AND created_at <  '{{{{ data_interval_end.strftime('%Y-%m-%d %H:%M:%S') }}}}'
ORDER BY id
"""


@dag(
    dag_id="compliance_export",
    # Interval semantics: the run for logical date D covers [D, D+1 day) and starts after D+1.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=pendulum.parse(os.environ.get("OSSCSE_EXPORT_START", "2024-01-01")),
    end_date=pendulum.parse(os.environ.get("OSSCSE_EXPORT_END", "2024-01-04")),
    catchup=True,
    max_active_runs=1,
    tags=["osscse", "example"],
    params={
        "format": Param(os.environ.get("OSSCSE_EXPORT_FORMAT", "csv"), enum=["csv", "jsonl", "parquet"]),
        "bucket": Param(os.environ.get("OSSCSE_DEMO_BUCKET", "osscse-demo"), type="string"),
        "cmk": Param(
            os.environ.get("OSSCSE_EXPORT_CMK", "vault-transit://vault_default/transit/osscse-demo"), type="string"
        ),
        "sql_conn_id": Param(os.environ.get("OSSCSE_EXPORT_SQL_CONN_ID", "osscse_export_db"), type="string"),
    },
    doc_md=__doc__,
)
def compliance_export() -> None:
    SqlToEncryptedOSSOperator(
        task_id="export_day",
        sql=EXPORT_SQL,
        conn_id="{{ params.sql_conn_id }}",
        export_format="{{ params.format }}",
        dest_key=f"exports/{TABLE}/{{{{ data_interval_start | ds }}}}.{{{{ params.format }}}}",
        dest_bucket="{{ params.bucket }}",
        cmk="{{ params.cmk }}",
        metadata={"export-table": TABLE, "export-day": "{{ data_interval_start | ds }}"},
        batch_size=500,
    )


compliance_export()
