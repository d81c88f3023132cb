"""Encrypted object I/O: the envelope core and a CMK combined with oss2, for one OSS account.

Every operation unwraps (or wraps) the data key exactly once per object and reuses the
``ContentKey`` for all parts and ranges. Writes put the integrity tag in the metadata at the first
request (PutObject or InitiateMultipartUpload); reads verify it over the whole object before a file
appears under its final name.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import oss2
import oss2.exceptions

from airflow_provider_osscse.envelope import headers as H
from airflow_provider_osscse.envelope.aes_ctr import CEK_ALG_AES_CTR, CtrCipher
from airflow_provider_osscse.envelope.errors import (
    IntegrityError,
    NoMatchingKeyError,
    NotEncryptedError,
    ObjectChangedError,
    ObjectNotFoundError,
    UnauthenticatedObjectError,
)
from airflow_provider_osscse.envelope.headers import (
    Envelope,
    check_metadata_size,
    is_encrypted,
    parse_envelope,
    user_metadata_headers,
)
from airflow_provider_osscse.envelope.integrity import (
    INTEGRITY_HEADER,
    IntegrityBuilder,
    IntegrityPolicy,
    IntegrityStatus,
    StreamingTagger,
)
from airflow_provider_osscse.envelope.matdesc import MATDESC_CMK, MATDESC_CMK_VERSION
from airflow_provider_osscse.keys.data_key_cache import new_content_key_for
from airflow_provider_osscse.envelope.keywrap import ContentKey, KeyWrapper, WrappedContentKey
from airflow_provider_osscse.envelope.multipart import PartPlan, plan_parts
from airflow_provider_osscse.envelope.ranges import plan_range
from airflow_provider_osscse.transport.atomic_file import atomic_write
from airflow_provider_osscse.transport.file_download import download_to_fd, range_size_for
from airflow_provider_osscse.transport.multipart_upload import (
    copy_part_action,
    run_multipart,
    upload_part_action,
)
from airflow_provider_osscse.transport.part_body import PartBody, PieceBuffers, fd_read_into
from airflow_provider_osscse.transport.progress import ProgressCallback, ProgressReporter
from airflow_provider_osscse.transport.ranged_download import iter_ranges
from airflow_provider_osscse.transport.results import (
    DownloadResult,
    ObjectInfo,
    RewrapResult,
    UploadResult,
    oss_uri,
)
from airflow_provider_osscse.transport.retry import RetryPolicy
from airflow_provider_osscse.transport.upload_source import RandomAccessSource, UploadSource, is_random_access, iter_source

log = logging.getLogger(__name__)

#: Read size for sequential streams (single GETs, iterator sources, spools).
STREAM_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class TransferConfig:
    """Sizes and concurrency of transfers; ``part_size`` is adjusted up to OSS's rules by the planner."""

    multipart_threshold: int = 32 * 2**20
    part_size: int = 8 * 2**20
    max_workers: int = 4
    integrity: IntegrityPolicy = IntegrityPolicy.IF_PRESENT
    allow_plaintext: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)


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
    def user_metadata(self) -> dict[str, str]:
        return {k: v for k, v in self.headers.items() if k.startswith(H.USER_META_PREFIX)}


class EncryptedObjects:
    """Put/get/read/inspect/copy/rewrap encrypted objects; ``bucket_for(name)`` yields oss2 buckets."""

    def __init__(
        self,
        bucket_for: Callable[[str | None], oss2.Bucket],
        config: TransferConfig = TransferConfig(),
        *,
        logger: logging.Logger | None = None,
        progress_callback: ProgressCallback | None = None,
    ) -> None:
        self._bucket_for = bucket_for
        self.config = config
        self._log = logger or log
        self._progress_callback = progress_callback

    # ----------------------------------------------------------------- helpers
    def _bucket(self, name: str | None) -> oss2.Bucket:
        return self._bucket_for(name)

    def _progress(self, label: str, total: int | None) -> ProgressReporter:
        return ProgressReporter(label, total, logger=self._log, callback=self._progress_callback)

    def head(self, bucket_name: str | None, key: str) -> StoredObject:
        """HEAD the object; a missing object is :class:`ObjectNotFoundError`."""
        bucket = self._bucket(bucket_name)
        try:
            result = self.config.retry.call(lambda: bucket.head_object(key), what=f"HEAD {key!r}")
        except oss2.exceptions.NotFound as exc:
            raise ObjectNotFoundError(f"{oss_uri(bucket.bucket_name, key)} does not exist") from exc
        headers = {k.lower(): v for k, v in result.headers.items()}
        return StoredObject(
            bucket=bucket.bucket_name, key=key, headers=headers, size=int(result.content_length or 0),
            etag=result.etag, last_modified=headers.get("last-modified", ""),
            content_type=headers.get("content-type"),
        )

    # ----------------------------------------------------------------- upload
    def put(
        self,
        bucket_name: str | None,
        key: str,
        source: UploadSource,
        cmk: KeyWrapper,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        size: int | None = None,
    ) -> UploadResult:
        """Encrypt ``source`` under a fresh data key wrapped by ``cmk`` and store it as ``key``."""
        # Metadata OSS could never store fails here, before any key-service call or read of the source.
        check_metadata_size(user_metadata_headers(metadata, object_name=key), object_name=key)
        bucket = self._bucket(bucket_name)
        if isinstance(source, (bytes, bytearray, memoryview)):
            import io

            source = io.BytesIO(bytes(source))
        if is_random_access(source):
            reader = RandomAccessSource(source, size)  # type: ignore[arg-type]
            try:
                # The size lets an opt-in data-key cache enforce its byte bound; plain CMKs ignore it.
                content_key, wrapped = new_content_key_for(cmk, reader.size)
                if reader.size <= self.config.multipart_threshold:
                    data = reader.read_at(0, reader.size)
                    etag, parts = self._put_single(bucket, key, data, content_key, wrapped, metadata, content_type)
                    total = reader.size
                else:
                    etag, parts, total = self._put_multipart_random(
                        bucket, key, reader, content_key, wrapped, metadata, content_type
                    )
            finally:
                reader.close()
        else:
            content_key, wrapped = new_content_key_for(cmk, size)
            etag, parts, total = self._put_stream(bucket, key, source, content_key, wrapped, metadata, content_type)
        return UploadResult(
            uri=oss_uri(bucket.bucket_name, key), bucket=bucket.bucket_name, key=key, size=total, etag=etag,
            cmk=cmk.reference, key_version=cmk.key_version(wrapped), wrap_alg=wrapped.wrap_alg,
            integrity="tagged", parts=parts,
        )

    def _headers(
        self,
        envelope: Envelope,
        key: str,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
    ) -> dict[str, str]:
        headers = envelope.to_metadata(user_metadata=metadata, object_name=key)
        headers["Content-Type"] = content_type or "application/octet-stream"
        return headers

    def _put_single(
        self, bucket: oss2.Bucket, key: str, data: bytes, content_key: ContentKey, wrapped: WrappedContentKey,
        metadata: Mapping[str, str] | None, content_type: str | None,
    ) -> tuple[str, int]:
        segment = max(plan_parts(len(data), self.config.part_size).part_size, 1)
        builder = IntegrityBuilder(content_key, CEK_ALG_AES_CTR, segment)
        tagger = StreamingTagger(builder)
        tagger.update(data)
        tagger.close()
        envelope = Envelope(wrapped=wrapped, unencrypted_content_length=len(data), integrity=builder.finish(len(data)))
        headers = self._headers(envelope, key, metadata, content_type)
        ciphertext = CtrCipher(content_key.key, content_key.iv).update(data)
        result = self.config.retry.call(lambda: bucket.put_object(key, ciphertext, headers=headers), what=f"PUT {key!r}")
        return result.etag, 1

    def _multipart_envelope(
        self, plan: PartPlan, wrapped: WrappedContentKey, builder: IntegrityBuilder
    ) -> Envelope:
        return Envelope(
            wrapped=wrapped, unencrypted_content_length=plan.total_size, data_size=plan.total_size,
            part_size=plan.part_size, integrity=builder.finish(plan.total_size),
        )

    def _put_multipart_random(
        self, bucket: oss2.Bucket, key: str, reader: RandomAccessSource, content_key: ContentKey,
        wrapped: WrappedContentKey, metadata: Mapping[str, str] | None, content_type: str | None,
    ) -> tuple[str, int, int]:
        """Pass 1 MACs every part (in parallel, nothing kept); pass 2 encrypts and sends them.

        Two passes because the tag must be in the metadata at InitiateMultipartUpload. Both read the
        source in :data:`PIECE_SIZE` pieces into per-thread buffers, so memory is a few MiB per
        worker whatever the part or object size. Each part's ciphertext is verified against its ETag
        by MD5 (oss2's CRC64 off for UploadPart) and the object's ETag against the multipart rule at
        Complete: see :func:`~airflow_provider_osscse.transport.multipart_upload.upload_part_action`.
        """
        plan = plan_parts(reader.size, self.config.part_size)
        builder = IntegrityBuilder(content_key, CEK_ALG_AES_CTR, plan.part_size)
        buffers = PieceBuffers()

        def mac(number: int) -> None:
            part = plan.part(number)
            hasher = builder.segment_hasher(number - 1)
            plain = memoryview(buffers.plain)
            for start in range(part.offset, part.offset + part.size, len(plain)):
                piece = plain[: min(len(plain), part.offset + part.size - start)]
                reader.read_into(start, piece)
                hasher.update(piece)
            hasher.finalize()

        workers = max(1, min(self.config.max_workers, plan.part_count))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="osscse-mac") as pool:
            list(pool.map(mac, range(1, plan.part_count + 1)))
        headers = self._headers(self._multipart_envelope(plan, wrapped, builder), key, metadata, content_type)

        def produce(number: int) -> PartBody:
            part = plan.part(number)
            cipher = CtrCipher(content_key.key, content_key.iv, part.offset)
            return PartBody(reader.read_into, part.offset, part.size, cipher, buffers)

        outcome = run_multipart(
            bucket, key, part_count=plan.part_count,
            send_part=upload_part_action(bucket, key, produce, _part_headers(headers)),
            init_headers=headers, max_workers=self.config.max_workers, retry=self.config.retry,
            progress=self._progress(f"upload {oss_uri(bucket.bucket_name, key)}", plan.total_size),
        )
        return outcome.etag, outcome.parts, plan.total_size

    def _put_stream(
        self, bucket: oss2.Bucket, key: str, source: UploadSource, content_key: ContentKey,
        wrapped: WrappedContentKey, metadata: Mapping[str, str] | None, content_type: str | None,
    ) -> tuple[str, int, int]:
        """An iterator: small ones in memory; large ones spool *ciphertext* (never plaintext) to disk."""
        chunks = iter_source(source, STREAM_CHUNK)
        head = bytearray()
        for chunk in chunks:
            head += chunk
            if len(head) > self.config.multipart_threshold:
                break
        else:
            etag, parts = self._put_single(bucket, key, bytes(head), content_key, wrapped, metadata, content_type)
            return etag, parts, len(head)
        part_size = plan_parts(10_000 * self.config.part_size, self.config.part_size).part_size
        builder = IntegrityBuilder(content_key, CEK_ALG_AES_CTR, part_size)
        tagger = StreamingTagger(builder)
        cipher = CtrCipher(content_key.key, content_key.iv)
        with tempfile.TemporaryFile(prefix="osscse-spool-") as spool:
            for chunk in _chain(bytes(head), chunks):
                tagger.update(chunk)
                spool.write(cipher.update(chunk))
            del head
            total = tagger.close()
            spool.flush()
            plan = plan_parts(total, part_size)
            if plan.part_size != part_size:  # more than 10,000 parts at this size: cannot re-segment
                raise ValueError(f"stream of {total} bytes needs a part size above {part_size}; pass size= or a larger part_size")
            headers = self._headers(self._multipart_envelope(plan, wrapped, builder), key, metadata, content_type)
            read_spool = fd_read_into(spool.fileno())
            buffers = PieceBuffers()

            def produce(number: int) -> PartBody:
                part = plan.part(number)
                return PartBody(read_spool, part.offset, part.size, None, buffers)

            outcome = run_multipart(
                bucket, key, part_count=plan.part_count,
                send_part=upload_part_action(bucket, key, produce, _part_headers(headers)),
                init_headers=headers, max_workers=self.config.max_workers, retry=self.config.retry,
                progress=self._progress(f"upload {oss_uri(bucket.bucket_name, key)}", total),
                )
        return outcome.etag, outcome.parts, total

    # ----------------------------------------------------------------- download / read
    def _open(
        self, bucket_name: str | None, key: str, keys: KeyWrapper | None
    ) -> tuple[StoredObject, Envelope | None, ContentKey | None, KeyWrapper | None]:
        """HEAD, parse the envelope and unwrap once. ``None`` envelope: plaintext allowed through."""
        stored = self.head(bucket_name, key)
        if not is_encrypted(stored.headers):
            if not self.config.allow_plaintext:
                raise NotEncryptedError(
                    f"{stored.uri} is not client-side encrypted; pass allow_plaintext=True to read it as is"
                )
            return stored, None, None, None
        envelope = parse_envelope(stored.headers, object_name=stored.uri)
        if self.config.integrity is IntegrityPolicy.REQUIRE and envelope.integrity is None:
            raise UnauthenticatedObjectError(
                f"{stored.uri} has no integrity tag (written by an official SDK?) and integrity='require'"
            )
        if keys is None:
            raise NoMatchingKeyError(f"{stored.uri} is encrypted but no CMK was configured to decrypt it")
        return stored, envelope, keys.unwrap(envelope.wrapped), keys

    def _plaintext_size(self, stored: StoredObject, envelope: Envelope | None) -> int:
        if envelope is not None and envelope.unencrypted_content_length is not None:
            if envelope.unencrypted_content_length != stored.size:
                raise IntegrityError(
                    f"{stored.uri}: stored size {stored.size} differs from the recorded plaintext length "
                    f"{envelope.unencrypted_content_length}: truncated or extended"
                )
        return stored.size

    def _decrypted_chunks(
        self, stored: StoredObject, content_key: ContentKey | None, start: int, end: int
    ) -> Iterator[bytes]:
        """Plaintext of stored bytes ``start..end`` (start 16-aligned), ranges fetched in parallel."""
        bucket = self._bucket(stored.bucket)
        if end < start:
            return
        chunk = max(self.config.part_size, 16) // 16 * 16
        workers = self.config.max_workers if end - start + 1 > self.config.multipart_threshold else 1
        decrypt = None
        if content_key is not None:
            def decrypt(offset: int, data: bytes) -> bytes:  # runs in the worker that fetched the range
                return CtrCipher(content_key.key, content_key.iv, offset).update(data)
        for _offset, data in iter_ranges(
            bucket, stored.key, start, end, chunk_size=chunk, max_workers=workers, etag=stored.etag,
            retry=self.config.retry, transform=decrypt,
        ):
            yield data

    def _verifier(self, stored: StoredObject, envelope: Envelope | None, content_key: ContentKey | None):
        if envelope is None or content_key is None:
            return None, IntegrityStatus.SKIPPED
        if self.config.integrity is IntegrityPolicy.OFF:
            return None, IntegrityStatus.SKIPPED
        if envelope.integrity is None:
            return None, IntegrityStatus.UNAUTHENTICATED
        builder = IntegrityBuilder(content_key, envelope.cek_alg, envelope.integrity.segment_size)
        return (builder, StreamingTagger(builder)), IntegrityStatus.VERIFIED

    def download(
        self, bucket_name: str | None, key: str, destination: str | os.PathLike, keys: KeyWrapper | None
    ) -> DownloadResult:
        """Decrypt to a temp file beside ``destination``, verify, then rename (nothing on failure)."""
        stored, envelope, content_key, cmk = self._open(bucket_name, key, keys)
        size = self._plaintext_size(stored, envelope)
        verifier, status = self._verifier(stored, envelope, content_key)
        progress = self._progress(f"download {stored.uri}", size)
        with atomic_write(destination) as handle:
            self._copy_out(stored, content_key, size, verifier, handle, progress)
        progress.finish()
        return DownloadResult(
            uri=stored.uri, bucket=stored.bucket, key=key, path=os.fspath(destination), size=size,
            integrity=status.value, cmk=cmk.reference if cmk else None,
            key_version=cmk.key_version(envelope.wrapped) if cmk and envelope else None,
        )

    def _copy_out(self, stored, content_key, size, verifier, handle: BinaryIO, progress) -> None:
        """Workers fetch, decrypt, MAC and ``pwrite`` their own ranges; then the tag is checked.

        The check runs before ``atomic_write`` renames the file, so an altered object never appears
        under the destination name (see :mod:`airflow_provider_osscse.transport.file_download`).
        """
        builder = verifier[0] if verifier is not None else None
        large = size > self.config.multipart_threshold
        handle.flush()
        download_to_fd(
            self._bucket(stored.bucket), stored.key, handle.fileno(), size,
            content_key=content_key, builder=builder,
            range_size=range_size_for(self.config.part_size, builder.segment_size if builder else None),
            max_workers=self.config.max_workers if large else 1, etag=stored.etag, retry=self.config.retry,
            on_range_done=progress.add,
        )
        if builder is not None:
            envelope_tag = parse_envelope(stored.headers, object_name=stored.uri).integrity
            builder.verify(envelope_tag, size, object_name=stored.uri)

    def stream(
        self, bucket_name: str | None, key: str, keys: KeyWrapper | None, *, byte_range: str | None = None
    ) -> Iterator[bytes]:
        """Plaintext chunks. A whole-object stream verifies the tag *after* the last chunk (raising
        :class:`IntegrityError` then); a ranged stream cannot verify and refuses under ``require``."""
        stored, envelope, content_key, _ = self._open(bucket_name, key, keys)
        size = self._plaintext_size(stored, envelope)
        if byte_range is None:
            verifier, _status = self._verifier(stored, envelope, content_key)
            yield from self._verified_stream(stored, content_key, size, verifier)
            return
        if envelope is not None and self.config.integrity is IntegrityPolicy.REQUIRE:
            raise IntegrityError(
                f"{stored.uri}: a ranged read cannot verify the whole-object integrity tag; "
                f"read it whole (or download it), or use integrity='if-present'"
            )
        plan = plan_range(byte_range, size)
        assert plan.end is not None and plan.length is not None
        skip, remaining = plan.discard, plan.length
        for plain in self._decrypted_chunks(stored, content_key, plan.request_start, plan.end):
            if skip:
                plain, skip = plain[skip:], max(0, skip - len(plain))
            piece = plain[:remaining]
            remaining -= len(piece)
            if piece:
                yield bytes(piece)

    def _verified_stream(self, stored, content_key, size, verifier) -> Iterator[bytes]:
        for plain in self._decrypted_chunks(stored, content_key, 0, size - 1):
            if verifier is not None:
                verifier[1].update(plain)
            yield plain
        if verifier is not None:
            verifier[1].close()
            tag = parse_envelope(stored.headers, object_name=stored.uri).integrity
            verifier[0].verify(tag, size, object_name=stored.uri)

    def read(
        self, bucket_name: str | None, key: str, keys: KeyWrapper | None, *, byte_range: str | None = None
    ) -> bytes:
        """The whole object (verified) or a range (unverifiable: refused under ``require``)."""
        return b"".join(self.stream(bucket_name, key, keys, byte_range=byte_range))

    # ----------------------------------------------------------------- inspect / copy
    def inspect(self, bucket_name: str | None, key: str, keys: KeyWrapper | None = None) -> ObjectInfo:
        """Describe the envelope from a HEAD; never unwraps."""
        stored = self.head(bucket_name, key)
        common = dict(uri=stored.uri, bucket=stored.bucket, key=key, ciphertext_size=stored.size,
                      etag=stored.etag, last_modified=stored.last_modified)
        if not is_encrypted(stored.headers):
            return ObjectInfo(encrypted=False, wrap_alg=None, cek_alg=None, matdesc={}, cmk=None, key_version=None,
                              plaintext_size=stored.size, part_size=None, integrity_tag=False, **common)
        envelope = parse_envelope(stored.headers, object_name=stored.uri, allow_legacy=True)
        cmk_name = envelope.wrapped.matdesc.get(MATDESC_CMK)
        version = None
        if keys is not None and keys.matches(envelope.wrapped):
            version = keys.key_version(envelope.wrapped)
        elif envelope.wrapped.wrap_alg == H.WRAP_ALG_VAULT_TRANSIT:
            text = envelope.wrapped.wrapped_key.decode("ascii", "replace")
            version = text.split(":")[1] if text.startswith("vault:") else None
        else:
            # KMS and Vault KV providers record the CMK version they wrapped with in the matdesc.
            version = envelope.wrapped.matdesc.get(MATDESC_CMK_VERSION)
        return ObjectInfo(
            encrypted=True, wrap_alg=envelope.wrapped.wrap_alg, cek_alg=envelope.cek_alg,
            matdesc=dict(envelope.wrapped.matdesc), cmk=cmk_name, key_version=version,
            plaintext_size=envelope.unencrypted_content_length or envelope.data_size or stored.size,
            part_size=envelope.part_size, integrity_tag=envelope.integrity is not None, **common,
        )

    def copy(
        self, source_bucket: str | None, source_key: str, dest_bucket: str | None, dest_key: str
    ) -> str:
        """Server-side copy keeping the envelope (metadata directive COPY; UploadPartCopy when large)."""
        stored = self.head(source_bucket, source_key)
        target = self._bucket(dest_bucket)
        if stored.size <= self.config.multipart_threshold:
            headers = {"x-oss-metadata-directive": "COPY", "x-oss-copy-source-if-match": f'"{stored.etag}"'}
            result = self.config.retry.call(
                lambda: target.copy_object(stored.bucket, source_key, dest_key, headers=headers),
                what=f"CopyObject {stored.uri}",
            )
            return result.etag
        return self._copy_by_parts(stored, target, dest_key, stored.user_metadata)

    def _copy_by_parts(self, stored: StoredObject, target: oss2.Bucket, dest_key: str, metadata: Mapping[str, str]) -> str:
        """UploadPartCopy of the ciphertext ranges with ``metadata`` at Init, conditional on the ETag."""
        envelope = parse_envelope(metadata, object_name=stored.uri) if is_encrypted(metadata) else None
        part_size = envelope.part_size if envelope and envelope.part_size else None
        plan = plan_parts(stored.size, part_size or self.config.part_size)
        headers = dict(metadata)
        if envelope is not None:
            headers[H.DATA_SIZE_HEADER] = str(plan.total_size)
            headers[H.PART_SIZE_HEADER] = str(plan.part_size)
        if stored.content_type:
            headers["Content-Type"] = stored.content_type
        ranges = [(p.offset, p.offset + p.size - 1) for p in plan.parts()]

        def unchanged() -> None:
            if self.head(stored.bucket, stored.key).etag != stored.etag:
                raise ObjectChangedError(f"{stored.uri} changed during the copy; nothing was written")

        try:
            outcome = run_multipart(
                target, dest_key, part_count=plan.part_count,
                send_part=copy_part_action(target, dest_key, source_bucket=stored.bucket, source_key=stored.key,
                                           ranges=ranges, part_headers=_part_headers(headers), source_etag=stored.etag),
                init_headers=headers, max_workers=self.config.max_workers, retry=self.config.retry,
                before_complete=unchanged,
            )
        except oss2.exceptions.PreconditionFailed as exc:
            raise ObjectChangedError(f"{stored.uri} changed during the operation; nothing was written") from exc
        except oss2.exceptions.OssError as exc:
            # A replaced source can fail a part copy in other ways too (e.g. 416 for a shorter object).
            if self._changed(stored):
                raise ObjectChangedError(f"{stored.uri} changed during the operation; nothing was written") from exc
            raise
        return outcome.etag

    def _changed(self, stored: StoredObject) -> bool:
        try:
            return self.head(stored.bucket, stored.key).etag != stored.etag
        except ObjectNotFoundError:
            return True

    # ----------------------------------------------------------------- rewrap
    def rewrap(
        self, bucket_name: str | None, key: str, keys: KeyWrapper, *, dry_run: bool = False
    ) -> RewrapResult:
        """Re-wrap the data key under ``keys`` (a Keyring whose primary is the target CMK).

        The ciphertext is copied server-side (UploadPartCopy, conditional on the ETag) with new
        headers at Init; CopyObject REPLACE is not used because OSS refuses it for CSE headers.
        """
        stored = self.head(bucket_name, key)
        uri = stored.uri
        base = dict(uri=uri, bucket=stored.bucket, key=key, to_cmk=keys.reference)
        if not is_encrypted(stored.headers):
            return RewrapResult(status="failed", from_cmk=None, from_version=None, to_version=None,
                                error=f"{uri} is not client-side encrypted", **base)
        envelope = parse_envelope(stored.headers, object_name=uri)
        source = getattr(keys, "select", None)
        from_cmk = source(envelope.wrapped).reference if source else None
        from_version = keys.key_version(envelope.wrapped)
        new_wrapped = keys.rewrap(envelope.wrapped)
        primary = getattr(keys, "primary", keys)
        to_version = primary.key_version(new_wrapped)
        same_cmk = from_cmk == keys.reference
        if same_cmk and from_version == to_version:
            return RewrapResult(status="already-current", from_cmk=from_cmk, from_version=from_version,
                                to_version=to_version, error=None, **base)
        if dry_run:
            return RewrapResult(status="would-rewrap", from_cmk=from_cmk, from_version=from_version,
                                to_version=to_version, error=None, **base)
        new_envelope = Envelope(
            wrapped=new_wrapped, cek_alg=envelope.cek_alg,
            unencrypted_content_length=envelope.unencrypted_content_length,
            unencrypted_content_md5=envelope.unencrypted_content_md5,
            data_size=envelope.data_size, part_size=envelope.part_size, integrity=envelope.integrity,
        )
        others = {k: v for k, v in stored.user_metadata.items()
                  if not k.startswith(H.CSE_PREFIX) and k != INTEGRITY_HEADER}
        metadata = new_envelope.to_metadata(user_metadata=others, object_name=uri)
        try:
            if stored.size == 0:
                self._rewrap_empty(stored, metadata)
            else:
                self._copy_by_parts(stored, self._bucket(stored.bucket), key, metadata)
        except ObjectChangedError as exc:
            return RewrapResult(status="failed", from_cmk=from_cmk, from_version=from_version,
                                to_version=to_version, error=str(exc), **base)
        return RewrapResult(status="rewrapped", from_cmk=from_cmk, from_version=from_version,
                            to_version=to_version, error=None, **base)

    def _rewrap_empty(self, stored: StoredObject, metadata: Mapping[str, str]) -> None:
        """An empty object has no range to copy: re-PUT it, conditional on the ETag."""
        headers = dict(metadata)
        headers["If-Match"] = f'"{stored.etag}"'
        if stored.content_type:
            headers["Content-Type"] = stored.content_type
        if self.head(stored.bucket, stored.key).etag != stored.etag:
            raise ObjectChangedError(f"{stored.uri} changed during the rewrap; nothing was written")
        try:
            self._bucket(stored.bucket).put_object(stored.key, b"", headers=headers)
        except oss2.exceptions.PreconditionFailed as exc:
            raise ObjectChangedError(f"{stored.uri} changed during the rewrap; nothing was written") from exc

    # ----------------------------------------------------------------- listing
    def exists(self, bucket_name: str | None, key: str) -> bool:
        bucket = self._bucket(bucket_name)
        return bool(self.config.retry.call(lambda: bucket.object_exists(key), what=f"HEAD {key!r}"))

    def list_keys(self, bucket_name: str | None, prefix: str = "") -> Iterator[str]:
        for info in oss2.ObjectIteratorV2(self._bucket(bucket_name), prefix=prefix):
            yield info.key

    def delete(self, bucket_name: str | None, key: str) -> None:
        bucket = self._bucket(bucket_name)
        self.config.retry.call(lambda: bucket.delete_object(key), what=f"DELETE {key!r}")


def _part_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The CSE subset repeated on every UploadPart (the server checks it equals the Init's)."""
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith(H.CSE_PREFIX)}


def _chain(first: bytes, rest: Iterator[bytes | memoryview]) -> Iterator[bytes | memoryview]:
    if first:
        yield first
    yield from rest
