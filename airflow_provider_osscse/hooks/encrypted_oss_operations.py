"""What ``EncryptedOSSHook`` does, apart from being an Airflow hook: the same class without Airflow.

Why apart: the hook subclasses Airflow's ``BaseHook``, and importing Airflow costs about three seconds
and 130 MB per process. The ``osscse`` command line performs one operation per process, so it uses
this class with its own connection lookup and answers in well under a second (see ``cli_connections``).
Everything the hook does lives here once; :class:`~airflow_provider_osscse.hooks.encrypted_oss.EncryptedOSSHook`
is ``EncryptedOSSOperations`` plus ``BaseHook`` (which supplies the connection lookup and the logger).

A subclass provides ``_connection(conn_id)`` (an
:data:`~airflow_provider_osscse.airflow_connections.ConnectionLookup`) and may provide ``_logger``.

The class holds configuration only; the oss2 client is built on first use and reused (with its
connection pool) for every call, and CMKs are resolved from their reference strings lazily too, so
constructing it in a DAG file costs nothing and touches no network.

Defaults keep the product's two promises: objects are readable by the official SDKs (the matdesc is
exactly the one the user configured, none by default) and tampering never passes (integrity
``require``: untagged objects are refused, no plaintext is released before the tag verified, and
every tag is bound to the object's bucket and key). See docs/hook.md.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, BinaryIO

import oss2

from airflow_provider_osscse.envelope.integrity import IntegrityPolicy
from airflow_provider_osscse.envelope.keywrap import Cmk
from airflow_provider_osscse.envelope.matdesc import dump_matdesc
from airflow_provider_osscse.exceptions import CmkReferenceError, Remedy
from airflow_provider_osscse.keys.data_key_cache import DataKeyCacheLimits
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.transport.abandoned_uploads import MultipartUploads
from airflow_provider_osscse.transport.encrypted_objects import (
    EncryptedObjects,
    TransferConfig,
)
from airflow_provider_osscse.transport.inventory_records import InventoryStream
from airflow_provider_osscse.transport.ordered_pool import DEFAULT_CONCURRENCY
from airflow_provider_osscse.transport.oss_client import OssClientFactory, OssSettings
from airflow_provider_osscse.transport.oss_errors import OssSite, translate_oss_error
from airflow_provider_osscse.transport.progress import ProgressCallback, TransferLogger
from airflow_provider_osscse.transport.results import (
    DownloadResult,
    ObjectInfo,
    ObjectOutcome,
    PlaintextBytes,
    PlaintextStream,
    RewrapResult,
    UploadResult,
)
from airflow_provider_osscse.transport.upload_source import UploadSource

if TYPE_CHECKING:
    from airflow_provider_osscse.airflow_connections import ConnectionFields


class EncryptedOSSOperations:
    """Upload, download, read, inspect, copy, list and rewrap client-side encrypted OSS objects.

    The parameters are documented on :class:`~airflow_provider_osscse.hooks.encrypted_oss.EncryptedOSSHook`.
    """

    def _connection(self, conn_id: str) -> ConnectionFields:
        """The connection ``conn_id``: Airflow's lookup in the hook, the command line's in ``osscse``."""
        raise NotImplementedError

    @property
    def _logger(self) -> TransferLogger:
        """Where warnings go: the task log in the hook, stderr in ``osscse``."""
        return logging.getLogger("airflow_provider_osscse")

    def __init__(
        self,
        oss_conn_id: str = "oss_default",
        *,
        cmk: str | None = None,
        decrypt_cmks: Sequence[str] = (),
        integrity: str | IntegrityPolicy | None = None,
        matdesc: Mapping[str, str] | None = None,
        bind_integrity_tag: bool = True,
        allow_plaintext: bool = False,
        multipart_threshold: int = 32 * 2**20,
        part_size: int = 8 * 2**20,
        max_workers: int = 4,
        progress_callback: ProgressCallback | None = None,
        data_key_cache: DataKeyCacheLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # BaseHook (logger_name) in the hook; object otherwise
        self.oss_conn_id = oss_conn_id
        self.cmk = cmk
        self.decrypt_cmks = tuple(decrypt_cmks)
        #: The policy given to the constructor; ``None``: the connection's default (see :attr:`integrity_policy`).
        self.integrity: IntegrityPolicy | None = IntegrityPolicy(integrity) if integrity is not None else None
        if matdesc is not None:
            dump_matdesc(matdesc)  # str -> str only, checked before any network use
        #: The matdesc given to the constructor; ``None``: the connection's default (see :attr:`write_matdesc`).
        self.matdesc: dict[str, str] | None = dict(matdesc) if matdesc is not None else None
        self.bind_integrity_tag = bind_integrity_tag
        self._unbound_warned = False
        self.allow_plaintext = allow_plaintext
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_workers = max_workers
        self.progress_callback = progress_callback
        self.data_key_cache = data_key_cache
        self._cmk_cache: dict[str, Cmk] = {}
        self._cmk_lock = threading.Lock()

    # ------------------------------------------------------------------ clients
    @cached_property
    def _settings(self) -> OssSettings:
        conn = self._connection(self.oss_conn_id)
        return OssSettings.from_connection_fields(conn.schema, conn.extra_dejson)

    @cached_property
    def _clients(self) -> OssClientFactory:
        return OssClientFactory(self._settings, pool_size=max(10, 2 * self.max_workers))

    @property
    def integrity_policy(self) -> IntegrityPolicy:
        """The read policy in force: the hook's ``integrity``, else the connection extra, else ``require``."""
        if self.integrity is not None:
            return self.integrity
        return self._settings.integrity or IntegrityPolicy.REQUIRE

    @property
    def write_matdesc(self) -> dict[str, str]:
        """The matdesc written into new objects: the hook's ``matdesc``, else the connection extra, else none."""
        if self.matdesc is not None:
            return dict(self.matdesc)
        return dict(self._settings.matdesc or {})

    @cached_property
    def _objects(self) -> EncryptedObjects:
        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            part_size=self.part_size,
            max_workers=self.max_workers,
            integrity=self.integrity_policy,
            allow_plaintext=self.allow_plaintext,
            bind_integrity_tag=self.bind_integrity_tag,
        )
        return EncryptedObjects(
            self._clients.bucket,
            config,
            logger=self._logger,
            progress_callback=self.progress_callback,
            connection_name=self.oss_conn_id,
        )

    @cached_property
    def multipart_uploads(self) -> MultipartUploads:
        """Multipart uploads in progress: ``.in_progress(prefix)`` lists them (this provider's named by
        the purpose in their marker part), ``.abort_abandoned(prefix, older_than=...)`` aborts this
        provider's abandoned ones, never another client's (see ``transport.abandoned_uploads``)."""
        config = self._objects.config
        return MultipartUploads(self._clients.bucket, config, logger=self._logger, connection_name=self.oss_conn_id)

    def get_conn(self) -> OssClientFactory:
        """The (cached) client factory: ``.service()`` and ``.bucket(name)`` give oss2 objects."""
        return self._clients

    def get_bucket(self, bucket: str | None = None) -> oss2.Bucket:
        """The oss2 ``Bucket`` (cached); ``None`` means the connection's default bucket (schema)."""
        return self._clients.bucket(bucket)

    def test_connection(self) -> tuple[bool, str]:
        """List one object of the default bucket, or the buckets when there is no default."""
        try:
            if self._settings.default_bucket:
                self.get_bucket().list_objects_v2(max_keys=1)
                return True, f"bucket {self._settings.default_bucket!r} is reachable"
            self._clients.service().list_buckets(max_keys=1)
            return True, "OSS is reachable"
        except Exception as exc:  # noqa: BLE001 - reported to the UI, not raised
            site = OssSite("ListObjects", bucket=self._settings.default_bucket, connection=self.oss_conn_id)
            error = translate_oss_error(exc, site) or exc
            return False, f"{type(error).__name__}: {_one_line(error)}"

    # ------------------------------------------------------------------ CMKs
    def _resolve(self, reference: str, matdesc: Mapping[str, str] | None = None) -> Cmk:
        """The CMK named by ``reference`` (cached per hook); ``matdesc`` only for the CMK that writes."""
        cache_key = reference if not matdesc else f"{reference}\x00{dump_matdesc(matdesc)}"
        with self._cmk_lock:
            wrapper = self._cmk_cache.get(cache_key)
            if wrapper is None:
                from airflow_provider_osscse.keys.caching_cmk import with_data_key_cache
                from airflow_provider_osscse.keys.reference import resolve_cmk

                cmk = resolve_cmk(reference, matdesc=matdesc or None, connections=self._connection)
                wrapper = with_data_key_cache(cmk, self.data_key_cache)
                self._cmk_cache[cache_key] = wrapper
            return wrapper

    def _write_key(self, reference: str | None = None) -> Cmk:
        """The CMK wrapping new data keys, carrying the configured matdesc (and nothing else)."""
        reference = reference or self.cmk
        if not reference:
            raise CmkReferenceError("uploading needs a CMK", remedy=Remedy("cmk"))
        return self._resolve(reference, self.write_matdesc)

    def _warn_if_unbound(self) -> None:
        """Once per hook: unbound tags are an explicit, weaker choice."""
        if not self.bind_integrity_tag and not self._unbound_warned:
            self._unbound_warned = True
            self._logger.warning(
                "bind_integrity_tag=False: integrity tags written by this hook are NOT bound to the "
                "object's bucket and key, so an object swapped or replayed under another name "
                "still verifies"
            )

    def _read_keys(self, primary: str | None = None) -> Keyring | None:
        """The CMKs accepted on reads (no matdesc needed: objects name their CMK); ``primary`` (a
        rewrap's target) first and resolved as the write CMK, since it wraps."""
        refs = list(dict.fromkeys(r for r in (primary, self.cmk, *self.decrypt_cmks) if r))  # in order, once
        if not refs:
            return None
        first = self._write_key(refs[0]) if primary else self._resolve(refs[0])
        return Keyring(first, [self._resolve(r) for r in refs[1:]])

    # ------------------------------------------------------------------ operations
    def upload(
        self,
        source: str | os.PathLike[str] | BinaryIO | Iterable[bytes],
        key: str,
        bucket: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        size: int | None = None,
    ) -> UploadResult:
        """Encrypt and upload; one PUT below ``multipart_threshold``, a parallel multipart above."""
        self._warn_if_unbound()
        return self._objects.put(
            key, source, self._write_key(), bucket=bucket, metadata=metadata, content_type=content_type, size=size
        )

    def download(self, key: str, destination: str | os.PathLike[str], bucket: str | None = None) -> DownloadResult:
        """Decrypt to ``destination`` atomically (verified first; nothing written on failure)."""
        return self._objects.download(key, destination, self._read_keys(), bucket=bucket)

    def read(self, key: str, bucket: str | None = None, *, byte_range: str | None = None) -> PlaintextBytes:
        """The plaintext, or a range ``a-b`` / ``a-`` / ``-n`` of it, as ``bytes`` that also carry
        ``uri``, ``integrity`` (``verified`` | ``unauthenticated`` | ``skipped``), ``cmk`` and
        ``key_version``. Under ``require`` a range is returned only after the whole object verified."""
        return self._objects.read(key, self._read_keys(), bucket=bucket, byte_range=byte_range)

    def stream(self, key: str, bucket: str | None = None, *, byte_range: str | None = None) -> PlaintextStream:
        """Plaintext chunks, with ``uri``, ``integrity``, ``cmk`` and ``key_version`` attributes.

        When the tag is verified (always under ``require``), no chunk is released before the whole
        object verified: an altered object raises ``IntegrityError`` on the first ``next()``.
        """
        return self._objects.stream(key, self._read_keys(), bucket=bucket, byte_range=byte_range)

    def inspect(self, key: str, bucket: str | None = None) -> ObjectInfo:
        """The envelope as the headers describe it; nothing is unwrapped or decrypted."""
        return self._objects.inspect(key, bucket=bucket)

    def inventory(
        self,
        prefix: str = "",
        bucket: str | None = None,
        *,
        concurrency: int = 8,
        start_after: str | None = None,
        end_at: str | None = None,
    ) -> InventoryStream:
        """A record per object under ``prefix`` (or one shard of it: :meth:`listing_shards`) from its HEAD
        only (key, size, CMK, version, tag, ...), in listing order, ``concurrency`` HEADs at a time, in
        constant memory; never unwraps. Summarise with ``transport.inventory_report.InventorySummary``."""
        return self._objects.inventory(
            prefix, bucket=bucket, concurrency=concurrency, start_after=start_after, end_at=end_at
        )

    def copy(
        self, source_key: str, dest_key: str, source_bucket: str | None = None, dest_bucket: str | None = None
    ) -> str:
        """Server-side copy that stays valid at its new name; returns the new ETag. An object whose tag
        is bound to its name gets the tag re-bound to ``dest_key`` (the data key is unwrapped with the
        hook's read CMKs; no content is read); other objects are copied as they are."""
        return self._objects.copy(
            source_key, dest_key, source_bucket=source_bucket, dest_bucket=dest_bucket, keys=self._read_keys
        )

    def exists(self, key: str, bucket: str | None = None) -> bool:
        return self._objects.exists(key, bucket=bucket)

    def list_keys(
        self, prefix: str = "", bucket: str | None = None, *, start_after: str | None = None, end_at: str | None = None
    ) -> Iterator[str]:
        """Keys under ``prefix``, page by page as consumed (optionally the shard after ``start_after``
        up to ``end_at``, see :meth:`listing_shards`)."""
        return self._objects.list_keys(prefix, bucket=bucket, start_after=start_after, end_at=end_at)

    def delete(self, key: str, bucket: str | None = None) -> None:
        self._objects.delete(key, bucket=bucket)

    def rewrap(
        self, key: str, bucket: str | None = None, *, new_cmk: str | None = None, dry_run: bool = False
    ) -> RewrapResult:
        """Re-wrap the data key under ``new_cmk`` (default: the hook's ``cmk``, newest version)."""
        target = new_cmk or self.cmk
        if not target:
            raise CmkReferenceError("rewrap needs a target CMK", remedy=Remedy("new_cmk", "cmk"))
        keys = self._read_keys(target)
        if keys is None:  # unreachable: target is a non-empty reference, so the keyring has it
            raise CmkReferenceError("rewrap needs a target CMK", remedy=Remedy("new_cmk", "cmk"))
        return self._objects.rewrap(key, keys, bucket=bucket, dry_run=dry_run)

    # ------------------------------------------------------------------ many objects
    # Groups of objects share one key-service call (Transit batch), ``concurrency`` threads make the
    # OSS requests, and each object gets its own outcome: see ``transport.bulk``.
    def upload_many(
        self,
        items: Iterable[tuple[UploadSource, str]],
        bucket: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Iterator[ObjectOutcome[UploadResult]]:
        """Encrypt and upload each ``(source, object key)``; outcomes in input order, one per object."""
        self._warn_if_unbound()
        pairs = ((key, source) for source, key in items)
        return self._objects.put_many(
            pairs,
            self._write_key(),
            bucket=bucket,
            metadata=metadata,
            content_type=content_type,
            concurrency=concurrency,
        )

    def read_many(
        self, keys: Iterable[str], bucket: str | None = None, *, concurrency: int = DEFAULT_CONCURRENCY
    ) -> Iterator[ObjectOutcome[PlaintextBytes]]:
        """Each object's verified plaintext (small objects: one GET each, data keys unwrapped per group)."""
        return self._objects.read_many(keys, self._read_keys(), bucket=bucket, concurrency=concurrency)

    def download_many(
        self,
        items: Iterable[tuple[str, str | os.PathLike[str]]],
        bucket: str | None = None,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Iterator[ObjectOutcome[DownloadResult]]:
        """Each ``(object key, destination)``, verified before the file gets its name."""
        return self._objects.download_many(items, self._read_keys(), bucket=bucket, concurrency=concurrency)

    def rewrap_many(
        self,
        keys: Iterable[str] | None = None,
        bucket: str | None = None,
        *,
        prefix: str | None = None,
        start_after: str | None = None,
        end_at: str | None = None,
        new_cmk: str | None = None,
        dry_run: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Iterator[RewrapResult]:
        """Rotate ``keys``, or every object under ``prefix`` (or one shard: :meth:`listing_shards`),
        concurrently and resumably: current objects skipped by their headers, stale ones re-wrapped in
        batches (``transport.bulk``); a prefix run first aborts the rewrap uploads a killed run left."""
        target = new_cmk or self.cmk
        cmks = self._read_keys(target) if target else None  # a keyring whose primary is the target
        if cmks is None:
            raise CmkReferenceError("rewrap needs a target CMK", remedy=Remedy("new_cmk", "cmk"))
        if keys is None:
            if prefix is None:
                raise ValueError("rewrap_many needs object keys or a prefix")
            shard = {"bucket": bucket, "start_after": start_after, "end_at": end_at}
            if not dry_run:  # a dry run changes nothing, abandoned uploads included
                self.multipart_uploads.abort_abandoned_rewraps(prefix, **shard)
            keys = self._objects.list_keys(prefix, **shard)
        return self._objects.rewrap_many(keys, cmks, bucket=bucket, dry_run=dry_run, concurrency=concurrency)

    def listing_shards(
        self, prefix: str = "", bucket: str | None = None, *, objects_per_shard: int = 10_000
    ) -> list[dict[str, str | None]]:
        """The listing of ``prefix`` cut into shards to map a fleet operation over (``.expand``)."""
        return self._objects.listing_shards(prefix, bucket=bucket, objects_per_shard=objects_per_shard)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


__all__ = ["EncryptedOSSOperations"]
