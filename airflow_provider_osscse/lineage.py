"""OpenLineage datasets for the transfer operators, with lazy imports.

Why lazy: the openlineage provider is optional (extra ``openlineage``). Operators call
:func:`operator_lineage` from ``get_openlineage_facets_on_complete``, which Airflow only invokes
when that provider is installed and enabled, so importing it here at call time costs nothing
otherwise.

Naming follows the OpenLineage object-storage convention: namespace ``oss://<bucket>``, name the
object key (or prefix); local files namespace ``file://<hostname>``, name the absolute path; SQL
sources namespace ``<conn_type>://<host>[:port]`` or ``sqlite://<path>``, name the connection
schema/database and the table (the query itself travels in the SQL job facet).

The tables a query reads are found by the OpenLineage provider's SQL parser (``SQLParser``, the
parser Airflow's own SQL operators use: CTEs, joins and subqueries, quoting per dialect) when that
provider is installed; without it, a regular expression takes the first ``FROM`` table, which is
the best a DAG without the provider gets (and Airflow then never asks for lineage anyway).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable, Sequence
from typing import Any

#: Fallback without the OpenLineage provider: the first ``FROM <table>`` of the query.
_FROM_TABLE = re.compile(r"\bfrom\s+(\"?[A-Za-z_][\w.\"]*)", re.IGNORECASE)
#: The name of a SQL source whose tables could not be told (e.g. ``SELECT 1``).
UNKNOWN_TABLE = "query"


def oss_dataset(bucket: str, key: str) -> tuple[str, str]:
    """(namespace, name) of an OSS object or prefix."""
    return f"oss://{bucket}", key


def file_dataset(path: str) -> tuple[str, str]:
    """(namespace, name) of a local file on this worker."""
    return f"file://{socket.gethostname()}", path


def operator_lineage(
    inputs: Iterable[tuple[str, str]] = (),
    outputs: Iterable[tuple[str, str]] = (),
    *,
    sql: str | None = None,
) -> Any:
    """An ``OperatorLineage`` from (namespace, name) pairs, de-duplicated, order kept."""
    from airflow.providers.common.compat.openlineage.facet import Dataset, SQLJobFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    job_facets: dict[str, Any] = {"sql": SQLJobFacet(query=sql)} if sql else {}
    return OperatorLineage(
        inputs=[Dataset(namespace=ns, name=name) for ns, name in _unique(inputs)],
        outputs=[Dataset(namespace=ns, name=name) for ns, name in _unique(outputs)],
        job_facets=job_facets,
    )


def sql_dataset(
    conn_type: str, host: str | None, port: int | None, database: str | None, table: str
) -> tuple[str, str]:
    """(namespace, name) of a SQL source; ``table`` is the best name we have (often the query's FROM)."""
    authority = f"{host}:{port}" if host and port else (host or "localhost")
    namespace = f"{conn_type}://{authority}"
    name = f"{database}.{table}" if database else table
    return namespace, name


def sql_tables(sql: str, dialect: str | None = None) -> list[str]:
    """The tables ``sql`` reads (``schema.table`` when qualified), in the parser's order.

    Through the OpenLineage provider's ``SQLParser`` when it is installed, else the first ``FROM``
    table found by a regular expression; ``[]`` when none is found.
    """
    try:
        from airflow.providers.openlineage.sqlparser import SQLParser
    except ImportError:
        match = _FROM_TABLE.search(sql)
        return [match.group(1).replace('"', "")] if match else []
    meta = SQLParser(dialect=dialect).parse(sql)
    return [table.qualified_name for table in meta.in_tables] if meta is not None else []


def sql_datasets(
    sql: str, conn_type: str | None, host: str | None, port: int | None, database: str | None
) -> list[tuple[str, str]]:
    """(namespace, name) of every table ``sql`` reads on this connection; one named ``query`` if none.

    The connection type is the parser's dialect (``postgres``, ``sqlite``, ``mysql``, ...; one it
    does not know is parsed as generic SQL).
    """
    tables = sql_tables(sql, dialect=conn_type or None) or [UNKNOWN_TABLE]
    return [sql_dataset(conn_type or "sql", host, port, database, table) for table in tables]


def _unique(pairs: Iterable[tuple[str, str]]) -> Sequence[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for pair in pairs:
        seen.setdefault(pair, None)
    return list(seen)
