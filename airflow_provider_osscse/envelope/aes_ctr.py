"""AES-256-CTR as the OSS SDKs use it: the whole IV is one big-endian 128-bit counter, +1 per block.

A cipher can start at any byte offset of the object: the counter block for offset ``o`` is
``IV + o // 16`` (added over all 128 bits, like oss2 and the v2 SDK; with IV bytes 8..11 zero this
equals Go/C++'s 64-bit and Java's 32-bit arithmetic), and ``o % 16`` keystream bytes are skipped.
That one rule gives ranged reads, parallel multipart parts and resumable streams.

CTR is its own inverse, so the same :class:`CtrCipher` encrypts and decrypts.
"""

from __future__ import annotations

from typing import NoReturn

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK_SIZE = 16
CEK_ALG_AES_CTR = "AES/CTR/NoPadding"
_COUNTER_MODULUS = 1 << 128


def counter_block(iv: bytes, offset: int) -> bytes:
    """The counter block that encrypts the 16-byte block containing byte ``offset`` of the object."""
    if len(iv) != BLOCK_SIZE:
        raise ValueError(f"IV must be {BLOCK_SIZE} bytes, got {len(iv)}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")
    value = (int.from_bytes(iv, "big") + offset // BLOCK_SIZE) % _COUNTER_MODULUS
    return value.to_bytes(BLOCK_SIZE, "big")


def iv_from_legacy_counter(text: bytes) -> bytes:
    """oss2 2.5–2.10 stored a decimal start counter (``b"7"``) instead of an IV: turn it into the block."""
    stripped = text.strip()
    if not stripped.isdigit() or len(stripped) > 39:
        raise ValueError("legacy start counter is not a decimal number")
    value = int(stripped)
    if value >= _COUNTER_MODULUS:
        raise ValueError("legacy start counter exceeds 128 bits")
    return value.to_bytes(BLOCK_SIZE, "big")


class CtrCipher:
    """A streaming AES-256-CTR transform positioned at any byte ``offset`` of the object.

    ``update`` returns new bytes; ``update_into`` writes into a caller-provided buffer so that a
    hot loop can reuse two preallocated buffers (no per-chunk allocation). Both may be mixed and
    called with any chunk sizes: the keystream position carries over.
    """

    __slots__ = ("_ctx", "_offset")

    def __init__(self, key: bytes, iv: bytes, offset: int = 0) -> None:
        if len(key) != 32:
            raise ValueError(f"AES-256 key must be 32 bytes, got {len(key)}")
        self._ctx = Cipher(algorithms.AES(key), modes.CTR(counter_block(iv, offset))).encryptor()
        skip = offset % BLOCK_SIZE
        if skip:
            self._ctx.update(bytes(skip))
        self._offset = offset

    @property
    def offset(self) -> int:
        """The object byte offset the next input byte sits at."""
        return self._offset

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Transform ``data`` (encrypt or decrypt: CTR is symmetric)."""
        self._offset += len(data)
        return self._ctx.update(data)

    def update_into(self, data: bytes | bytearray | memoryview, out: bytearray | memoryview) -> int:
        """Transform ``data`` into ``out`` (``len(out) >= len(data) + 15``, cryptography's rule).

        Returns the number of bytes written."""
        written = self._ctx.update_into(data, out)
        self._offset += written
        return written

    def __repr__(self) -> str:
        return f"CtrCipher(offset={self._offset})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("CtrCipher holds key material and cannot be pickled")
