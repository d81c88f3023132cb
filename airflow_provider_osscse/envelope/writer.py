"""Encrypt one object: a fresh data key wrapped once by the CMK, then headers and ciphertext.

Single PUT::

    writer = EnvelopeWriter(cmk, object_name="data/a.csv")
    tag = writer.compute_integrity("a.csv")  # cheap HMAC-only pass (re-readable source)
    headers = writer.metadata(plaintext_length=size, integrity=tag)
    body = writer.encrypt_chunks("a.csv")  # iterator of ciphertext chunks

Multipart (parts in any order, any thread)::

    plan = plan_parts(size, 64 * 2**20)
    tag = writer.compute_integrity("a.csv", segment_size=plan.part_size)
    headers = writer.metadata(part_plan=plan, integrity=tag)  # on Init AND every UploadPart
    ciphertext = writer.encrypt_part(plan, number, plaintext_of_part)

For a source that cannot be read twice, :meth:`EnvelopeWriter.spool_encrypt` encrypts into a
temporary file while computing the tag: only *ciphertext* ever touches the disk.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from typing import BinaryIO, NoReturn

from airflow_provider_osscse.envelope.aes_ctr import CEK_ALG_AES_CTR, CtrCipher
from airflow_provider_osscse.envelope.headers import Envelope
from airflow_provider_osscse.envelope.integrity import (
    DEFAULT_SEGMENT_SIZE,
    IntegrityBuilder,
    IntegrityTag,
    ObjectBinding,
    StreamingTagger,
)
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.envelope.multipart import PartPlan
from airflow_provider_osscse.envelope.streams import DEFAULT_CHUNK_SIZE, ByteSource, iter_chunks
from airflow_provider_osscse.exceptions import PartPlanError


class EnvelopeWriter:
    """One object's encryption state. Thread-safe for :meth:`encrypt_part` and integrity segments.

    ``data_key``/``wrapped`` may be passed to pin them (tests, re-encryption); normally the CMK
    creates and wraps a fresh data key: one key-service round trip per object, never per part.
    ``data_key_request`` tells the CMK what is known of the object (its size, for a data-key cache).
    ``binding`` (bucket and object key) is bound into the integrity tag so the object does not verify
    under another name; the transport always passes it unless the user explicitly asked for unbound
    tags. ``None`` writes an unbound tag.
    """

    def __init__(
        self,
        cmk: Cmk,
        *,
        object_name: str,
        data_key: DataKey | None = None,
        wrapped: WrappedDataKey | None = None,
        binding: ObjectBinding | None = None,
        data_key_request: DataKeyRequest | None = None,
    ) -> None:
        self.object_name = object_name
        self.binding = binding
        self.key_reference = cmk.reference
        if data_key is None:
            data_key, wrapped = cmk.new_data_key(data_key_request)
        elif wrapped is None:
            wrapped = cmk.wrap(data_key)
        self._content_key = data_key
        self.wrapped: WrappedDataKey = wrapped
        self.cek_alg = CEK_ALG_AES_CTR

    def __repr__(self) -> str:
        return f"EnvelopeWriter(object_name={self.object_name!r}, cmk={self.key_reference!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("EnvelopeWriter holds key material and cannot be pickled")

    def envelope(
        self,
        *,
        plaintext_length: int | None = None,
        content_md5: str | None = None,
        part_plan: PartPlan | None = None,
        integrity: IntegrityTag | None = None,
    ) -> Envelope:
        """The :class:`Envelope` for this object. ``content_md5`` is only stored when given (it leaks
        plaintext equality); for multipart, data-size/part-size come from ``part_plan``."""
        return Envelope(
            wrapped=self.wrapped,
            cek_alg=self.cek_alg,
            unencrypted_content_length=plaintext_length,
            unencrypted_content_md5=content_md5,
            data_size=part_plan.total_size if part_plan else None,
            part_size=part_plan.part_size if part_plan else None,
            integrity=integrity,
        )

    def metadata(
        self,
        *,
        plaintext_length: int | None = None,
        content_md5: str | None = None,
        part_plan: PartPlan | None = None,
        integrity: IntegrityTag | None = None,
        user_metadata: Mapping[str, str] | None = None,
    ) -> dict[str, str]:
        """The headers to send with PutObject (or InitiateMultipartUpload and every UploadPart).

        Raises :class:`MetadataTooLargeError` if OSS would refuse them, before anything is sent.
        """
        return self.envelope(
            plaintext_length=plaintext_length,
            content_md5=content_md5,
            part_plan=part_plan,
            integrity=integrity,
        ).to_metadata(user_metadata=user_metadata, object_name=self.object_name)

    def cipher(self, offset: int = 0) -> CtrCipher:
        """A streaming cipher starting at plaintext byte ``offset`` of this object."""
        return CtrCipher(self._content_key.key, self._content_key.iv, offset)

    def encrypt_chunks(
        self, source: ByteSource, *, offset: int = 0, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Ciphertext chunks of ``source`` (path, file-like, bytes or chunk iterable), constant memory."""
        cipher = self.cipher(offset)
        for chunk in iter_chunks(source, chunk_size):
            yield cipher.update(chunk)

    def encrypt_part(self, plan: PartPlan, number: int, data: bytes | bytearray | memoryview) -> bytes:
        """Encrypt part ``number`` (1-based) of ``plan``; any order, any thread."""
        part = plan.part(number)
        if len(data) != part.size:
            raise PartPlanError(
                f"part {number} must be {part.size} bytes, got {len(data)}",
                object_name=self.object_name,
            )
        return self.cipher(part.offset).update(data)

    def part_chunks(
        self, plan: PartPlan, number: int, source: ByteSource, *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Encrypt part ``number`` streamed from ``source`` (the part's plaintext only)."""
        return self.encrypt_chunks(source, offset=plan.part(number).offset, chunk_size=chunk_size)

    def integrity_builder(self, segment_size: int = DEFAULT_SEGMENT_SIZE) -> IntegrityBuilder:
        """A builder for the tag; for multipart use ``segment_size=plan.part_size`` and segment = part - 1."""
        return IntegrityBuilder(self._content_key, self.cek_alg, segment_size)

    def compute_integrity(
        self,
        source: ByteSource,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> IntegrityTag:
        """HMAC-only pass over a re-readable source, before the upload that must carry the tag."""
        tagger = StreamingTagger(self.integrity_builder(segment_size))
        for chunk in iter_chunks(source, chunk_size):
            tagger.update(chunk)
        total = tagger.close()
        return self.finish_integrity(tagger.builder, total)

    def finish_integrity(self, builder: IntegrityBuilder, total_length: int) -> IntegrityTag:
        """The tag from a filled builder, bound to this writer's ``binding`` (if any)."""
        return builder.finish(total_length, binding=self.binding)

    def spool_encrypt(
        self,
        source: ByteSource,
        *,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        spool_dir: str | None = None,
    ) -> tuple[IntegrityTag, int, BinaryIO]:
        """One pass for non-re-readable sources: ciphertext → temp file, tag over the plaintext.

        Returns ``(tag, length, file)`` with the file rewound; the caller uploads from it and closes
        it (it is deleted on close). Plaintext never touches the disk.
        """
        builder = self.integrity_builder(segment_size)
        tagger = StreamingTagger(builder)
        cipher = self.cipher(0)
        spool = tempfile.TemporaryFile(dir=spool_dir)  # noqa: SIM115 - handed to the caller
        try:
            for chunk in iter_chunks(source, chunk_size):
                tagger.update(chunk)
                spool.write(cipher.update(chunk))
            total = tagger.close()
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return self.finish_integrity(builder, total), total, spool


class EncryptedObject:
    """Headers plus ciphertext chunks for one single-PUT upload (see :func:`encrypt_object`)."""

    def __init__(self, metadata: dict[str, str], chunks: Iterator[bytes], length: int | None) -> None:
        self.metadata = metadata
        self.chunks = chunks
        #: Plaintext (= ciphertext) length when known up front.
        self.length = length

    def __repr__(self) -> str:
        return f"EncryptedObject(length={self.length}, headers={sorted(self.metadata)})"


def _rereadable(source: ByteSource) -> bool:
    if isinstance(source, (str, bytes, bytearray, memoryview)) or hasattr(source, "__fspath__"):
        return True
    seekable = getattr(source, "seekable", None)
    return bool(seekable and seekable())


def encrypt_object(
    source: ByteSource,
    cmk: Cmk,
    *,
    object_name: str,
    integrity: bool = True,
    content_md5: str | None = None,
    user_metadata: Mapping[str, str] | None = None,
    segment_size: int = DEFAULT_SEGMENT_SIZE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    binding: ObjectBinding | None = None,
) -> EncryptedObject:
    """Shortcut for a single PUT: headers (tag included when ``integrity``) and ciphertext chunks.

    A re-readable source (path, bytes, seekable file) gets an HMAC-only first pass; any other source
    with ``integrity`` is spooled as ciphertext to a temporary file (deleted when the chunks are done).
    """
    writer = EnvelopeWriter(cmk, object_name=object_name, binding=binding)
    if not integrity:
        meta = writer.metadata(content_md5=content_md5, user_metadata=user_metadata)
        return EncryptedObject(meta, writer.encrypt_chunks(source, chunk_size=chunk_size), None)
    if _rereadable(source):
        start = source.tell() if hasattr(source, "tell") else 0
        tagger = StreamingTagger(writer.integrity_builder(segment_size))
        for chunk in iter_chunks(source, chunk_size):
            tagger.update(chunk)
        length = tagger.close()
        tag = writer.finish_integrity(tagger.builder, length)
        if hasattr(source, "seek"):
            source.seek(start)
        meta = writer.metadata(
            plaintext_length=length, content_md5=content_md5, integrity=tag, user_metadata=user_metadata
        )
        return EncryptedObject(meta, writer.encrypt_chunks(source, chunk_size=chunk_size), length)
    tag, length, spool = writer.spool_encrypt(source, segment_size=segment_size, chunk_size=chunk_size)
    meta = writer.metadata(plaintext_length=length, content_md5=content_md5, integrity=tag, user_metadata=user_metadata)

    def _drain() -> Iterator[bytes]:
        with spool:
            while chunk := spool.read(chunk_size):
                yield chunk

    return EncryptedObject(meta, _drain(), length)


def rewrapped_metadata(
    envelope: Envelope,
    wrapped: WrappedDataKey,
    *,
    user_metadata: Mapping[str, str] | None = None,
    object_name: str = "?",
) -> dict[str, str]:
    """The headers of an object whose data key was re-wrapped (CMK rotation or a move to another CMK).

    ``wrapped`` must wrap the *same* data key and IV (``Cmk.rewrap``): only the wrapped values,
    the wrap-alg, the CMK identity/version and the CMK's matdesc change; lengths, part size and the
    integrity tag are kept as they are, and the tag stays valid (it binds the unwrapped data key, the
    IV and the object's name, none of which change).
    """
    return Envelope(
        wrapped=wrapped,
        cek_alg=envelope.cek_alg,
        unencrypted_content_length=envelope.unencrypted_content_length,
        unencrypted_content_md5=envelope.unencrypted_content_md5,
        data_size=envelope.data_size,
        part_size=envelope.part_size,
        integrity=envelope.integrity,
    ).to_metadata(user_metadata=user_metadata, object_name=object_name)
