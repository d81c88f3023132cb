"""Inventory from headers alone: one record per object under a prefix, streamed in listing order.

Why: stale or unprotected objects (plaintext, untagged, wrapped by a retired CMK or an old CMK
version) should be found by their owner before an audit finds them, over millions of objects, without
unwrapping anything and without a single key-service call. So nothing here takes a CMK: each record
is :meth:`ListingOperations.inspect` of one object (the one reading of the envelope headers, from a
HEAD), made flat for JSON lines and CSV by :meth:`InventoryRecord.row` (the records and the bounded
map live in ``inventory_records``, which imports no oss2; the summary and formats in ``inventory_report``).

Memory stays constant whatever the object count: the listing is consumed page by page as records are
taken (``list_keys``), and :func:`ordered_bounded_map` keeps at most ``window`` HEADs submitted ahead
of the record being yielded, on ``concurrency`` threads. Nothing builds a list of the objects.

One object never hides the others: a key deleted between its listing and its HEAD is skipped and
counted (``vanished``), a zero-byte plaintext folder marker (``dir/``) is skipped and counted, and
any other failure of one object (malformed envelope headers, an access denial, OSS unavailable after
the retries) becomes a record with ``error`` set. Only what concerns every object (refused
credentials, a missing bucket, the listing itself failing) ends the stream with an exception.
"""

from __future__ import annotations

from collections.abc import Iterable

from airflow_provider_osscse.exceptions import (
    BucketNotFoundError,
    ObjectNotFoundError,
    OssCredentialsError,
    OSSCSEError,
)
from airflow_provider_osscse.transport.inventory_records import (
    DEFAULT_CONCURRENCY,
    FOLDER_MARKER,
    MAX_CONCURRENCY,
    RECORD_FIELDS,
    VANISHED,
    InventoryRecord,
    InventoryStream,
    check_concurrency,
    cmk_label,
    ordered_bounded_map,
)
from airflow_provider_osscse.transport.listing import ListingOperations


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:500]}" if lines else type(exc).__name__


class InventoryOperations(ListingOperations):
    """``inventory`` (a prefix) and ``inventory_of`` (any iterable of keys): records from HEADs only."""

    def inventory(
        self,
        prefix: str = "",
        *,
        bucket: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        start_after: str | None = None,
        end_at: str | None = None,
    ) -> InventoryStream:
        """A record per object under ``prefix`` (listed page by page), ``concurrency`` HEADs at a time;
        ``start_after``/``end_at`` make it one shard of the listing (``listing_shards``)."""
        keys = self.list_keys(prefix, bucket=bucket, start_after=start_after, end_at=end_at)
        return self._inventory(keys, bucket=bucket, concurrency=concurrency, prefix=prefix)

    def inventory_of(
        self, keys: Iterable[str], *, bucket: str | None = None, concurrency: int = DEFAULT_CONCURRENCY
    ) -> InventoryStream:
        """A record per key of ``keys`` (consumed lazily, at most ``2 * concurrency`` ahead), in order."""
        return self._inventory(keys, bucket=bucket, concurrency=concurrency, prefix="")

    def _inventory(self, keys: Iterable[str], *, bucket: str | None, concurrency: int, prefix: str) -> InventoryStream:
        check_concurrency(concurrency)
        bucket_name: str = self._bucket(bucket).bucket_name

        def record(key: str) -> InventoryRecord | str:
            return self._record(key, bucket, bucket_name)

        results = ordered_bounded_map(record, keys, concurrency=concurrency)
        return InventoryStream(results, bucket=bucket_name, prefix=prefix)

    def _record(self, key: str, bucket: str | None, bucket_name: str) -> InventoryRecord | str:
        """The record of one object, or why it is left out; raises only what concerns every object."""
        try:
            info = self.inspect(key, bucket=bucket)  # one HEAD; no CMK, nothing unwrapped
        except (BucketNotFoundError, OssCredentialsError):
            raise
        except ObjectNotFoundError:
            return VANISHED
        except OSSCSEError as exc:  # this object only: reported in its record, by the caller
            return InventoryRecord(bucket_name, key, error=_one_line(exc))
        if key.endswith("/") and info.ciphertext_size == 0 and not info.encrypted:
            return FOLDER_MARKER
        return InventoryRecord(bucket_name, key, info=info)


__all__ = [  # the records' names re-exported: one import for users of the transport
    "DEFAULT_CONCURRENCY",
    "MAX_CONCURRENCY",
    "RECORD_FIELDS",
    "InventoryOperations",
    "InventoryRecord",
    "InventoryStream",
    "check_concurrency",
    "cmk_label",
    "ordered_bounded_map",
]
