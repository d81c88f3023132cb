"""Upload: encrypt a path, file object or iterator under a fresh data key through ``EnvelopeWriter``.

The writer owns the format (data key, headers, ciphers, integrity tag bound to bucket and key); this
module owns the transfer. The tag must be in the metadata at the first request (PutObject or
InitiateMultipartUpload), so:

* a re-readable source gets a MAC-only first pass (multipart: every part MACed in parallel,
  nothing kept), then its parts are read, encrypted and sent by the worker pool;
* an iterator is encrypted once while it is tagged, its *ciphertext* spooled to an anonymous
  temporary file (``EnvelopeWriter.spool_encrypt``), then sent from there.

Memory is a few MiB per worker whatever the object or part size (see ``part_body``).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import cast

import oss2

from airflow_provider_osscse.envelope.headers import (
    check_metadata_size,
    user_metadata_headers,
)
from airflow_provider_osscse.envelope.integrity_tag import ObjectBinding
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKeyRequest
from airflow_provider_osscse.envelope.multipart import MAX_PART_COUNT, PartPlan, plan_parts
from airflow_provider_osscse.envelope.writer import EnvelopeWriter
from airflow_provider_osscse.exceptions import PartPlanError
from airflow_provider_osscse.transport.multipart_upload import (
    run_multipart,
    upload_part_action,
)
from airflow_provider_osscse.transport.oss_errors import translated
from airflow_provider_osscse.transport.parallel import run_bounded
from airflow_provider_osscse.transport.part_body import (
    PartBody,
    PieceBuffers,
    fd_read_into,
)
from airflow_provider_osscse.transport.results import UploadResult, oss_uri
from airflow_provider_osscse.transport.transfer_base import (
    STREAM_CHUNK,
    TransferBase,
    part_headers,
)
from airflow_provider_osscse.transport.transfer_checksums import put_object_checked
from airflow_provider_osscse.transport.upload_source import (
    RandomAccessSource,
    UploadSource,
    is_random_access,
    iter_source,
)


class UploadOperations(TransferBase):
    """``put``: one PUT up to ``multipart_threshold``, a parallel multipart upload above."""

    @translated("put")
    def put(
        self,
        key: str,
        source: UploadSource,
        cmk: Cmk,
        *,
        bucket: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        size: int | None = None,
    ) -> UploadResult:
        """Encrypt ``source`` under a fresh data key wrapped by ``cmk`` and store it as ``key``."""
        # Metadata OSS could never store fails here, before any key-service call or read of the source.
        check_metadata_size(user_metadata_headers(metadata, object_name=key), object_name=key)
        oss_bucket = self._bucket(bucket)
        if isinstance(source, (bytes, bytearray, memoryview)):
            source = io.BytesIO(bytes(source))
        if is_random_access(source):
            reader = RandomAccessSource(source, size)  # type: ignore[arg-type]
            try:
                writer = self._writer(cmk, oss_bucket, key, reader.size)
                if reader.size <= self.config.multipart_threshold:
                    etag, parts = self._put_single(
                        oss_bucket, key, reader.read_at(0, reader.size), writer, metadata, content_type
                    )
                    total = reader.size
                else:
                    etag, parts, total = self._put_multipart_random(
                        oss_bucket, key, reader, writer, metadata, content_type
                    )
            finally:
                reader.close()
        else:
            writer = self._writer(cmk, oss_bucket, key, size)
            etag, parts, total = self._put_stream(oss_bucket, key, source, writer, metadata, content_type)
        return UploadResult(
            uri=oss_uri(oss_bucket.bucket_name, key),
            bucket=oss_bucket.bucket_name,
            key=key,
            size=total,
            etag=etag,
            cmk=cmk.reference,
            key_version=cmk.key_version(writer.wrapped),
            wrap_alg=writer.wrapped.wrap_alg,
            integrity="tagged" if writer.binding is not None else "tagged-unbound",
            parts=parts,
        )

    def _writer(self, cmk: Cmk, bucket: oss2.Bucket, key: str, size: int | None) -> EnvelopeWriter:
        """One data key per object, the tag bound to (bucket, key) unless unbound tags were asked for."""
        # The size lets an opt-in data-key cache enforce its byte bound; plain CMKs ignore it.
        return EnvelopeWriter(
            cmk,
            object_name=key,
            binding=self._binding(bucket, key),
            data_key_request=DataKeyRequest(plaintext_size=size),
        )

    def _binding(self, bucket: oss2.Bucket, key: str) -> ObjectBinding | None:
        """The name a new object's tag is bound to, unless unbound tags were asked for."""
        return ObjectBinding(bucket.bucket_name, key) if self.config.bind_integrity_tag else None

    @staticmethod
    def _with_content_type(headers: dict[str, str], content_type: str | None) -> dict[str, str]:
        headers["Content-Type"] = content_type or "application/octet-stream"
        return headers

    def _put_single(
        self,
        bucket: oss2.Bucket,
        key: str,
        data: bytes,
        writer: EnvelopeWriter,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
    ) -> tuple[str, int]:
        segment = plan_parts(len(data), self.config.part_size).part_size
        tag = writer.compute_integrity(data, segment_size=segment)
        headers = self._with_content_type(
            writer.metadata(plaintext_length=len(data), integrity=tag, user_metadata=metadata), content_type
        )
        ciphertext = writer.cipher(0).update(data)
        result = put_object_checked(bucket, key, ciphertext, headers, retry=self.config.retry, what=f"PUT {key!r}")
        return result.etag, 1

    def _put_multipart_random(
        self,
        bucket: oss2.Bucket,
        key: str,
        reader: RandomAccessSource,
        writer: EnvelopeWriter,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
    ) -> tuple[str, int, int]:
        """Pass 1 MACs every part (in parallel, nothing kept); pass 2 encrypts and sends them.

        Two passes because the tag must be in the metadata at InitiateMultipartUpload. Both read the
        source in :data:`PIECE_SIZE` pieces into per-thread buffers, so memory is a few MiB per
        worker whatever the part or object size. Each part's ciphertext is verified against its ETag
        by MD5 (oss2's CRC64 off for UploadPart): see
        :func:`~airflow_provider_osscse.transport.multipart_upload.upload_part_action`.
        """
        plan = plan_parts(reader.size, self.config.part_size)
        builder = writer.integrity_builder(plan.part_size)
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

        run_bounded(
            mac, range(1, plan.part_count + 1), max_workers=self.config.max_workers, thread_name_prefix="osscse-mac"
        )
        tag = writer.finish_integrity(builder, plan.total_size)
        headers = self._with_content_type(
            writer.metadata(plaintext_length=plan.total_size, part_plan=plan, integrity=tag, user_metadata=metadata),
            content_type,
        )

        def produce(number: int) -> PartBody:
            part = plan.part(number)
            return PartBody(reader.read_into, part.offset, part.size, writer.cipher(part.offset), buffers)

        etag, parts = self._send_parts(bucket, key, plan, produce, headers)
        return etag, parts, plan.total_size

    def _put_stream(
        self,
        bucket: oss2.Bucket,
        key: str,
        source: UploadSource,
        writer: EnvelopeWriter,
        metadata: Mapping[str, str] | None,
        content_type: str | None,
    ) -> tuple[str, int, int]:
        """An iterator: small ones in memory; large ones spool *ciphertext* (never plaintext) to disk."""
        chunks = iter_source(source, STREAM_CHUNK)
        head = bytearray()
        for chunk in chunks:
            head += chunk
            if len(head) > self.config.multipart_threshold:
                break
        else:
            etag, parts = self._put_single(bucket, key, bytes(head), writer, metadata, content_type)
            return etag, parts, len(head)
        part_size = plan_parts(MAX_PART_COUNT * self.config.part_size, self.config.part_size).part_size
        tag, total, spool = writer.spool_encrypt(
            cast(Iterable[bytes], _chain(head, chunks)), segment_size=part_size, chunk_size=STREAM_CHUNK
        )
        with spool:
            plan = plan_parts(total, part_size)
            if plan.part_size != part_size:  # more than MAX_PART_COUNT parts at this size: cannot re-segment
                raise PartPlanError(
                    f"stream of {total} bytes needs a part size above {part_size}; pass size= or a larger part_size"
                )
            headers = self._with_content_type(
                writer.metadata(plaintext_length=total, part_plan=plan, integrity=tag, user_metadata=metadata),
                content_type,
            )
            read_spool = fd_read_into(spool.fileno())
            buffers = PieceBuffers()

            def produce(number: int) -> PartBody:
                part = plan.part(number)
                return PartBody(read_spool, part.offset, part.size, None, buffers)

            etag, parts = self._send_parts(bucket, key, plan, produce, headers)
        return etag, parts, total

    def _send_parts(
        self,
        bucket: oss2.Bucket,
        key: str,
        plan: PartPlan,
        produce: Callable[[int], PartBody],
        headers: Mapping[str, str],
    ) -> tuple[str, int]:
        """The parallel multipart upload of ``plan``'s parts (Init carries ``headers``, every part the
        CSE subset); returns the object's ETag and the part count."""
        outcome = run_multipart(
            bucket,
            key,
            part_count=plan.part_count,
            send_part=upload_part_action(bucket, key, produce, part_headers(headers)),
            init_headers=dict(headers),
            max_workers=self.config.max_workers,
            retry=self.config.retry,
            progress=self._progress(f"upload {oss_uri(bucket.bucket_name, key)}", plan.total_size),
        )
        return outcome.etag, outcome.parts


def _chain(head: bytearray, rest: Iterator[bytes | memoryview]) -> Iterator[bytes | bytearray | memoryview]:
    """The buffered head (no copy), then the rest of the iterator; the head is emptied once consumed."""
    if head:
        yield head
        head.clear()
    yield from rest
