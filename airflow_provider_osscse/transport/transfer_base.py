"""What every encrypted-object operation shares: the transfer settings, the HEAD of an object, and
the bucket factory, logger and progress reporting of one :class:`EncryptedObjects`.

The operations themselves live in one module each (``upload``, ``download``, ``copy_rewrap``,
``listing``) as mixins of :class:`TransferBase`; ``encrypted_objects.EncryptedObjects`` combines them.
None of them assembles the format: they read through ``envelope.EnvelopeReader`` and write through
``envelope.EnvelopeWriter``, so every guarantee of those two classes holds on every path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import oss2

from airflow_provider_osscse.envelope.headers import CSE_PREFIX, USER_META_PREFIX
from airflow_provider_osscse.envelope.integrity import IntegrityPolicy
from airflow_provider_osscse.envelope.integrity_tag import ObjectBinding
from airflow_provider_osscse.exceptions import ObjectNotFoundError
from airflow_provider_osscse.retry import RetryPolicy
from airflow_provider_osscse.transport.oss_errors import OssSite, translated
from airflow_provider_osscse.transport.progress import (
    ProgressCallback,
    ProgressReporter,
    TransferLogger,
)
from airflow_provider_osscse.transport.results import oss_uri
from airflow_provider_osscse.transport.retry import DEFAULT_RETRY

log = logging.getLogger("airflow_provider_osscse.transport.encrypted_objects")

#: Read size for sequential streams (single GETs, iterator sources, spools).
STREAM_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class TransferConfig:
    """Sizes, concurrency and policies of transfers; ``part_size`` is adjusted up to OSS's rules.

    ``integrity`` is the read policy (default ``require``: untagged objects are refused, and nothing
    is released before the tag verified). ``bind_integrity_tag`` binds every written tag to the
    object's bucket and key (default); ``False`` writes tags that verify under any name.
    """

    multipart_threshold: int = 32 * 2**20
    part_size: int = 8 * 2**20
    max_workers: int = 4
    integrity: IntegrityPolicy = IntegrityPolicy.REQUIRE
    allow_plaintext: bool = False
    retry: RetryPolicy = DEFAULT_RETRY
    bind_integrity_tag: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "integrity", IntegrityPolicy(self.integrity))


@dataclass(frozen=True)
class StoredObject:
    """The HEAD of an object: its headers (lower-cased), sizes and ETag."""

    bucket: str
    key: str
    headers: dict[str, str]
    size: int
    etag: str
    last_modified: str
    content_type: str | None

    @property
    def uri(self) -> str:
        return oss_uri(self.bucket, self.key)

    @property
    def binding(self) -> ObjectBinding:
        """The name the object's integrity tag is checked against (bucket and key as stored)."""
        return ObjectBinding(self.bucket, self.key)

    @property
    def user_metadata(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.startswith(USER_META_PREFIX)}


class TransferBase:
    """The state shared by the operation mixins; ``bucket_for(name)`` yields oss2 buckets.

    ``connection_name`` (the Airflow connection the credentials came from) is only named in errors,
    e.g. "check the access key secret of connection 'oss_default'".
    """

    def __init__(
        self,
        bucket_for: Callable[[str | None], oss2.Bucket],
        config: TransferConfig = TransferConfig(),
        *,
        logger: TransferLogger | None = None,
        progress_callback: ProgressCallback | None = None,
        connection_name: str | None = None,
    ) -> None:
        self._bucket_for = bucket_for
        self.config = config
        self._log: TransferLogger = logger or log
        self._progress_callback = progress_callback
        self._connection_name = connection_name

    def _bucket(self, name: str | None) -> oss2.Bucket:
        return self._bucket_for(name)

    def _progress(self, label: str, total: int | None) -> ProgressReporter:
        return ProgressReporter(label, total, logger=self._log, callback=self._progress_callback)

    def oss_site(self, operation: str, key: str | None, bucket: str | None) -> OssSite:
        """Where ``operation`` on ``key`` in ``bucket`` (``None``: the default bucket) goes, for its errors."""
        try:
            oss_bucket = self._bucket(bucket)
        except Exception:  # noqa: BLE001 - only decorates an error already being raised
            return OssSite(operation, bucket, key, connection=self._connection_name)
        return OssSite(
            operation,
            getattr(oss_bucket, "bucket_name", bucket),
            key,
            endpoint=getattr(oss_bucket, "endpoint", None),
            connection=self._connection_name,
            default_bucket=bucket is None,
        )

    @translated("head")
    def head(self, key: str, *, bucket: str | None = None) -> StoredObject:
        """HEAD the object; a missing object is :class:`ObjectNotFoundError` (a missing bucket
        :class:`~airflow_provider_osscse.exceptions.BucketNotFoundError`, one of them)."""
        oss_bucket = self._bucket(bucket)
        result = self.config.retry.call(lambda: oss_bucket.head_object(key), what=f"HEAD {key!r}")
        return stored_object(oss_bucket.bucket_name, key, result.headers, int(result.content_length or 0), result.etag)

    def _changed(self, stored: StoredObject) -> bool:
        """Whether the object is gone or has another ETag than when it was HEADed."""
        try:
            return self.head(stored.key, bucket=stored.bucket).etag != stored.etag
        except ObjectNotFoundError:
            return True


def stored_object(bucket: str, key: str, headers: Mapping[str, str], size: int, etag: str) -> StoredObject:
    """A :class:`StoredObject` from the response headers of a HEAD or of a whole-object GET."""
    lowered = {k.lower(): v for k, v in headers.items()}
    return StoredObject(
        bucket=bucket,
        key=key,
        headers=lowered,
        size=size,
        etag=etag,
        last_modified=lowered.get("last-modified", ""),
        content_type=lowered.get("content-type"),
    )


def part_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The CSE subset repeated on every UploadPart (the server checks it equals the Init's)."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(CSE_PREFIX)}
