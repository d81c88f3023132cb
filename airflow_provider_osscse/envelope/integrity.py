"""A keyed integrity tag over an object's plaintext, stored beside the official headers.

The OSS client-side-encryption format has no integrity at all. This project adds one header,
``x-oss-meta-osscse-integrity: v1;seg=<segment size>;tag=<base64>``, outside the
``client-side-encryption-`` namespace, so official SDKs ignore it and keep reading the object.

Construction (see docs/integrity.md for what it covers and why)::

    k_mac   = HKDF-SHA256(ikm=data_key, salt=None, info=b"airflow-provider-osscse/integrity/v1", L=32)
    seg_i   = HMAC(k_mac, b"seg" || u64(i) || plaintext_segment_i || u64(len_i))
    tag     = HMAC(k_mac, b"osscse-tag-v1" || u64(len(cek_alg)) || cek_alg || IV
                         || u64(total_len) || u64(segment_size) || seg_0 || seg_1 || ...)

Segments are fixed-size (the last may be short; an empty object has none). For multipart uploads
the segment size equals the part size, so each part's MAC is computed independently, in parallel,
in any order, and only :meth:`IntegrityBuilder.finish` needs them all. Refinements over the first
design: the segment length goes after the data (a stream learns the last segment's length only at its
end; ``u64(i)`` is fixed-width so the input stays unambiguous), and ``cek_alg`` is length-prefixed.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import re
import struct
import threading
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from airflow_provider_osscse.envelope.errors import (
    EnvelopeFormatError,
    IntegrityError,
)
from airflow_provider_osscse.envelope.keywrap import ContentKey

INTEGRITY_HEADER = "x-oss-meta-osscse-integrity"
INTEGRITY_VERSION = "v1"
HKDF_INFO = b"airflow-provider-osscse/integrity/v1"
TAG_SIZE = 32
#: Segment size for single-stream uploads (multipart uses the part size).
DEFAULT_SEGMENT_SIZE = 8 * 1024 * 1024

_VALUE_RE = re.compile(r"^v1;seg=([1-9][0-9]{0,15});tag=([A-Za-z0-9+/]{43}=)$")
_U64 = struct.Struct(">Q")


class IntegrityPolicy(str, enum.Enum):
    """What a reader does about the tag."""

    #: Refuse objects without a tag (official-SDK objects) and ranged reads that cannot be verified.
    REQUIRE = "require"
    #: Verify when a tag is present; read untagged objects but report them ``unauthenticated``.
    IF_PRESENT = "if-present"
    #: Do not verify.
    OFF = "off"


class IntegrityStatus(str, enum.Enum):
    """The outcome of a read."""

    VERIFIED = "verified"
    UNAUTHENTICATED = "unauthenticated"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class IntegrityTag:
    """The parsed header: the segment size and the 32-byte tag (the tag is not secret)."""

    segment_size: int
    tag: bytes

    def __post_init__(self) -> None:
        if self.segment_size <= 0:
            raise ValueError("segment size must be > 0")
        if len(self.tag) != TAG_SIZE:
            raise ValueError(f"tag must be {TAG_SIZE} bytes")

    def to_header_value(self) -> str:
        """``v1;seg=<n>;tag=<base64>``."""
        return f"{INTEGRITY_VERSION};seg={self.segment_size};tag={base64.b64encode(self.tag).decode()}"

    @classmethod
    def parse(cls, value: str, *, object_name: str) -> IntegrityTag:
        """Strict parse: any deviation is an :class:`EnvelopeFormatError` naming header and object."""
        match = _VALUE_RE.match(value.strip())
        if match is None:
            raise EnvelopeFormatError(
                f"object {object_name!r}: header {INTEGRITY_HEADER} is malformed "
                f"(expected 'v1;seg=<segment size>;tag=<base64 of 32 bytes>')"
            )
        try:
            tag = base64.b64decode(match.group(2), validate=True)
        except binascii.Error:
            raise EnvelopeFormatError(
                f"object {object_name!r}: header {INTEGRITY_HEADER} has a tag that is not base64"
            ) from None
        return cls(segment_size=int(match.group(1)), tag=tag)


def derive_mac_key(content_key: ContentKey) -> bytes:
    """HKDF-SHA256 of the data key: binds the tag to the *unwrapped* key, so CMK rotation keeps it valid."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO).derive(content_key.key)


class IntegrityBuilder:
    """Computes the tag from per-segment MACs; thread-safe, segments in any order.

    Use :meth:`segment_mac` for whole segments (e.g. a part in memory) or :meth:`segment_hasher`
    for a segment streamed in chunks; then :meth:`finish` (writer) or :meth:`verify` (reader doing
    parallel ranged downloads aligned to the segment size).
    """

    def __init__(self, content_key: ContentKey, cek_alg: str, segment_size: int) -> None:
        if segment_size <= 0:
            raise ValueError("segment size must be > 0")
        self._mac_key = derive_mac_key(content_key)
        self._iv = content_key.iv
        self._cek_alg = cek_alg.encode("ascii")
        self.segment_size = segment_size
        self._segments: dict[int, tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IntegrityBuilder(segment_size={self.segment_size}, segments={len(self._segments)})"

    def __reduce__(self):  # noqa: D105
        raise TypeError("IntegrityBuilder holds key material and cannot be pickled")

    def segment_hasher(self, index: int) -> SegmentHasher:
        """An incremental hasher for segment ``index`` (0-based; for multipart: part number - 1)."""
        return SegmentHasher(self, index)

    def segment_mac(self, index: int, data: bytes | bytearray | memoryview) -> bytes:
        """MAC segment ``index`` (0-based) in one call and record it."""
        hasher = self.segment_hasher(index)
        hasher.update(data)
        return hasher.finalize()

    def _record(self, index: int, length: int, mac: bytes) -> None:
        if index < 0:
            raise ValueError("segment index must be >= 0")
        if length > self.segment_size:
            raise ValueError(f"segment {index} is {length} bytes, more than the segment size")
        with self._lock:
            if index in self._segments:
                raise ValueError(f"segment {index} was already recorded")
            self._segments[index] = (length, mac)

    def _compute(self, total_length: int) -> bytes:
        with self._lock:
            segments = dict(self._segments)
        count = -(-total_length // self.segment_size)
        if sorted(segments) != list(range(count)):
            raise IntegrityError(
                f"integrity segments do not cover the object: expected {count} segments of "
                f"{self.segment_size} bytes for {total_length} bytes, got {len(segments)}"
            )
        outer = crypto_hmac.HMAC(self._mac_key, hashes.SHA256())
        outer.update(b"osscse-tag-v1" + _U64.pack(len(self._cek_alg)) + self._cek_alg + self._iv)
        outer.update(_U64.pack(total_length) + _U64.pack(self.segment_size))
        for i in range(count):
            length, mac = segments[i]
            expected = min(self.segment_size, total_length - i * self.segment_size)
            if length != expected:
                raise IntegrityError(
                    f"integrity segment {i} is {length} bytes, expected {expected}: truncated or extended"
                )
            outer.update(mac)
        return outer.finalize()

    def finish(self, total_length: int) -> IntegrityTag:
        """The tag for an object of ``total_length`` plaintext bytes (all segments must be recorded)."""
        return IntegrityTag(segment_size=self.segment_size, tag=self._compute(total_length))

    def verify(self, expected: IntegrityTag, total_length: int, *, object_name: str = "?") -> None:
        """Raise :class:`IntegrityError` unless the recorded segments reproduce ``expected``."""
        if expected.segment_size != self.segment_size:
            raise IntegrityError(f"object {object_name!r}: integrity segment size mismatch")
        try:
            actual = self._compute(total_length)
        except IntegrityError as exc:
            raise IntegrityError(f"object {object_name!r}: {exc}") from None
        if not hmac.compare_digest(actual, expected.tag):
            raise IntegrityError(
                f"object {object_name!r}: integrity tag mismatch: the content, its length, its IV, "
                f"cek-alg or wrapped data key were altered (or the wrong CMK version was used)"
            )


class SegmentHasher:
    """Incremental MAC of one segment: HMAC(k, b"seg" || u64(i) || data || u64(len)).

    Feed chunks with :meth:`update`, then :meth:`finalize` records the MAC in the builder. The
    length goes *after* the data so a stream does not need to know the last segment's length in
    advance.
    """

    __slots__ = ("_builder", "_index", "_length", "_mac")

    def __init__(self, builder: IntegrityBuilder, index: int) -> None:
        if index < 0:
            raise ValueError("segment index must be >= 0")
        self._builder = builder
        self._index = index
        self._length = 0
        self._mac = crypto_hmac.HMAC(builder._mac_key, hashes.SHA256())
        self._mac.update(b"seg" + _U64.pack(index))

    @property
    def length(self) -> int:
        return self._length

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._length += len(data)
        self._mac.update(data)

    def finalize(self) -> bytes:
        self._mac.update(_U64.pack(self._length))
        mac = self._mac.finalize()
        self._builder._record(self._index, self._length, mac)
        return mac

    def __repr__(self) -> str:
        return f"SegmentHasher(index={self._index}, length={self._length})"


class StreamingTagger:
    """Feeds sequential plaintext into an :class:`IntegrityBuilder`, cutting it into segments.

    Used by writers with a single stream and by readers verifying a full read; memory is one HMAC
    state, independent of the object size.
    """

    def __init__(self, builder: IntegrityBuilder) -> None:
        self._builder = builder
        self._index = 0
        self._hasher: SegmentHasher | None = None
        self._seen = 0

    @property
    def builder(self) -> IntegrityBuilder:
        """The builder receiving the segment MACs (call ``finish``/``verify`` after :meth:`close`)."""
        return self._builder

    @property
    def length(self) -> int:
        """Plaintext bytes fed so far."""
        return self._seen

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        seg = self._builder.segment_size
        while len(view):
            if self._hasher is None:
                self._hasher = self._builder.segment_hasher(self._index)
            take = min(seg - self._hasher.length, len(view))
            self._hasher.update(view[:take])
            self._seen += take
            view = view[take:]
            if self._hasher.length == seg:
                self._hasher.finalize()
                self._hasher = None
                self._index += 1

    def close(self) -> int:
        """Record the last (short) segment; returns the total length seen."""
        if self._hasher is not None:
            self._hasher.finalize()
            self._hasher = None
            self._index += 1
        return self._seen
