"""OpenLineage datasets for the transfer operators, with lazy imports.

Why lazy: the openlineage provider is optional (extra ``openlineage``). Operators call
:func:`operator_lineage` from ``get_openlineage_facets_on_complete``, which Airflow only invokes
when that provider is installed and enabled, so importing it here at call time costs nothing
otherwise.

Naming follows the OpenLineage object-storage convention: namespace ``oss://<bucket>``, name the
object key (or prefix); local files namespace ``file://<hostname>``, name the absolute path; SQL
sources namespace ``<conn_type>://<host>[:port]`` or ``sqlite://<path>``, name the connection
schema/database (the query itself travels in the SQL job facet).
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from typing import Any


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


def sql_dataset(conn_type: str, host: str | None, port: int | None, database: str | None, table: str) -> tuple[str, str]:
    """(namespace, name) of a SQL source; ``table`` is the best name we have (often the query's FROM)."""
    authority = f"{host}:{port}" if host and port else (host or "localhost")
    namespace = f"{conn_type}://{authority}"
    name = f"{database}.{table}" if database else table
    return namespace, name


def _unique(pairs: Iterable[tuple[str, str]]) -> Sequence[tuple[str, str]]:
    seen: dict[tuple[str, str], None] = {}
    for pair in pairs:
        seen.setdefault(pair, None)
    return list(seen)
