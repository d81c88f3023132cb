"""The integrity tag's header value and the name it binds: format, constants and bounds.

``x-oss-meta-osscse-integrity: v2;seg=<segment size>;tag=<base64>[;bind=<base64>]`` (or ``v1;...``
from earlier releases). This module parses and renders the value and bounds it before use; how the
tag is computed and verified lives in :mod:`airflow_provider_osscse.envelope.integrity`.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass

from airflow_provider_osscse.exceptions import EnvelopeFormatError

INTEGRITY_HEADER = "x-oss-meta-osscse-integrity"
#: The version written; ``v1`` tags (earlier releases) are still verified.
INTEGRITY_VERSION = "v2"
#: Tag versions a reader verifies.
VERSIONS = ("v1", "v2")
TAG_SIZE = 32
#: Segment size for single-stream uploads (multipart uses the part size).
DEFAULT_SEGMENT_SIZE = 8 * 1024 * 1024
#: Smallest segment a reader accepts (every writer of this project uses >= 100 KiB).
MIN_SEGMENT_SIZE = 64 * 1024
#: Most segments a reader accepts for one object (OSS allows 10,000 parts; a single stream of
#: 8 MiB segments reaches this at 800 GiB). Bounds the reader's memory to a few MiB.
MAX_SEGMENT_COUNT = 100_000

_B64_TAG = r"[A-Za-z0-9+/]{43}="
_VALUE_RE = re.compile(rf"^(v1|v2);seg=([1-9][0-9]{{0,15}});tag=({_B64_TAG})(?:;bind=({_B64_TAG}))?$")
_U64 = struct.Struct(">Q")


@dataclass(frozen=True)
class ObjectBinding:
    """The name a tag is bound to: bucket and object key (not secret)."""

    bucket: str
    key: str

    def encode(self) -> bytes:
        bucket, key = self.bucket.encode("utf-8"), self.key.encode("utf-8")
        return _U64.pack(len(bucket)) + bucket + _U64.pack(len(key)) + key

    def __str__(self) -> str:
        return f"oss://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class IntegrityTag:
    """The parsed header: version, segment size, the 32-byte content tag and the optional name binding.

    Nothing here is secret (MACs, not keys).
    """

    segment_size: int
    tag: bytes
    version: str = INTEGRITY_VERSION
    #: ``HMAC(k_mac, name || content tag)``; ``None`` for unbound v2 tags and every v1 tag.
    binding_tag: bytes | None = None

    def __post_init__(self) -> None:
        if self.version not in VERSIONS:
            raise ValueError(f"unknown integrity tag version {self.version!r}")
        if self.segment_size < MIN_SEGMENT_SIZE or self.segment_size % 16:
            raise ValueError(
                f"segment size must be a multiple of 16 and at least {MIN_SEGMENT_SIZE}, got {self.segment_size}"
            )
        if len(self.tag) != TAG_SIZE or (self.binding_tag is not None and len(self.binding_tag) != TAG_SIZE):
            raise ValueError(f"tags must be {TAG_SIZE} bytes")
        if self.version == "v1" and self.binding_tag is not None:
            raise ValueError("v1 tags cannot be bound to a name")

    @property
    def bound(self) -> bool:
        """Whether the tag binds the object's bucket and key."""
        return self.binding_tag is not None

    def to_header_value(self) -> str:
        """``v2;seg=<n>;tag=<base64>[;bind=<base64>]``."""
        value = f"{self.version};seg={self.segment_size};tag={base64.b64encode(self.tag).decode()}"
        if self.binding_tag is not None:
            value += f";bind={base64.b64encode(self.binding_tag).decode()}"
        return value

    def segment_count(self, total_length: int) -> int:
        """Segments covering ``total_length`` bytes; refuses counts above :data:`MAX_SEGMENT_COUNT`."""
        count = -(-total_length // self.segment_size)
        if count > MAX_SEGMENT_COUNT:
            raise EnvelopeFormatError(
                f"header {INTEGRITY_HEADER}: segment size {self.segment_size} makes {count} segments for "
                f"{total_length} bytes, more than {MAX_SEGMENT_COUNT}; the header was altered or is not ours"
            )
        return count

    @classmethod
    def parse(cls, value: str, *, object_name: str) -> IntegrityTag:
        """Strict parse: any deviation is an :class:`EnvelopeFormatError` naming header and object."""
        match = _VALUE_RE.match(value.strip())
        if match is None:
            raise EnvelopeFormatError(
                f"header {INTEGRITY_HEADER} is malformed "
                f"(expected 'v2;seg=<segment size>;tag=<base64 of 32 bytes>[;bind=<base64 of 32 bytes>]')",
                object_name=object_name,
            )
        version, seg, tag_text, bind_text = match.groups()
        if version == "v1" and bind_text is not None:
            raise EnvelopeFormatError(f"header {INTEGRITY_HEADER}: v1 tags have no binding", object_name=object_name)
        segment_size = int(seg)
        if segment_size < MIN_SEGMENT_SIZE or segment_size % 16:
            raise EnvelopeFormatError(
                f"header {INTEGRITY_HEADER} has segment size {segment_size}; "
                f"expected a multiple of 16 of at least {MIN_SEGMENT_SIZE} (the header was altered or is not ours)",
                object_name=object_name,
            )
        try:
            tag = base64.b64decode(tag_text, validate=True)
            binding = base64.b64decode(bind_text, validate=True) if bind_text is not None else None
        except binascii.Error:
            raise EnvelopeFormatError(
                f"header {INTEGRITY_HEADER} has a tag that is not base64",
                object_name=object_name,
            ) from None
        return cls(segment_size=segment_size, tag=tag, version=version, binding_tag=binding)
