"""Integrity tags in the formats of earlier releases, computed independently of the package (docs/integrity.md)."""

from __future__ import annotations

import base64
import hmac
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def v1_tag(key_bytes: bytes, iv: bytes, plain: bytes, segment_size: int) -> str:
    """The v1 integrity tag as earlier versions wrote it (docs/integrity.md), computed independently."""
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"airflow-provider-osscse/integrity/v1").derive(
        key_bytes
    )
    u64 = struct.Struct(">Q").pack
    macs = []
    for i, start in enumerate(range(0, len(plain), segment_size)):
        piece = plain[start : start + segment_size]
        macs.append(hmac.new(k, b"seg" + u64(i) + piece + u64(len(piece)), "sha256").digest())
    cek = b"AES/CTR/NoPadding"
    outer = b"osscse-tag-v1" + u64(len(cek)) + cek + iv + u64(len(plain)) + u64(segment_size) + b"".join(macs)
    return f"v1;seg={segment_size};tag={base64.b64encode(hmac.new(k, outer, 'sha256').digest()).decode()}"
