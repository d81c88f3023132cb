"""``osscse inventory`` and ``osscse inspect`` of a prefix: one line per object, streamed, from HEADs only.

Why a module of its own: both print the hook's inventory stream (``hook.inventory``: bounded
concurrent HEADs, listing order, constant memory) rather than one object, and they share what a
stream needs on a terminal: data lines on stdout as records arrive, each object that could not be
read also named on stderr (the others still listed), exit status 1 when any was. Nothing is unwrapped
and no CMK is needed, so neither command takes ``--cmk``.

``inventory`` prints records (JSON lines or CSV, ``transport.inventory_report.RecordFormat``) or,
with ``--summary``, only the summary (one JSON document or a CSV table), and always a one-line
tally on stderr. ``inspect oss://BUCKET/PREFIX/`` prints ``ls -l``'s line per object, or with
``--json`` the single-object ``inspect --json`` document per object, one per line.

The transport (and so oss2) is imported when a command runs, not when the parser is built:
``--help`` and ``--version`` stay instant.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_provider_osscse.cli_terminal import CommandOutput
    from airflow_provider_osscse.hooks.encrypted_oss_operations import EncryptedOSSOperations
    from airflow_provider_osscse.transport.inventory_records import InventoryRecord
    from airflow_provider_osscse.transport.results import ObjectInfo


def concurrency_argument(text: str) -> int:
    """``--concurrency``: a usage error (exit 2) unless a whole number from 1 to the maximum."""
    from airflow_provider_osscse.transport.inventory_records import MAX_CONCURRENCY

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_CONCURRENCY}, got {text!r}")
    return value


def names_prefix(key: str) -> bool:
    """Whether an ``oss://BUCKET/KEY`` argument of ``inspect`` names a prefix: no key, or one ending in ``/``."""
    return key == "" or key.endswith("/")


def _reported(record: InventoryRecord, term: CommandOutput) -> bool:
    """Say on stderr that ``record``'s object could not be read; whether it failed."""
    if record.error is None:
        return False
    term.error(f"{record.uri}: {record.error}")
    return True


def inventory_each(
    hook: EncryptedOSSOperations,
    bucket: str,
    prefix: str,
    *,
    fmt: str,
    summary_only: bool,
    concurrency: int,
    current_versions: Mapping[str, str],
    term: CommandOutput,
) -> int:
    """Print a record per object (or only the summary) and the tally; the exit status."""
    from airflow_provider_osscse.transport.inventory_report import InventorySummary, RecordFormat, summary_text

    lines = RecordFormat(fmt)
    summary = InventorySummary(bucket=bucket, prefix=prefix, current_versions=current_versions)
    # CSV's header is printed once the listing answered (a missing bucket leaves stdout empty).
    header = None if summary_only else lines.header()
    with hook.inventory(prefix, bucket, concurrency=concurrency) as stream:
        for record in stream:
            if header is not None:
                term.result(header)
                header = None
            summary.add(record)
            _reported(record, term)
            if not summary_only:
                term.result(lines.line(record))
        summary.skipped_from(stream)
    if header is not None:  # no objects: the header alone, so the table still reads as CSV
        term.result(header)
    if summary_only:
        term.result(summary_text(summary, fmt).rstrip("\n"))
    term.note(f"oss://{bucket}/{prefix}: {summary.tally_line()}")
    return 1 if summary.errors else 0


def inspect_each(
    hook: EncryptedOSSOperations,
    bucket: str,
    prefix: str,
    *,
    as_json: bool,
    line: Callable[[ObjectInfo], str],
    term: CommandOutput,
    note_empty: bool = True,
) -> int:
    """``inspect`` of a prefix (and ``ls -l``): ``line(info)`` per object, or its ``inspect --json``
    document on one line; ``note_empty``: say on stderr when there is nothing (``ls`` stays silent)."""
    failed = shown = 0
    with hook.inventory(prefix, bucket) as stream:
        for record in stream:
            if _reported(record, term) or record.info is None:
                failed += 1
                continue
            shown += 1
            term.result(json.dumps(record.info.to_xcom(), sort_keys=True) if as_json else line(record.info))
    if note_empty and not shown and not failed:
        term.note(f"no objects under oss://{bucket}/{prefix}")
    return 1 if failed else 0
