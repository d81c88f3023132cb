"""Writers that turn DB-API cursor batches into byte chunks (CSV, JSON Lines, Parquet).

Why chunks and not files: a compliance export must never touch the worker's disk in plaintext. The
SQL export operator pulls rows with ``cursor.fetchmany`` and hands the resulting iterator of bytes
straight to ``EncryptedOSSHook.upload``, which encrypts as it streams. Each writer therefore only
sees one batch at a time and keeps at most one batch (Parquet: one row group) in memory.

No Airflow imports: these are plain functions, tested without a metadata database.
"""

from __future__ import annotations

import csv
import datetime as _dt
import decimal
import io
import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Export formats and the content type each object is stored with.
CONTENT_TYPES: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}


@dataclass
class ExportStats:
    """Filled in while the chunks are consumed: the row count and the column names."""

    columns: list[str] = field(default_factory=list)
    rows: int = 0


def _json_default(value: Any) -> Any:
    """JSON for the types DB-API drivers return that ``json`` does not know."""
    if isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return str(value)


def _csv_cell(value: Any) -> Any:
    """NULL as an empty field; strings and numbers as is; everything else as its JSON text."""
    if value is None:
        return ""
    if isinstance(value, (str, int, float)):
        return value
    return _json_default(value)


def _csv_chunks(
    columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], stats: ExportStats
) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    yield buffer.getvalue().encode("utf-8")
    for batch in batches:
        buffer.seek(0)
        buffer.truncate()
        for row in batch:
            writer.writerow([_csv_cell(v) for v in row])
        stats.rows += len(batch)
        if batch:
            yield buffer.getvalue().encode("utf-8")


def _jsonl_chunks(
    columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], stats: ExportStats
) -> Iterator[bytes]:
    for batch in batches:
        lines = [
            json.dumps(
                dict(zip(columns, row, strict=True)), default=_json_default, ensure_ascii=False, separators=(",", ":")
            )
            for row in batch
        ]
        stats.rows += len(batch)
        if lines:
            yield ("\n".join(lines) + "\n").encode("utf-8")


def _parquet_chunks(
    columns: Sequence[str], batches: Iterable[Sequence[Sequence[Any]]], stats: ExportStats
) -> Iterator[bytes]:
    """One Parquet row group per batch, written to an in-memory sink drained after each group."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(
            "Parquet export needs pyarrow: pip install pyarrow (or install this package with its 'parquet' extra)"
        ) from exc

    sink = _DrainableSink()
    writer: pq.ParquetWriter | None = None
    for batch in batches:
        if not batch:
            continue
        table = pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in batch])
        if writer is None:
            writer = pq.ParquetWriter(sink, table.schema)
        else:
            table = table.cast(writer.schema)
        writer.write_table(table)
        stats.rows += len(batch)
        chunk = sink.drain()
        if chunk:
            yield chunk
    if writer is None:  # no rows: still a valid, empty file with string columns
        schema = pa.schema([(c, pa.string()) for c in columns])
        writer = pq.ParquetWriter(sink, schema)
    writer.close()
    chunk = sink.drain()
    if chunk:
        yield chunk


class _DrainableSink(io.RawIOBase):
    """A write-only file object whose written bytes can be taken out (pyarrow writes, we drain)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def drain(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


_WRITERS = {"csv": _csv_chunks, "jsonl": _jsonl_chunks, "parquet": _parquet_chunks}


def export_chunks(
    export_format: str,
    columns: Sequence[str],
    batches: Iterable[Sequence[Sequence[Any]]],
    stats: ExportStats | None = None,
) -> Iterator[bytes]:
    """Serialise ``batches`` of rows (tuples in ``columns`` order) as byte chunks of ``export_format``.

    ``stats`` (if given) receives the columns and the running row count as chunks are consumed.
    """
    try:
        writer = _WRITERS[export_format]
    except KeyError:
        raise ValueError(f"export_format must be one of {sorted(_WRITERS)}, got {export_format!r}") from None
    stats = stats if stats is not None else ExportStats()
    stats.columns = list(columns)
    return writer(list(columns), batches, stats)


def cursor_batches(cursor: Any, batch_size: int) -> Iterator[Sequence[Sequence[Any]]]:
    """``cursor.fetchmany(batch_size)`` until it returns nothing."""
    while True:
        batch = cursor.fetchmany(batch_size)
        if not batch:
            return
        yield batch
