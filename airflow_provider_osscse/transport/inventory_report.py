"""What an inventory adds up to, and how its records and summary are written (JSON lines, CSV, JSON).

Why apart from :mod:`~airflow_provider_osscse.transport.inventory`: that module reads objects; this
one only counts and formats what it read, with no I/O of its own (and no oss2 import), so the command line, the operator
and a user's own script write the same columns and the same summary.

:class:`InventorySummary` consumes records in constant memory: counts and bytes per CMK and per
(CMK, version), plaintext, untagged and unbound encrypted objects, stale ones against an optional
``current_versions`` policy, errors; it keeps no record (the first :data:`MAX_LISTED_ERRORS`
errors are named, the rest only counted), so its ``to_dict()`` is small enough for an XCom.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_osscse.transport.inventory_records import (
    RECORD_FIELDS,
    TAG_ABSENT,
    TAG_UNBOUND,
    InventoryRecord,
    InventoryStream,
)

#: Record and summary formats.
FORMATS = ("jsonl", "csv")
#: Errors named in a summary (with key and reason); the count is always complete.
MAX_LISTED_ERRORS = 20
#: The ``key_version`` shown for objects whose CMK names no version (RSA, official-SDK objects).
NO_VERSION = "-"
#: The columns of a summary in CSV.
SUMMARY_FIELDS = ("measure", "cmk", "key_version", "objects", "bytes")
#: The object classes a summary counts (``measure`` in CSV), in the order they are written.
MEASURES = ("all", "encrypted", "plaintext", "untagged", "unbound", "stale")


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return fmt


def _version_name(version: str) -> str:
    """``v3`` and ``3`` name the same version (Transit writes ``vN``; a policy may say ``N``)."""
    return version[1:] if version.startswith("v") and version[1:].isdigit() else version


def _is_current(found: str | None, current: str) -> bool:
    return found is not None and _version_name(found) == _version_name(current)


class _Tally:
    __slots__ = ("bytes", "objects")

    def __init__(self) -> None:
        self.objects = 0
        self.bytes = 0

    def add(self, size: int) -> None:
        self.objects += 1
        self.bytes += size

    def to_dict(self) -> dict[str, int]:
        return {"objects": self.objects, "bytes": self.bytes}


class InventorySummary:
    """Counts of an inventory, fed one record at a time (:meth:`add`), in constant memory.

    :param current_versions: optional policy, CMK identity (as in the records' ``cmk`` column) ->
        its current version; an encrypted object of such a CMK on another version (or on none) is
        counted ``stale``. Objects of CMKs not named are never stale.
    """

    def __init__(
        self, *, bucket: str | None = None, prefix: str = "", current_versions: Mapping[str, str] | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.current_versions = {str(k): str(v) for k, v in (current_versions or {}).items()}
        self.measures = {name: _Tally() for name in MEASURES}
        self.by_cmk: dict[str, _Tally] = {}
        self.by_version: dict[tuple[str, str], _Tally] = {}
        self.errors = 0
        self.listed_errors: list[dict[str, str]] = []
        self.vanished = 0
        self.folder_markers = 0

    def add(self, record: InventoryRecord) -> None:
        if record.info is None:
            self.errors += 1
            if len(self.listed_errors) < MAX_LISTED_ERRORS:
                self.listed_errors.append({"key": record.key, "error": record.error or "unknown error"})
            return
        size = record.size or 0
        self.measures["all"].add(size)
        cmk = record.cmk
        if cmk is None:
            self.measures["plaintext"].add(size)
            return
        self.measures["encrypted"].add(size)
        if record.integrity_tag == TAG_ABSENT:
            self.measures["untagged"].add(size)
        elif record.integrity_tag == TAG_UNBOUND:
            self.measures["unbound"].add(size)
        version = record.info.key_version
        current = self.current_versions.get(cmk)
        if current is not None and not _is_current(version, current):
            self.measures["stale"].add(size)
        self.by_cmk.setdefault(cmk, _Tally()).add(size)
        self.by_version.setdefault((cmk, version or NO_VERSION), _Tally()).add(size)

    def consume(self, stream: Iterable[InventoryRecord]) -> InventorySummary:
        """Add every record of ``stream`` (and, from an :class:`InventoryStream`, what it left out)."""
        for record in stream:
            self.add(record)
        self.skipped_from(stream)
        return self

    def skipped_from(self, stream: Iterable[InventoryRecord]) -> None:
        """Take the counts of objects left out (vanished, folder markers) from a finished stream."""
        if isinstance(stream, InventoryStream):
            self.vanished, self.folder_markers = stream.vanished, stream.folder_markers
            self.bucket = self.bucket or stream.bucket
            self.prefix = self.prefix or stream.prefix

    def to_dict(self) -> dict[str, Any]:
        """The summary as a small JSON-able dict (per-CMK and per-version entries sorted by name)."""
        by_cmk: dict[str, Any] = {}
        for cmk in sorted(self.by_cmk):
            versions = {v: t.to_dict() for (c, v), t in sorted(self.by_version.items()) if c == cmk}
            by_cmk[cmk] = {**self.by_cmk[cmk].to_dict(), "versions": versions}
        out: dict[str, Any] = {"bucket": self.bucket, "prefix": self.prefix}
        out.update({name: tally.to_dict() for name, tally in self.measures.items()})
        out.update(
            {
                "current_versions": dict(self.current_versions),
                "by_cmk": by_cmk,
                "errors": self.errors,
                "listed_errors": list(self.listed_errors),
                "vanished": self.vanished,
                "folder_markers": self.folder_markers,
            }
        )
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The summary as long-format rows (:data:`SUMMARY_FIELDS`), for CSV and charts."""
        rows: list[dict[str, Any]] = [
            {"measure": name, "cmk": "", "key_version": "", **tally.to_dict()} for name, tally in self.measures.items()
        ]
        rows += [
            {"measure": name, "cmk": "", "key_version": "", "objects": getattr(self, name), "bytes": ""}
            for name in ("errors", "vanished", "folder_markers")
        ]
        rows += [
            {"measure": "cmk", "cmk": cmk, "key_version": "", **self.by_cmk[cmk].to_dict()}
            for cmk in sorted(self.by_cmk)
        ]
        rows += [
            {"measure": "cmk_version", "cmk": cmk, "key_version": version, **tally.to_dict()}
            for (cmk, version), tally in sorted(self.by_version.items())
        ]
        return rows

    def tally_line(self) -> str:
        """One line for people: ``N objects: N encrypted (N untagged), N plaintext, N errors``."""
        m = self.measures
        stale = f", {m['stale'].objects} stale" if self.current_versions else ""
        return (
            f"{m['all'].objects} objects: {m['encrypted'].objects} encrypted ({m['untagged'].objects} untagged, "
            f"{m['unbound'].objects} unbound tag{stale}), {m['plaintext'].objects} plaintext, {self.errors} errors"
        )


#: A text cell starting with one of these is a formula to a spreadsheet (CSV injection): object keys
#: and CMK headers are written by whoever may write to the bucket, and inventories are opened by auditors.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_line(values: Iterable[Any]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow([_inert("" if v is None else v) for v in values])
    return buffer.getvalue()


def _inert(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate gets a leading ``'`` (OWASP's advice), so it opens as
    text; numbers and the lone ``-`` of :data:`NO_VERSION` are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS) and value != NO_VERSION:
        return "'" + value
    return value


def _csv_cell(value: Any) -> Any:
    """Booleans as ``true``/``false`` and mappings as compact JSON, so every cell reads back unambiguously."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


class RecordFormat:
    """Records as lines of text: :meth:`header` (CSV's column names; ``None`` for JSON lines), then
    :meth:`line` per record. JSON lines carry the same keys as the CSV columns."""

    def __init__(self, fmt: str = "jsonl") -> None:
        self.fmt = check_format(fmt)

    def header(self) -> str | None:
        return _csv_line(RECORD_FIELDS) if self.fmt == "csv" else None

    def line(self, record: InventoryRecord) -> str:
        row = record.row()
        if self.fmt == "csv":
            return _csv_line(_csv_cell(row[name]) for name in RECORD_FIELDS)
        return json.dumps(row, sort_keys=False, separators=(",", ":"))


def summary_text(summary: InventorySummary, fmt: str = "jsonl") -> str:
    """The summary as one JSON document (``jsonl``, indented) or a CSV table (``csv``), newline-terminated."""
    if check_format(fmt) == "csv":
        lines = [_csv_line(SUMMARY_FIELDS), *(_csv_line(row[f] for f in SUMMARY_FIELDS) for row in summary.rows())]
        return "\n".join(lines) + "\n"
    return json.dumps(summary.to_dict(), indent=2) + "\n"


__all__ = [
    "FORMATS",
    "MAX_LISTED_ERRORS",
    "SUMMARY_FIELDS",
    "InventorySummary",
    "RecordFormat",
    "check_format",
    "summary_text",
]
