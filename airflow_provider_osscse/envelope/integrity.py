"""A keyed integrity tag over an object's plaintext, stored beside the official headers.

The OSS client-side-encryption format has no integrity at all. This project adds one header,
``x-oss-meta-osscse-integrity``, outside the ``client-side-encryption-`` namespace, so official
SDKs ignore it and keep reading the object::

    v2;seg=<segment size>;tag=<base64 content tag>;bind=<base64 name binding>   (written by default)
    v2;seg=<segment size>;tag=<base64 content tag>                              (explicitly unbound)
    v1;seg=<segment size>;tag=<base64>                                          (earlier versions; read only)

Construction (see docs/integrity.md for what it covers and why)::

    k_mac   = HKDF-SHA256(ikm=data_key, salt=None, info=b"airflow-provider-osscse/integrity/v2", L=32)
    seg_i   = HMAC(k_mac, b"seg" || u64(i) || plaintext_segment_i || u64(len_i))
    content = HMAC(k_mac, b"osscse-tag-v2" || u8(bound) || u64(len(cek_alg)) || cek_alg || IV
                          || u64(total_len) || u64(segment_size) || seg_0 || seg_1 || ...)
    bind    = HMAC(k_mac, b"osscse-bind-v2" || u64(len(bucket)) || bucket || u64(len(key)) || key
                          || content)

``bound`` is inside the content tag, so stripping ``bind`` from a bound tag (to pass an object off
under another name as "unbound") breaks the content tag. ``bind`` covers only the name and the
content tag, so a copy to another name is re-bound by whoever can unwrap the data key, without
reading the content again (see :func:`rebind_tag`). v1 differs only in the HKDF info
(``.../integrity/v1``), the label ``osscse-tag-v1``, no ``bound`` byte and no binding.

Segments are fixed-size (the last may be short; an empty object has none). For multipart uploads
the segment size equals the part size, so each part's MAC is computed independently, in parallel,
in any order, and only :meth:`IntegrityBuilder.finish` needs them all. Header values are bounded
before use (segment size at least :data:`MIN_SEGMENT_SIZE` and a multiple of 16; at most
:data:`MAX_SEGMENT_COUNT` segments), so a forged header cannot make a reader allocate or MAC per byte.
"""

from __future__ import annotations

import enum
import hmac
import struct
import threading
from typing import NoReturn

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

# The header format, re-exported (``X as X`` marks the re-export for type checkers and linters).
from airflow_provider_osscse.envelope.integrity_tag import (
    DEFAULT_SEGMENT_SIZE as DEFAULT_SEGMENT_SIZE,
)
from airflow_provider_osscse.envelope.integrity_tag import (
    INTEGRITY_HEADER as INTEGRITY_HEADER,
)
from airflow_provider_osscse.envelope.integrity_tag import (
    INTEGRITY_VERSION as INTEGRITY_VERSION,
)
from airflow_provider_osscse.envelope.integrity_tag import (
    MAX_SEGMENT_COUNT as MAX_SEGMENT_COUNT,
)
from airflow_provider_osscse.envelope.integrity_tag import (
    MIN_SEGMENT_SIZE as MIN_SEGMENT_SIZE,
)
from airflow_provider_osscse.envelope.integrity_tag import (
    TAG_SIZE as TAG_SIZE,
)
from airflow_provider_osscse.envelope.integrity_tag import (
    IntegrityTag as IntegrityTag,
)
from airflow_provider_osscse.envelope.integrity_tag import (
    ObjectBinding as ObjectBinding,
)
from airflow_provider_osscse.envelope.keywrap import DataKey
from airflow_provider_osscse.exceptions import (
    IntegrityError,
)

_HKDF_INFO = {"v1": b"airflow-provider-osscse/integrity/v1", "v2": b"airflow-provider-osscse/integrity/v2"}
_U64 = struct.Struct(">Q")


class IntegrityPolicy(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() from 'IntegrityPolicy.X' to the value
    """What a reader does about the tag."""

    #: Refuse objects without a tag (official-SDK objects) and ranged reads that cannot be verified.
    REQUIRE = "require"
    #: Verify when a tag is present; read untagged objects but report them ``unauthenticated``.
    IF_PRESENT = "if-present"
    #: Do not verify.
    OFF = "off"


class IntegrityStatus(str, enum.Enum):  # noqa: UP042 - StrEnum would change str() from 'IntegrityStatus.X' to the value
    """The outcome of a read."""

    VERIFIED = "verified"
    UNAUTHENTICATED = "unauthenticated"
    SKIPPED = "skipped"


#: Set (``extra={UNVERIFIED_READ_RECORD: True}``) on the WARNING record of every read whose plaintext
#: is not verified, so an interface that reports such reads itself, in its own words (the ``osscse``
#: command's ``warning: ... is UNAUTHENTICATED`` line), can drop the record instead of saying it twice.
UNVERIFIED_READ_RECORD = "osscse_unverified_read"


def derive_mac_key(data_key: DataKey, version: str = INTEGRITY_VERSION) -> bytes:
    """HKDF-SHA256 of the data key: binds the tag to the *unwrapped* key, so CMK rotation keeps it valid."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO[version]).derive(data_key.key)


def _binding_mac(mac_key: bytes, binding: ObjectBinding, content_tag: bytes) -> bytes:
    mac = crypto_hmac.HMAC(mac_key, hashes.SHA256())
    mac.update(b"osscse-bind-v2" + binding.encode() + content_tag)
    return mac.finalize()


def rebind_tag(
    data_key: DataKey,
    tag: IntegrityTag,
    *,
    source: ObjectBinding,
    destination: ObjectBinding,
    object_name: str = "?",
) -> IntegrityTag:
    """The tag for a copy of an object at ``destination``, without reading its content again.

    A bound tag's binding is checked against ``source`` first (a copy must not launder an object
    that was already moved); unbound and v1 tags are returned unchanged (they never named a place).
    """
    if not tag.bound:
        return tag
    if tag.binding_tag is None:  # what ``tag.bound`` means; spelled out so the type narrows
        return tag
    mac_key = derive_mac_key(data_key, tag.version)
    if not hmac.compare_digest(_binding_mac(mac_key, source, tag.tag), tag.binding_tag):
        raise IntegrityError(
            f"its integrity tag is bound to another bucket/key than {source}: "
            f"the object was moved or replayed from another name",
            object_name=object_name,
        )
    return IntegrityTag(
        segment_size=tag.segment_size,
        tag=tag.tag,
        version=tag.version,
        binding_tag=_binding_mac(mac_key, destination, tag.tag),
    )


class IntegrityBuilder:
    """Computes the tag from per-segment MACs; thread-safe, segments in any order.

    Use :meth:`segment_mac` for whole segments (e.g. a part in memory) or :meth:`segment_hasher`
    for a segment streamed in chunks; then :meth:`finish` (writer) or :meth:`verify` (reader doing
    parallel ranged downloads aligned to the segment size).
    """

    def __init__(self, data_key: DataKey, cek_alg: str, segment_size: int, *, version: str = INTEGRITY_VERSION) -> None:
        if segment_size < MIN_SEGMENT_SIZE or segment_size % 16:
            raise ValueError(
                f"segment size must be a multiple of 16 and at least {MIN_SEGMENT_SIZE}, got {segment_size}"
            )
        self.version = version
        self._mac_key = derive_mac_key(data_key, version)
        self._iv = data_key.iv
        self._cek_alg = cek_alg.encode("ascii")
        self.segment_size = segment_size
        self._segments: dict[int, tuple[int, bytes]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"IntegrityBuilder(segment_size={self.segment_size}, segments={len(self._segments)})"

    def __reduce__(self) -> NoReturn:
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

    def _compute(self, total_length: int, *, bound: bool) -> bytes:
        with self._lock:
            segments = dict(self._segments)
        count = -(-total_length // self.segment_size)
        if count > MAX_SEGMENT_COUNT:
            raise IntegrityError(f"{count} integrity segments exceed the maximum of {MAX_SEGMENT_COUNT}")
        if sorted(segments) != list(range(count)):
            raise IntegrityError(
                f"integrity segments do not cover the object: expected {count} segments of "
                f"{self.segment_size} bytes for {total_length} bytes, got {len(segments)}"
            )
        outer = crypto_hmac.HMAC(self._mac_key, hashes.SHA256())
        if self.version == "v1":
            outer.update(b"osscse-tag-v1")
        else:
            outer.update(b"osscse-tag-v2" + (b"\x01" if bound else b"\x00"))
        outer.update(_U64.pack(len(self._cek_alg)) + self._cek_alg + self._iv)
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

    def finish(self, total_length: int, *, binding: ObjectBinding | None) -> IntegrityTag:
        """The tag for an object of ``total_length`` plaintext bytes (all segments must be recorded).

        ``binding`` names the bucket and key the tag is bound to; ``None`` writes an unbound tag
        (an explicit choice: such an object verifies under any name).
        """
        if self.version != INTEGRITY_VERSION:
            raise ValueError(f"{self.version} tags are verified, never written")
        content = self._compute(total_length, bound=binding is not None)
        bind = _binding_mac(self._mac_key, binding, content) if binding is not None else None
        return IntegrityTag(segment_size=self.segment_size, tag=content, version=self.version, binding_tag=bind)

    def verify(
        self,
        expected: IntegrityTag,
        total_length: int,
        *,
        binding: ObjectBinding | None = None,
        object_name: str = "?",
    ) -> None:
        """Raise :class:`IntegrityError` unless the recorded segments reproduce ``expected``.

        A bound tag is also checked against ``binding`` (the bucket and key actually read); without
        one it cannot be checked, and that is an error too, never a silent pass.
        """
        if expected.segment_size != self.segment_size or expected.version != self.version:
            raise IntegrityError("integrity segment size or version mismatch", object_name=object_name)
        try:
            actual = self._compute(total_length, bound=expected.bound)
        except IntegrityError as exc:
            raise exc.for_object(object_name) from None
        if not hmac.compare_digest(actual, expected.tag):
            raise IntegrityError(
                "integrity tag mismatch: the content, its length, its IV, "
                "cek-alg or wrapped data key were altered (or the wrong CMK version was used)",
                object_name=object_name,
            )
        if expected.binding_tag is not None:
            if binding is None:
                raise IntegrityError(
                    "the integrity tag is bound to the object's bucket and key, "
                    "but the reader was not told where the object was read from (pass binding=ObjectBinding(...))",
                    object_name=object_name,
                )
            if not hmac.compare_digest(_binding_mac(self._mac_key, binding, actual), expected.binding_tag):
                raise IntegrityError(
                    f"the integrity tag is bound to another bucket/key than {binding}: "
                    f"the object was moved, swapped or replayed from another name",
                    object_name=object_name,
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
        # The builder's own helper (same module): the MAC key never leaves this module.
        self._mac = crypto_hmac.HMAC(builder._mac_key, hashes.SHA256())  # noqa: SLF001
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
        self._builder._record(self._index, self._length, mac)  # noqa: SLF001 - the builder's own helper
        return mac

    def __repr__(self) -> str:
        return f"SegmentHasher(index={self._index}, length={self._length})"

    def __reduce__(self) -> NoReturn:  # also refuses copy.copy (a twin would share the MAC state)
        raise TypeError("SegmentHasher holds key material and cannot be pickled or copied")


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

    def __reduce__(self) -> NoReturn:  # also refuses copy.copy (a twin would share the MAC state)
        raise TypeError("StreamingTagger holds key material and cannot be pickled or copied")

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
