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

A run triggered by hand without a logical date (Airflow 3's default for ``airflow dags trigger``
and the UI's Trigger button) has no data interval; it exports the last whole UTC day before the
run (the day before its ``run_after``), which is what a scheduled run made at that moment covers.
To export another day by hand, trigger with that day's logical date (``--logical-date``): the
run then covers the whole day before it, like a scheduled run.
"""

from __future__ import annotations

import os
from typing import Any

import pendulum
from airflow.sdk import CronDataIntervalTimetable, Param, dag
from jinja2 import pass_context

from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator

TABLE = os.environ.get("OSSCSE_EXPORT_TABLE", "orders")


def _date_setting(variable: str, default: str) -> pendulum.DateTime:
    """A start/end date from the environment; a value that is not a date says which variable to fix."""
    parsed = pendulum.parse(os.environ.get(variable, default), tz="UTC")
    if not isinstance(parsed, pendulum.DateTime):
        raise TypeError(f"{variable} must be a date such as {default}, got {parsed!r}")
    return parsed


def _export_window(context: Any) -> tuple[pendulum.DateTime, pendulum.DateTime]:
    """The run's data interval, or (no logical date, so no interval) the last whole UTC day before
    the run's ``run_after``: a hand-triggered run still names one day, never an undefined one."""
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if start is not None and end is not None:
        return pendulum.instance(start), pendulum.instance(end)
    run_after = pendulum.instance(context["dag_run"].run_after).in_timezone("UTC")
    day_end = run_after.start_of("day")
    return day_end.subtract(days=1), day_end


@pass_context
def export_start(context: Any) -> pendulum.DateTime:
    """Start of the exported window (a template macro: ``{{ export_start() }}``)."""
    return _export_window(context)[0]


@pass_context
def export_end(context: Any) -> pendulum.DateTime:
    """End (exclusive) of the exported window (a template macro: ``{{ export_end() }}``)."""
    return _export_window(context)[1]


# Window bounds are computed from the run (not user input) and compared as ISO text, which
# SQLite and PostgreSQL both order correctly for timestamps.
EXPORT_SQL = f"""
SELECT id, customer, amount, created_at
FROM {TABLE}
WHERE created_at >= '{{{{ export_start().strftime('%Y-%m-%d %H:%M:%S') }}}}'
  AND created_at <  '{{{{ export_end().strftime('%Y-%m-%d %H:%M:%S') }}}}'
ORDER BY id
"""


@dag(
    dag_id="compliance_export",
    # Interval semantics: the run for logical date D covers [D, D+1 day) and starts after D+1.
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=_date_setting("OSSCSE_EXPORT_START", "2024-01-01"),
    end_date=_date_setting("OSSCSE_EXPORT_END", "2024-01-04"),
    catchup=True,
    max_active_runs=1,
    tags=["osscse", "example"],
    user_defined_macros={"export_start": export_start, "export_end": export_end},
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
        dest_key=f"exports/{TABLE}/{{{{ export_start() | ds }}}}.{{{{ params.format }}}}",
        dest_bucket="{{ params.bucket }}",
        cmk="{{ params.cmk }}",
        metadata={"export-table": TABLE, "export-day": "{{ export_start() | ds }}"},
        batch_size=500,
    )


compliance_export()
