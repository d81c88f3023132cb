"""Many objects per call: bounded concurrency, key-service calls batched across objects, one outcome per object.

Small objects cost more in round trips than in encryption, so a bulk operation works in *groups*
of :data:`BULK_GROUP_OBJECTS` objects: the CMK is asked once per group (``Cmk.new_data_keys``,
``unwrap_many``, ``rewrap_many``: one Vault Transit ``batch_input`` call; KMS, which has no batch
API, one call per object), and the objects' OSS requests run on at most ``concurrency`` threads.
The stages overlap, also with ``concurrency=1``: while one group's objects are written or delivered
by the pool, the next group is prepared on the caller's thread (its data keys made, or its GETs
sent), and a read group's unwrap runs on a key-service thread beside the next group's GETs, so a
Vault round trip or the RSA private-key operations (which release the GIL) cost no wall time.

Memory stays flat in the object count: at most a group and the threads' objects are in flight, whole-object reads are
limited to :data:`WHOLE_OBJECT_LIMIT` (larger objects take the one-object path, ranged and
parallel), and outcomes are yielded in input order as they complete, never collected.

Failures are per object: each :class:`ObjectOutcome` carries its result or its error (a package
error, OSS errors translated), and one object's failure never stops or hides the others. A whole
group's key-service failure is every one of its objects' outcome.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

import oss2.exceptions

from airflow_provider_osscse.envelope.headers import (
    check_metadata_size,
    is_encrypted,
    parse_envelope,
    user_metadata_headers,
)
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.envelope.writer import EnvelopeWriter
from airflow_provider_osscse.exceptions import OSSCSEError
from airflow_provider_osscse.transport.copy_rewrap import CopyRewrapOperations
from airflow_provider_osscse.transport.download import DownloadOperations
from airflow_provider_osscse.transport.ordered_pool import DEFAULT_CONCURRENCY, ordered_bounded_map
from airflow_provider_osscse.transport.oss_errors import translate_oss_error
from airflow_provider_osscse.transport.results import (
    DownloadResult,
    ObjectOutcome,
    PlaintextBytes,
    RewrapResult,
    UploadResult,
    oss_uri,
)
from airflow_provider_osscse.transport.transfer_base import StoredObject
from airflow_provider_osscse.transport.upload import UploadOperations
from airflow_provider_osscse.transport.upload_source import UploadSource

T = TypeVar("T")
Item = TypeVar("Item")
Prepared = TypeVar("Prepared")

#: Objects per group: one key-service call (a Transit batch) per group, and the unit of pipelining.
BULK_GROUP_OBJECTS = 128
#: Bulk reads fetch a whole object in ONE GET up to this size (envelope from the GET's headers);
#: a group holds at most this times :data:`BULK_GROUP_OBJECTS` bytes of ciphertext in memory.
WHOLE_OBJECT_LIMIT = 1024 * 1024


class BulkOperations(UploadOperations, DownloadOperations, CopyRewrapOperations):
    """``put_many``, ``read_many``, ``download_many``, ``rewrap_many``: see the module docstring."""

    # ----------------------------------------------------------------- upload
    def put_many(
        self,
        items: Iterable[tuple[str, UploadSource]],
        cmk: Cmk,
        *,
        bucket: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Iterator[ObjectOutcome[UploadResult]]:
        """Encrypt each ``(object key, source)`` (bytes, a path, a file object) under its own data key.

        Objects up to ``multipart_threshold`` get their data keys from ONE ``cmk.new_data_keys`` call per
        group; larger ones take :meth:`put` (multipart, parallel parts) one at a time.
        """
        check_metadata_size(user_metadata_headers(metadata, object_name="every object"), object_name="every object")

        def prepare(group: list[tuple[str, UploadSource]]) -> list[Callable[[], UploadResult]]:
            sized = [(key, source, _size_of(source)) for key, source in group]
            small = [
                i
                for i, (_, _, size) in enumerate(sized)
                if size is not None and size <= self.config.multipart_threshold
            ]
            requests = [DataKeyRequest(plaintext_size=sized[i][2]) for i in small]  # sizes: a write cache's bound
            keys = cmk.new_data_keys(requests) if small else []
            by_index = dict(zip(small, keys, strict=True))

            def task(index: int) -> Callable[[], UploadResult]:
                key, source, size = sized[index]
                if index not in by_index:
                    return lambda: self.put(
                        key, source, cmk, bucket=bucket, metadata=metadata, content_type=content_type, size=size
                    )
                data_key, wrapped = by_index[index]
                return lambda: self._put_small(key, source, cmk, data_key, wrapped, bucket, metadata, content_type)

            return [task(i) for i in range(len(sized))]

        yield from self._pipelined(items, lambda item: item[0], prepare, concurrency, "put", bucket)

    def _put_small(
        self,
        key: str,
        source: UploadSource,
        cmk: Cmk,
        data_key: DataKey,
        wrapped: WrappedDataKey,
        bucket: str | None,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
    ) -> UploadResult:
        oss_bucket = self._bucket(bucket)
        data = _read_all(source)
        writer = EnvelopeWriter(
            cmk, object_name=key, data_key=data_key, wrapped=wrapped, binding=self._binding(oss_bucket, key)
        )
        etag, parts = self._put_single(oss_bucket, key, data, writer, metadata, content_type)
        return UploadResult(
            uri=oss_uri(oss_bucket.bucket_name, key),
            bucket=oss_bucket.bucket_name,
            key=key,
            size=len(data),
            etag=etag,
            cmk=cmk.reference,
            key_version=cmk.key_version(wrapped),
            wrap_alg=wrapped.wrap_alg,
            integrity="tagged" if writer.binding is not None else "tagged-unbound",
            parts=parts,
        )

    # ----------------------------------------------------------------- read / download
    def read_many(
        self,
        keys: Iterable[str],
        cmks: Cmk | None,
        *,
        bucket: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Iterator[ObjectOutcome[PlaintextBytes]]:
        """The plaintext of each object (verified first, as :meth:`read`), one GET per small object
        and ONE ``unwrap_many`` per group. Yielded in input order; hold only what you need."""

        def finish(
            opened_body: tuple[StoredObject, bytes] | None, key: str, data_key: DataKey | OSSCSEError | None
        ) -> PlaintextBytes:
            if opened_body is None:
                return self.read(key, cmks, bucket=bucket)
            return self._read_whole(self._opened(opened_body[0], cmks, data_key), opened_body[1])

        yield from self._fetched_many(keys, cmks, bucket, concurrency, finish, "read")

    def download_many(
        self,
        items: Iterable[tuple[str, str | os.PathLike[str]]],
        cmks: Cmk | None,
        *,
        bucket: str | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Iterator[ObjectOutcome[DownloadResult]]:
        """Each ``(object key, destination path)``: verified in memory, then written to a temp file
        beside the destination and renamed (never a partial or unverified file); larger objects take
        :meth:`download`."""
        destinations: dict[str, str | os.PathLike[str]] = {}

        def keys_of() -> Iterator[str]:
            for key, path in items:
                destinations[key] = path
                yield key

        def finish(
            fetched: tuple[StoredObject, bytes] | None, key: str, data_key: DataKey | OSSCSEError | None
        ) -> DownloadResult:
            destination = destinations.pop(key)
            if fetched is None:
                return self.download(key, destination, cmks, bucket=bucket)
            return self._deliver_whole(self._opened(fetched[0], cmks, data_key), fetched[1], destination)

        yield from self._fetched_many(keys_of(), cmks, bucket, concurrency, finish, "download")

    def _fetched_many(
        self,
        keys: Iterable[str],
        cmks: Cmk | None,
        bucket: str | None,
        concurrency: int,
        finish: Callable[[tuple[StoredObject, bytes] | None, str, DataKey | OSSCSEError | None], T],
        operation: str,
    ) -> Iterator[ObjectOutcome[T]]:
        """GET each small object whole (on the pool), unwrap the group's data keys in one call (on a
        key-service thread, beside the next group's GETs), then ``finish`` each object (verify,
        decrypt, deliver) on the pool."""

        def fetch(key: str) -> tuple[StoredObject, bytes] | OSSCSEError | None:
            try:
                return self._get_whole(key, bucket, WHOLE_OBJECT_LIMIT)
            except OSSCSEError as exc:
                return exc
            except oss2.exceptions.OssError as exc:
                return self._oss_error(exc, operation, key, bucket)

        key_stage = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"osscse-{operation}-keys")

        def prepare(group: list[str]) -> list[Callable[[], T]]:
            fetched = list(ordered_bounded_map(fetch, group, concurrency=concurrency))  # the group's GETs
            # The unwrap runs beside the next group's GETs (a Vault round trip, or RSA, which releases the GIL).
            data_keys = key_stage.submit(self._unwrap_group, fetched, cmks)

            def task(index: int) -> Callable[[], T]:
                item = fetched[index]
                if isinstance(item, OSSCSEError):
                    error = item

                    def failed() -> T:
                        raise error

                    return failed
                return lambda: finish(item, group[index], data_keys.result().get(index))

            return [task(i) for i in range(len(group))]

        try:
            yield from self._pipelined(keys, lambda key: key, prepare, concurrency, operation, bucket)
        finally:
            key_stage.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _unwrap_group(
        fetched: list[tuple[StoredObject, bytes] | OSSCSEError | None], cmks: Cmk | None
    ) -> dict[int, DataKey | OSSCSEError]:
        """ONE ``unwrap_many`` for the group's encrypted objects whose headers name a usable envelope;
        anything else is left to the one-object checks (which raise that object's own error)."""
        if cmks is None:
            return {}
        indexes: list[int] = []
        wrapped: list[WrappedDataKey] = []
        for index, item in enumerate(fetched):
            if item is None or isinstance(item, OSSCSEError) or not is_encrypted(item[0].headers):
                continue
            try:
                envelope = parse_envelope(item[0].headers, object_name=item[0].uri)
            except OSSCSEError:
                continue
            if cmks.matches(envelope.wrapped):
                indexes.append(index)
                wrapped.append(envelope.wrapped)
        return dict(zip(indexes, cmks.unwrap_many(wrapped), strict=True)) if wrapped else {}

    # ----------------------------------------------------------------- rewrap
    def rewrap_many(
        self,
        keys: Iterable[str],
        cmks: Cmk,
        *,
        bucket: str | None = None,
        dry_run: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
    ) -> Iterator[RewrapResult]:
        """Rotate many objects: read each one's headers (one GET of its first 64 KiB: a small object
        comes whole, so re-wrapping it is one PUT more; on the pool); skip the current ones (the
        target's newest version is read once per run: no per-object key-service call); re-wrap the
        stale ones in ONE ``rewrap_many`` per group (Transit → Transit never releases a data key);
        write each object's new headers (on the pool).

        Resumable by construction: a re-run finds what a killed run finished current and skips it.
        Yields one :class:`RewrapResult` per object (``failed`` with its error, never raised).
        """
        latest: list[str | None] = []  # the target's newest version, read once, at the first group

        bodies: dict[str, bytes | None] = {}  # whole ciphertexts of small stale objects, until written

        def plan(key: str) -> RewrapResult | tuple[StoredObject, WrappedDataKey]:
            try:
                stored, body = self._probe(key, bucket)  # one request: headers (and a small object whole)
                planned = self._rewrap_plan(stored, cmks, latest[0])
            except OSSCSEError as exc:
                return self._rewrap_failed(key, bucket, cmks, exc)
            except oss2.exceptions.OssError as exc:
                return self._rewrap_failed(key, bucket, cmks, self._oss_error(exc, "rewrap", key, bucket))
            if not isinstance(planned, RewrapResult):
                bodies[key] = body
            return planned

        def prepare(group: list[str]) -> list[Callable[[], RewrapResult]]:
            if not latest:
                latest.append(cmks.latest_version())
            plans = list(ordered_bounded_map(plan, group, concurrency=concurrency))  # the group's HEADs
            stale = [i for i, plan in enumerate(plans) if not isinstance(plan, RewrapResult)]
            moved = cmks.rewrap_many([plans[i][1] for i in stale]) if stale else []  # type: ignore[index]
            new_wrapped = dict(zip(stale, moved, strict=True))

            def task(index: int) -> Callable[[], RewrapResult]:
                plan = plans[index]
                if isinstance(plan, RewrapResult):
                    return lambda: plan
                stored, wrapped = plan
                return lambda: self._rewrap_apply(
                    stored, wrapped, cmks, new_wrapped[index], dry_run, bodies.pop(stored.key, None)
                )

            return [task(i) for i in range(len(group))]

        for outcome in self._pipelined(keys, lambda key: key, prepare, concurrency, "rewrap", bucket):
            if outcome.result is not None:
                yield outcome.result
            else:
                yield self._rewrap_failed(outcome.key, bucket, cmks, outcome.error)

    # ----------------------------------------------------------------- the pipeline
    def _pipelined(
        self,
        items: Iterable[Item],
        key_of: Callable[[Item], str],
        prepare: Callable[[list[Item]], list[Callable[[], T]]],
        concurrency: int,
        operation: str,
        bucket: str | None,
    ) -> Iterator[ObjectOutcome[T]]:
        """Groups of :data:`BULK_GROUP_OBJECTS`: ``prepare`` (the group's key-service call) returns
        one task per object, run on ``concurrency`` threads; outcomes in input order. The next group
        is prepared as soon as the window (one group plus the threads) has room, so its key-service
        call overlaps with the current group's requests."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")

        def tasks() -> Iterator[tuple[str, Callable[[], T] | OSSCSEError]]:
            source = iter(items)
            while group := list(islice(source, BULK_GROUP_OBJECTS)):
                keys = [key_of(item) for item in group]
                try:
                    yield from zip(keys, prepare(group), strict=True)
                except OSSCSEError as exc:  # the group's key-service call failed: each object says so
                    yield from ((key, exc) for key in keys)

        def run(entry: tuple[str, Callable[[], T] | OSSCSEError]) -> ObjectOutcome[T]:
            key, task = entry
            if isinstance(task, OSSCSEError):
                return ObjectOutcome(key=key, error=task)
            try:
                return ObjectOutcome(key=key, result=self._translated_task(task, key, operation, bucket))
            except OSSCSEError as exc:
                return ObjectOutcome(key=key, error=exc)
            except (OSError, ValueError) as exc:  # a local file that cannot be read or written
                return ObjectOutcome(key=key, error=OSSCSEError(f"{key}: {type(exc).__name__}: {exc}"))

        yield from ordered_bounded_map(
            run,
            tasks(),
            concurrency=concurrency,
            window=BULK_GROUP_OBJECTS + concurrency,
            thread_name_prefix=f"osscse-{operation}",
            inline_when_single=False,  # even one thread: the next group is prepared beside this one's tasks
        )

    def _translated_task(self, task: Callable[[], T], key: str, operation: str, bucket: str | None) -> T:
        try:
            return task()
        except oss2.exceptions.OssError as exc:
            raise self._oss_error(exc, operation, key, bucket) from exc

    def _oss_error(self, exc: oss2.exceptions.OssError, operation: str, key: str, bucket: str | None) -> OSSCSEError:
        translated = translate_oss_error(exc, self.oss_site(operation, key, bucket))
        return translated if translated is not None else OSSCSEError(f"{operation} {key}: {type(exc).__name__}")


def _size_of(source: UploadSource) -> int | None:
    """The plaintext size when it is known without reading: bytes, or a path to a regular file."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return len(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            return os.path.getsize(source)
        except OSError:
            return None
    return None


def _read_all(source: UploadSource) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    with open(source, "rb") as handle:  # type: ignore[arg-type]  # _size_of admitted only paths here
        data: bytes = handle.read()
    return data
