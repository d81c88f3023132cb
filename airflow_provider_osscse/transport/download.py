"""Download, read and stream: HEAD, then ``EnvelopeReader`` (header checks against the stored size,
CMK choice, one unwrap, integrity policy, name binding), then parallel ranged GETs pinned by
``If-Match`` to the ETag of that HEAD.

No plaintext before verification, whenever a tag is verified (always under the default ``require``):

* ``download``: workers decrypt, MAC and ``pwrite`` their ranges into the anonymous temp file of
  ``atomic_write``; the tag is checked before the file gets the destination's name.
* ``stream``/``read`` of the whole object: small objects (up to ``multipart_threshold``) go through
  ``EnvelopeReader.decrypt_chunks`` (ciphertext spooled in memory, then an anonymous temp file);
  larger ones are fetched by the parallel workers, which write the *ciphertext* to an anonymous
  temp file and MAC the plaintext; after the tag verified, the spool is decrypted for the
  consumer. Cost: the ciphertext's size in temporary space and a second local AES-CTR pass.
* a ranged read under ``require`` first MACs the whole object (parallel, nothing kept), then
  fetches and decrypts the range with ``If-Match`` on the same ETag, so the range comes from the
  version that verified. Cost: the whole object is transferred once more than the range.

Reads that are not verified (an untagged object under ``if-present``, policy ``off``, a range under
``if-present``/``off``, a plaintext object under ``allow_plaintext``) are logged at WARNING and say
so in their result (``integrity``: ``unauthenticated`` or ``skipped``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import oss2.exceptions

from airflow_provider_osscse.envelope.headers import is_encrypted
from airflow_provider_osscse.envelope.integrity import (
    UNVERIFIED_READ_RECORD,
    IntegrityBuilder,
    IntegrityPolicy,
    IntegrityStatus,
)
from airflow_provider_osscse.envelope.integrity_tag import INTEGRITY_HEADER
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey
from airflow_provider_osscse.envelope.ranges import RangePlan, plan_range
from airflow_provider_osscse.envelope.reader import EnvelopeReader
from airflow_provider_osscse.envelope.streams import iter_chunks
from airflow_provider_osscse.exceptions import (
    InvalidRangeError,
    NotEncryptedError,
    ObjectChangedError,
    OSSCSEError,
    Remedy,
    UnauthenticatedObjectError,
)
from airflow_provider_osscse.transport.atomic_file import atomic_write
from airflow_provider_osscse.transport.file_download import (
    Sink,
    download_to_fd,
    range_size_for,
)
from airflow_provider_osscse.transport.oss_client import without_client_crc
from airflow_provider_osscse.transport.oss_errors import translated, translated_iter
from airflow_provider_osscse.transport.progress import DEFAULT_MIN_REPORT_SIZE
from airflow_provider_osscse.transport.ranged_download import iter_ranges
from airflow_provider_osscse.transport.results import (
    DownloadResult,
    PlaintextBytes,
    PlaintextStream,
)
from airflow_provider_osscse.transport.transfer_base import (
    STREAM_CHUNK,
    StoredObject,
    TransferBase,
    stored_object,
)
from airflow_provider_osscse.transport.transfer_checksums import check_received_crc


@dataclass(frozen=True)
class OpenedObject:
    """An object ready to read: its HEAD and its reader (``None``: plaintext allowed through)."""

    stored: StoredObject
    reader: EnvelopeReader | None

    @property
    def cmk(self) -> str | None:
        """The reference of the CMK that unwraps the data key (the keyring member, not the keyring)."""
        if self.reader is None:
            return None
        wrapper = self.reader.cmk
        select: Callable[..., Cmk] | None = getattr(wrapper, "select", None)
        return (select(self.reader.envelope.wrapped) if select else wrapper).reference

    @property
    def key_version(self) -> str | None:
        if self.reader is None:
            return None
        return self.reader.cmk.key_version(self.reader.envelope.wrapped)

    def integrity(self) -> str | None:
        """The read's status so far (``None`` while a verification is pending)."""
        if self.reader is None:
            return IntegrityStatus.SKIPPED.value
        return self.reader.status.value if self.reader.status is not None else None


@contextlib.contextmanager
def _pinned(stored: StoredObject) -> Iterator[None]:
    """Every GET carries If-Match on the HEAD's ETag: a replaced object is an :class:`ObjectChangedError`."""
    try:
        yield
    except oss2.exceptions.PreconditionFailed as exc:
        raise ObjectChangedError(
            f"{stored.uri} changed while it was being read (its ETag is no longer {stored.etag}); "
            f"nothing of the new version was used; read it again"
        ) from exc


class DownloadOperations(TransferBase):
    """``download`` to a file, ``stream`` and ``read`` (whole object or a byte range)."""

    def _open(self, key: str, keys: Cmk | None, bucket: str | None) -> OpenedObject:
        """HEAD and open the reader: header checks, ``require`` refusal, CMK choice and one unwrap."""
        return self._opened(self.head(key, bucket=bucket), keys)

    def _opened(
        self, stored: StoredObject, keys: Cmk | None, data_key: DataKey | OSSCSEError | None = None
    ) -> OpenedObject:
        """The reader for ``stored`` (from a HEAD or a whole GET); ``data_key`` when already unwrapped."""
        if not is_encrypted(stored.headers):
            if not self.config.allow_plaintext:
                raise NotEncryptedError(
                    f"{stored.uri} is not client-side encrypted",
                    remedy=Remedy("allow_plaintext", note="to read it as it is stored"),
                )
            self._log.warning(
                "%s is not client-side encrypted; read as stored because allow_plaintext=True (integrity: skipped)",
                stored.uri,
                extra={UNVERIFIED_READ_RECORD: True},
            )
            return OpenedObject(stored, None)
        reader = EnvelopeReader(
            stored.headers,
            keys if keys is not None else (),
            object_name=stored.uri,
            integrity_policy=self.config.integrity,
            binding=stored.binding,
            object_size=stored.size,
            data_key=data_key,
        )
        return OpenedObject(stored, reader)

    def _get_whole(self, key: str, bucket: str | None, limit: int) -> tuple[StoredObject, bytes] | None:
        """ONE GET of the whole object: its headers carry the envelope, so a small object needs no
        HEAD. ``None`` (the response closed unread) when it is larger than ``limit``: the caller
        takes the HEAD-then-parallel-ranges path for it."""
        oss_bucket = self._bucket(bucket)
        crc_free = without_client_crc(oss_bucket)  # oss2 would build CRC-64 tables for every GET

        def get() -> tuple[StoredObject, bytes] | None:
            result = crc_free.get_object(key)
            if int(result.content_length or 0) > limit:
                result.resp.response.close()
                return None
            stored = stored_object(oss_bucket.bucket_name, key, result.headers, 0, result.etag)
            body = result.read()
            if INTEGRITY_HEADER not in stored.headers or self.config.integrity is IntegrityPolicy.OFF:
                # Nothing stronger will check these bytes (the integrity tag checks every byte).
                check_received_crc(stored.uri, body, result.server_crc)
            return dataclasses.replace(stored, size=len(body)), body

        return self.config.retry.call(get, what=f"GET {key!r}")

    def _plaintext_of(self, opened: OpenedObject, body: bytes) -> bytes:
        """A whole object's plaintext from its ciphertext in memory: verified before it is returned
        (under ``require``/a present tag), else decrypted and its unverified status logged."""
        reader = opened.reader
        if reader is None:
            return body
        return b"".join(reader.decrypt_chunks(iter((body,)), chunk_size=max(len(body), 1)))

    # ----------------------------------------------------------------- fetching
    def _fetch(
        self,
        stored: StoredObject,
        fd: int | None,
        reader: EnvelopeReader | None,
        builder: IntegrityBuilder | None,
        sink: Sink,
        on_range_done: Callable[[int], None] | None = None,
    ) -> None:
        """The whole object through the parallel workers (see ``file_download``)."""
        large = stored.size > self.config.multipart_threshold
        with _pinned(stored):
            download_to_fd(
                self._bucket(stored.bucket),
                stored.key,
                fd,
                stored.size,
                cipher_at=reader.cipher if reader is not None else None,
                builder=builder,
                range_size=range_size_for(self.config.part_size, builder.segment_size if builder else None),
                max_workers=self.config.max_workers if large else 1,
                etag=stored.etag,
                retry=self.config.retry,
                on_range_done=on_range_done,
                sink=sink,
            )

    def _ranges(
        self, stored: StoredObject, start: int, end: int, transform: Callable[[int, bytes], bytes] | None = None
    ) -> Iterator[bytes]:
        """Stored bytes ``start..end`` in order (parallel above the threshold), pinned to the ETag."""
        if end < start:
            return
        chunk = max(self.config.part_size, 16) // 16 * 16
        workers = self.config.max_workers if end - start + 1 > self.config.multipart_threshold else 1
        with _pinned(stored):
            for _offset, data in iter_ranges(
                self._bucket(stored.bucket),
                stored.key,
                start,
                end,
                chunk_size=chunk,
                max_workers=workers,
                etag=stored.etag,
                retry=self.config.retry,
                transform=transform,
            ):
                yield data

    def _verify_whole(self, stored: StoredObject, reader: EnvelopeReader, fd: int | None, sink: Sink) -> None:
        """Pass 1 of a verify-first read: the parallel workers MAC the whole object (writing the
        ciphertext to ``fd``, or nothing), then the tag is checked (raises if altered)."""
        builder = reader.integrity_builder()
        if builder is None:  # unreachable: _open refuses untagged objects when the policy verifies
            raise UnauthenticatedObjectError(
                f"{stored.uri} has no integrity tag to verify",
                remedy=Remedy("integrity", value="if-present", note="to accept that (unauthenticated)"),
            )
        self._fetch(stored, fd, reader, builder, sink)
        reader.verify_parallel(builder, stored.size)

    # ----------------------------------------------------------------- download
    @translated("download")
    def download(
        self, key: str, destination: str | os.PathLike[str], keys: Cmk | None, *, bucket: str | None = None
    ) -> DownloadResult:
        """Decrypt into an anonymous temp file beside ``destination``, verify, then give it the name.

        An object smaller than both ``multipart_threshold`` and the size from which transfers report
        progress is one GET, verified in memory before the file is written; larger ones: HEAD, then
        parallel ranged GETs into the temp file, with progress in the log.
        """
        limit = min(self.config.multipart_threshold, DEFAULT_MIN_REPORT_SIZE - 1)
        fetched = self._get_whole(key, bucket, limit)
        if fetched is not None:
            return self._deliver_whole(self._opened(fetched[0], keys), fetched[1], destination)
        opened = self._open(key, keys, bucket)
        stored, reader = opened.stored, opened.reader
        builder = reader.integrity_builder() if reader is not None and reader.verifies else None
        if reader is not None and builder is None:
            reader.unverified_status()
        progress = self._progress(f"download {stored.uri}", stored.size)
        with atomic_write(destination) as handle:
            handle.flush()
            self._fetch(stored, handle.fileno(), reader, builder, "plaintext", progress.add)
            if builder is not None and reader is not None:  # builder is only set when there is a reader
                reader.verify_parallel(builder, stored.size)  # raises before the file gets its name
        progress.finish()
        return DownloadResult(
            uri=stored.uri,
            bucket=stored.bucket,
            key=key,
            path=os.fspath(destination),
            size=stored.size,
            integrity=opened.integrity() or IntegrityStatus.SKIPPED.value,
            cmk=opened.cmk,
            key_version=opened.key_version,
        )

    def _read_whole(self, opened: OpenedObject, body: bytes) -> PlaintextBytes:
        """A whole object's ciphertext in memory as verified plaintext carrying its read's facts."""
        data = self._plaintext_of(opened, body)
        return PlaintextBytes(
            data, uri=opened.stored.uri, integrity=opened.integrity(), cmk=opened.cmk, key_version=opened.key_version
        )

    def _deliver_whole(self, opened: OpenedObject, body: bytes, destination: str | os.PathLike[str]) -> DownloadResult:
        """A whole object's ciphertext in memory to ``destination``: verified (raises before anything
        is written), then written to a temp file beside it and renamed."""
        data = self._plaintext_of(opened, body)
        with atomic_write(destination) as handle:
            handle.write(data)
        stored = opened.stored
        return DownloadResult(
            uri=stored.uri,
            bucket=stored.bucket,
            key=stored.key,
            path=os.fspath(destination),
            size=len(data),
            integrity=opened.integrity() or IntegrityStatus.SKIPPED.value,
            cmk=opened.cmk,
            key_version=opened.key_version,
        )

    # ----------------------------------------------------------------- stream / read
    @translated("stream")
    def stream(
        self, key: str, keys: Cmk | None, *, bucket: str | None = None, byte_range: str | None = None
    ) -> PlaintextStream:
        """Plaintext chunks of the whole object or of ``byte_range`` (``a-b``, ``a-``, ``-n``).

        The HEAD, header checks, ``require`` refusal of untagged objects, range parsing and the
        unwrap happen here; the transfer on the first ``next()``. When a tag is verified, the first
        chunk is released only after it verified over the whole object (see the module docstring).
        """
        opened = self._open(key, keys, bucket)
        reader = opened.reader
        if byte_range is not None:
            plan = plan_range(byte_range, opened.stored.size)
            verify_first = reader is not None and reader.integrity_policy is IntegrityPolicy.REQUIRE
            if reader is not None and not verify_first:
                reader.unverified_range_status()
            chunks = self._range_chunks(opened, plan, verify_first)
        else:
            if reader is not None and not reader.verifies:
                reader.unverified_status()
            chunks = self._whole_chunks(opened)
        chunks = translated_iter(chunks, lambda: self.oss_site("stream", key, bucket))
        return PlaintextStream(
            chunks, uri=opened.stored.uri, cmk=opened.cmk, key_version=opened.key_version, integrity=opened.integrity
        )

    @translated("read")
    def read(
        self, key: str, keys: Cmk | None, *, bucket: str | None = None, byte_range: str | None = None
    ) -> PlaintextBytes:
        """The whole object or a range, as ``bytes`` carrying ``uri``/``integrity``/``cmk``/``key_version``.

        A whole object up to ``multipart_threshold`` is one GET (the envelope comes with it);
        larger ones and ranges: HEAD, then ranged GETs pinned to its ETag (see :meth:`stream`).
        """
        fetched = self._get_whole(key, bucket, self.config.multipart_threshold) if byte_range is None else None
        if fetched is not None:
            return self._read_whole(self._opened(fetched[0], keys), fetched[1])
        with self.stream(key, keys, bucket=bucket, byte_range=byte_range) as stream:
            data = b"".join(stream)
        return PlaintextBytes(
            data, uri=stream.uri, integrity=stream.integrity, cmk=stream.cmk, key_version=stream.key_version
        )

    def _whole_chunks(self, opened: OpenedObject) -> Iterator[bytes]:
        stored, reader = opened.stored, opened.reader
        if reader is None:
            yield from self._ranges(stored, 0, stored.size - 1)
            return
        if not reader.verifies:  # status recorded and logged by stream()

            def decrypt(offset: int, data: bytes) -> bytes:  # runs in the worker that fetched the range
                return reader.cipher(offset).update(data)

            yield from self._ranges(stored, 0, stored.size - 1, transform=decrypt)
            return
        if stored.size <= self.config.multipart_threshold:
            yield from reader.decrypt_chunks(self._ranges(stored, 0, stored.size - 1), chunk_size=STREAM_CHUNK)
            return
        with tempfile.TemporaryFile(prefix="osscse-verify-") as spool:  # ciphertext only, unlinked
            self._verify_whole(stored, reader, spool.fileno(), "ciphertext")
            cipher = reader.cipher(0)
            for chunk in iter_chunks(spool, STREAM_CHUNK):
                yield cipher.update(chunk)

    def _range_chunks(self, opened: OpenedObject, plan: RangePlan, verify_first: bool) -> Iterator[bytes]:
        stored, reader = opened.stored, opened.reader
        if plan.end is None:  # unreachable: stream() plans the range against the object's size
            raise InvalidRangeError(f"{stored.uri}: the byte range was planned without the object size; retry the read")
        if reader is None:
            yield from self._ranges(stored, plan.start, plan.end)
            return
        if verify_first:
            self._verify_whole(stored, reader, None, "none")
        # Same ETag as the verified pass (If-Match): the range comes from the version that verified.
        yield from reader.decrypt_chunks(
            self._ranges(stored, plan.request_start, plan.end), range_plan=plan, chunk_size=STREAM_CHUNK
        )
