"""ETag and CRC-64/ECMA as OSS computes them, fed incrementally so multi-GiB bodies stream through.

oss2 compares the ``x-oss-hash-crc64ecma`` header against its own CRC on put, part upload, complete
and full downloads, so these values must be bit-exact. ``crcmod`` (a dependency of oss2, with a C
extension) does the per-byte work; combining part CRCs on CompleteMultipartUpload uses the
polynomial-arithmetic method from zlib's ``crc32_combine`` so the finished object is never re-read.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

from crcmod.crcmod import mkCrcFun

_CRC64_POLY = 0x142F0E1EBA9EA3693
_CRC64_REFLECTED_POLY = 0xC96C5795D7870F42
_TOP_BIT = 1 << 63

#: ``(data, crc) -> crc``; crcmod builds it at run time, so its type is stated here.
_crc64_update: Callable[[bytes, int], int] = mkCrcFun(_CRC64_POLY, initCrc=0, xorOut=0xFFFFFFFFFFFFFFFF, rev=True)


def crc64(data: bytes, crc: int = 0) -> int:
    """CRC-64/ECMA of ``data`` continuing from ``crc`` (0 for a fresh computation)."""
    return _crc64_update(data, crc)


def _multiply_mod_poly(a: int, b: int) -> int:
    """a * b modulo the CRC polynomial, both in reflected bit order (zlib's ``multmodp``)."""
    product = 0
    mask = _TOP_BIT
    while True:
        if a & mask:
            product ^= b
            if (a & (mask - 1)) == 0:
                break
        mask >>= 1
        b = (b >> 1) ^ _CRC64_REFLECTED_POLY if b & 1 else b >> 1
    return product


def _powers_of_x() -> list[int]:
    """x^(2^n) modulo the polynomial for n in 0..63, reflected."""
    table = [_TOP_BIT >> 1]  # x^1
    for _ in range(63):
        table.append(_multiply_mod_poly(table[-1], table[-1]))
    return table


_X_2N = _powers_of_x()


def crc64_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)``, without the bytes."""
    if len2 <= 0:
        return crc1
    shift = _TOP_BIT  # x^0
    n, k = len2, 3  # x^(8 * len2) == x^(2^3 * len2)
    while n:
        if n & 1:
            shift = _multiply_mod_poly(_X_2N[k & 63], shift)
        n >>= 1
        k += 1
    return _multiply_mod_poly(shift, crc1) ^ crc2


class BodyDigest:
    """Running MD5 (for the ETag and Content-MD5) and CRC-64 (for ``x-oss-hash-crc64ecma``)."""

    __slots__ = ("_md5", "crc64", "size")

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)  # the ETag / Content-MD5 checksum OSS uses
        self.crc64 = 0
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._md5.update(chunk)
        self.crc64 = _crc64_update(chunk, self.crc64)
        self.size += len(chunk)

    @property
    def md5(self) -> bytes:
        return self._md5.digest()

    @property
    def content_md5(self) -> str:
        """Base64 MD5, the form of the ``Content-MD5`` request header."""
        return base64.b64encode(self._md5.digest()).decode("ascii")

    @property
    def etag(self) -> str:
        """Upper-case hex MD5, the ETag OSS gives a non-multipart object (without quotes)."""
        return self._md5.hexdigest().upper()


def multipart_etag(part_md5s: list[bytes]) -> str:
    """``MD5(concat(binary part MD5s))-N``, upper-case hex, as OSS labels a multipart object."""
    return f"{hashlib.md5(b''.join(part_md5s), usedforsecurity=False).hexdigest().upper()}-{len(part_md5s)}"
