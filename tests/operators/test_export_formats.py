"""Cursor batches become valid CSV / JSON Lines / Parquet bytes, one chunk per batch."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import sqlite3

import pyarrow.parquet as pq
import pytest

from airflow_provider_osscse.operators.export_formats import ExportStats, cursor_batches, export_chunks

COLUMNS = ["id", "customer", "amount", "created_at"]
# Naive on purpose: a TIMESTAMP WITHOUT TIME ZONE column comes back naive and is exported as it is.
ROWS = [
    (1, "acme", decimal.Decimal("10.50"), dt.datetime(2024, 1, 1, 8, 0)),  # noqa: DTZ001
    (2, 'glo,bex "q"', None, dt.datetime(2024, 1, 1, 9, 30)),  # noqa: DTZ001
    (3, "ünïcode", decimal.Decimal("0.01"), dt.datetime(2024, 1, 1, 23, 59)),  # noqa: DTZ001
]


def _batches(size: int) -> list[list[tuple]]:
    return [ROWS[i : i + size] for i in range(0, len(ROWS), size)]


def test_csv_has_header_and_every_row_and_counts_them() -> None:
    stats = ExportStats()
    chunks = list(export_chunks("csv", COLUMNS, _batches(2), stats))
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert rows[0] == COLUMNS
    assert rows[1] == ["1", "acme", "10.50", "2024-01-01T08:00:00"]
    assert rows[2][1] == 'glo,bex "q"' and rows[2][2] == ""
    assert stats.rows == 3 and stats.columns == COLUMNS
    assert len(chunks) == 3  # header + one chunk per batch


def test_jsonl_writes_one_object_per_row_with_iso_dates_and_decimal_text() -> None:
    lines = b"".join(export_chunks("jsonl", COLUMNS, _batches(1))).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [1, 2, 3]
    assert json.loads(lines[0]) == {"id": 1, "customer": "acme", "amount": "10.50", "created_at": "2024-01-01T08:00:00"}
    assert json.loads(lines[2])["customer"] == "ünïcode"


def test_parquet_is_one_readable_file_with_a_row_group_per_batch() -> None:
    stats = ExportStats()
    data = b"".join(export_chunks("parquet", COLUMNS, _batches(2), stats))
    table = pq.read_table(io.BytesIO(data))
    assert table.column_names == COLUMNS
    assert table.column("id").to_pylist() == [1, 2, 3]
    assert pq.ParquetFile(io.BytesIO(data)).num_row_groups == 2
    assert stats.rows == 3


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_empty_result_still_gives_a_valid_object(fmt: str) -> None:
    data = b"".join(export_chunks(fmt, COLUMNS, iter([])))
    if fmt == "csv":
        assert data == b"id,customer,amount,created_at\n"
    elif fmt == "jsonl":
        assert data == b""
    else:
        assert pq.read_table(io.BytesIO(data)).num_rows == 0


def test_unknown_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="xml"):
        export_chunks("xml", COLUMNS, [])


def test_cursor_batches_pulls_with_fetchmany_until_exhausted() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("create table t (n integer)")
    db.executemany("insert into t values (?)", [(i,) for i in range(7)])
    cursor = db.execute("select n from t order by n")
    assert [len(b) for b in cursor_batches(cursor, 3)] == [3, 3, 1]
