"""Encrypted object I/O: the envelope core and a CMK combined with oss2, for one OSS account.

Every operation unwraps (or wraps) the data key exactly once per object and reuses it for all parts
and ranges. The format is implemented once, in ``envelope``: writes go through ``EnvelopeWriter``
(integrity tag bound to bucket and key, in the metadata at the first request) and reads through
``EnvelopeReader`` (header checks, CMK choice, policy, and no plaintext before the tag verified).

One module per operation, combined here: ``upload`` (put), ``download`` (download, read, stream),
``copy_rewrap`` (copy, rewrap), ``listing`` (inspect, exists, list_keys, delete) and ``inventory``
(a record per object under a prefix, from HEADs only), ``bulk`` (many objects per call: put_many,
read_many, download_many, rewrap_many); shared state in ``transfer_base``.
"""

from __future__ import annotations

from airflow_provider_osscse.transport.bulk import BulkOperations
from airflow_provider_osscse.transport.copy_rewrap import CopyRewrapOperations
from airflow_provider_osscse.transport.download import DownloadOperations
from airflow_provider_osscse.transport.inventory import InventoryOperations
from airflow_provider_osscse.transport.listing import ListingOperations
from airflow_provider_osscse.transport.transfer_base import (
    STREAM_CHUNK,
    StoredObject,
    TransferConfig,
)
from airflow_provider_osscse.transport.upload import UploadOperations


class EncryptedObjects(
    BulkOperations,
    UploadOperations,
    DownloadOperations,
    CopyRewrapOperations,
    InventoryOperations,
    ListingOperations,
):
    """Put/get/read/stream/inspect/inventory/copy/rewrap encrypted objects; ``bucket_for(name)`` yields oss2 buckets.

    ``EncryptedObjects(bucket_for, TransferConfig(...), logger=..., progress_callback=...)``.
    """


__all__ = ["STREAM_CHUNK", "EncryptedObjects", "StoredObject", "TransferConfig"]
