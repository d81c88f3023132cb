"""The records of an inventory (one object each, from its headers) and how they are streamed.

Why apart from :mod:`~airflow_provider_osscse.transport.inventory` (which reads the objects): these
are plain values and a bounded ordered map, with no oss2 and no I/O, so the operator checks its
arguments and the command line formats records without importing the transport's client when a DAG
is parsed or ``--help`` is asked for.

:func:`~.ordered_pool.ordered_bounded_map` is what keeps an inventory's memory constant: at most ``window`` items
are taken from a lazy listing and not yet yielded, whatever the number of objects, and results come
out in the listing's order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Any, Self, TypeVar

from airflow_provider_osscse.envelope.matdesc import dump_matdesc
from airflow_provider_osscse.transport.ordered_pool import DEFAULT_CONCURRENCY, MAX_CONCURRENCY, ordered_bounded_map
from airflow_provider_osscse.transport.results import ObjectInfo, oss_uri

Item = TypeVar("Item")
Result = TypeVar("Result")


#: ``integrity_tag`` values: a tag bound to the object's bucket and key, one that verifies under
#: any name, or none (official-SDK objects, a stripped tag, plaintext objects).
TAG_BOUND, TAG_UNBOUND, TAG_ABSENT = "bound", "unbound", "absent"

#: The columns of a record, in CSV order (also the keys of :meth:`InventoryRecord.row`).
RECORD_FIELDS = (
    "bucket",
    "key",
    "size",
    "last_modified",
    "encrypted",
    "wrap_alg",
    "cmk",
    "key_version",
    "integrity_tag",
    "content_type",
    "matdesc",
    "error",
)


def check_concurrency(concurrency: int) -> int:
    """``concurrency`` if it is between 1 and :data:`MAX_CONCURRENCY`; a ``ValueError`` otherwise."""
    if type(concurrency) is not int or not 1 <= concurrency <= MAX_CONCURRENCY:  # callers may be untyped
        raise ValueError(f"concurrency must be a whole number from 1 to {MAX_CONCURRENCY}, got {concurrency!r}")
    return concurrency


def cmk_label(info: ObjectInfo) -> str | None:
    """Who wrapped the data key, as far as the headers tell: the ``x-oss-meta-osscse-cmk`` identity;
    for objects of the official SDKs (which write no identity) ``matdesc:<compact JSON>`` when they
    carry a material description, else ``unidentified:<wrap-alg>``. ``None`` for plaintext objects."""
    if not info.encrypted:
        return None
    if info.cmk:
        return info.cmk
    if info.matdesc:
        return "matdesc:" + dump_matdesc(info.matdesc)
    return f"unidentified:{info.wrap_alg}"


def iso_time(http_date: str) -> str:
    """``Wed, 01 May 2024 12:00:00 GMT`` -> ``2024-05-01T12:00:00Z`` (sorts and parses everywhere);
    a value that is not an HTTP date is returned as it is."""
    try:
        moment = parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return http_date
    if moment.tzinfo is not None:  # "GMT" and numeric offsets; "-0000" (unknown zone) parses naive
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class InventoryRecord:
    """One object of an inventory: what its headers say (``info``), or why they could not be read."""

    bucket: str
    key: str
    info: ObjectInfo | None = None
    #: ``<ErrorType>: <one line>`` when the object's HEAD or headers failed; ``info`` is then ``None``.
    error: str | None = None

    @property
    def uri(self) -> str:
        return oss_uri(self.bucket, self.key)

    @property
    def cmk(self) -> str | None:
        """:func:`cmk_label` of the object (``None``: plaintext, or unknown after an error)."""
        return cmk_label(self.info) if self.info is not None else None

    @property
    def integrity_tag(self) -> str | None:
        """``bound`` | ``unbound`` | ``absent`` (``None`` after an error)."""
        if self.info is None:
            return None
        if not self.info.integrity_tag:
            return TAG_ABSENT
        return TAG_BOUND if self.info.integrity_bound else TAG_UNBOUND

    @property
    def size(self) -> int | None:
        """Bytes stored (equal to the plaintext size: AES-CTR adds none)."""
        return self.info.ciphertext_size if self.info is not None else None

    def row(self) -> dict[str, Any]:
        """The record as flat, JSON-able columns (:data:`RECORD_FIELDS`); ``None`` where unknown."""
        info = self.info
        return {
            "bucket": self.bucket,
            "key": self.key,
            "size": self.size,
            "last_modified": iso_time(info.last_modified) if info is not None else None,
            "encrypted": info.encrypted if info is not None else None,
            "wrap_alg": info.wrap_alg if info is not None else None,
            "cmk": self.cmk,
            "key_version": info.key_version if info is not None else None,
            "integrity_tag": self.integrity_tag,
            "content_type": info.content_type if info is not None else None,
            "matdesc": dict(info.matdesc) if info is not None and info.matdesc else None,
            "error": self.error,
        }


#: What a record task returns for an object left out of the records (see :class:`InventoryStream`).
VANISHED, FOLDER_MARKER = "vanished", "folder_marker"


class InventoryStream(Iterator[InventoryRecord]):
    """The records of one inventory, in listing order, produced as they are consumed.

    ``vanished`` (deleted between listing and HEAD) and ``folder_markers`` (zero-byte plaintext keys
    ending in ``/``) count the objects left out so far. Close it (or use it as a context manager) to
    stop early: HEADs not yet started are cancelled.
    """

    def __init__(self, results: Iterator[InventoryRecord | str], *, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.vanished = 0
        self.folder_markers = 0
        self._results = results

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> InventoryRecord:
        while True:
            result = next(self._results)
            if isinstance(result, InventoryRecord):
                return result
            if result == VANISHED:
                self.vanished += 1
            else:
                self.folder_markers += 1

    def close(self) -> None:
        close = getattr(self._results, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = [
    "DEFAULT_CONCURRENCY",
    "FOLDER_MARKER",
    "MAX_CONCURRENCY",
    "RECORD_FIELDS",
    "VANISHED",
    "InventoryRecord",
    "InventoryStream",
    "check_concurrency",
    "cmk_label",
    "ordered_bounded_map",
]
