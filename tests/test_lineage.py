"""Lineage names every table a SQL export reads, through the OpenLineage provider's SQL parser.

The parser is the one Airflow's own SQL operators use; the regular expression it replaced saw only
the first ``FROM``. Without the provider (an install without the ``openlineage`` extra, simulated by
hiding its module) the regular expression is the fallback. No services needed.
"""

from __future__ import annotations

import json
import sys

import pytest

from airflow_provider_osscse.lineage import UNKNOWN_TABLE, sql_datasets, sql_tables
from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator

JOIN = """
WITH recent AS (SELECT * FROM sales.orders WHERE created_at >= '2024-01-01')
SELECT r.id, c.name FROM recent r JOIN customers c ON c.id = r.customer
WHERE c.id NOT IN (SELECT customer FROM blocked)
"""


def test_every_table_of_a_join_cte_and_subquery_is_found_but_not_the_cte_name() -> None:
    assert sorted(sql_tables(JOIN, dialect="postgres")) == ["blocked", "customers", "sales.orders"]


def test_quoted_identifiers_are_unquoted_by_dialect() -> None:
    assert sql_tables('SELECT * FROM "Orders"', dialect="postgres") == ["Orders"]
    assert sql_tables("SELECT * FROM `orders`", dialect="mysql") == ["orders"]


def test_a_query_reading_no_table_is_named_query() -> None:
    assert sql_datasets("SELECT 1", "sqlite", "/data/x.db", None, None) == [("sqlite:///data/x.db", UNKNOWN_TABLE)]


def test_datasets_are_namespaced_by_connection_and_named_by_database_and_table() -> None:
    assert sorted(sql_datasets(JOIN, "postgres", "db.internal", 5432, "shop")) == [
        ("postgres://db.internal:5432", "shop.blocked"),
        ("postgres://db.internal:5432", "shop.customers"),
        ("postgres://db.internal:5432", "shop.sales.orders"),
    ]


def test_without_the_openlineage_provider_the_first_from_table_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.sqlparser", None)  # import fails
    assert sql_tables(JOIN) == ["sales.orders"]
    assert sql_tables('SELECT * FROM "sales"."orders"') == ["sales.orders"]
    assert sql_tables("SELECT 1") == []


def test_sql_export_lineage_lists_each_joined_table_as_an_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_LINEAGE_PG",
        json.dumps({"conn_type": "postgres", "host": "db.internal", "port": 5432, "schema": "shop"}),
    )
    op = SqlToEncryptedOSSOperator(
        task_id="export",
        conn_id="lineage_pg",
        sql=JOIN,
        dest_key="x.csv",
        cmk="vault-transit://vault_default/transit/orders",
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    assert sorted(d.name for d in lineage.inputs) == ["shop.blocked", "shop.customers", "shop.sales.orders"]
    assert {d.namespace for d in lineage.inputs} == {"postgres://db.internal:5432"}
    assert lineage.outputs == [] and lineage.job_facets["sql"].query == JOIN
