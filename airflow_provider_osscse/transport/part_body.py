"""The request body of one uploaded part, read and encrypted piece by piece while oss2 sends it.

Handing oss2 a whole part as ``bytes`` costs two part-sized buffers per worker (plaintext and
ciphertext), freshly allocated for every part; with 8 MiB parts and 4 workers that is 64 MiB of
churn that glibc's per-thread arenas do not give back, and it grows with the part size. This body
is a sized file-like object instead: oss2 and ``requests`` pull a few KiB at a time (with
progress as for any file), and the body refills one :data:`PIECE_SIZE` buffer from the source and
encrypts it into a second one with ``update_into``. Both buffers belong to the worker thread and
are reused for every part it sends, so a worker's memory is two pieces whatever the part size.

The body also computes the MD5 of exactly the bytes it hands out (the ciphertext), one piece at a
time right after ``update_into``; ``hashlib`` releases the GIL for such large updates. The uploader
compares it with the ETag OSS returns for the part (the MD5 of the bytes OSS received), which is
why oss2's own CRC64 (``crcmod``, GIL held) can be switched off for these requests (see
:func:`airflow_provider_osscse.transport.multipart_upload.upload_part_action`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable

from airflow_provider_osscse.envelope.aes_ctr import BLOCK_SIZE, CtrCipher

#: Bytes read from the source and encrypted at a time.
PIECE_SIZE = 1024 * 1024

#: ``read_into(offset, view)`` fills ``view`` completely with the source bytes at ``offset`` (or raises).
ReadInto = Callable[[int, memoryview], None]


class PieceBuffers(threading.local):
    """One pair of piece buffers per thread (each worker reuses its own; never shared)."""

    def __init__(self, piece_size: int = PIECE_SIZE) -> None:
        self.plain = bytearray(piece_size)
        self.cipher = bytearray(piece_size + BLOCK_SIZE)


class PartBody:
    """``size`` bytes of the source from ``offset``, encrypted by ``cipher`` (``None``: sent as they are).

    A body is single-use (a retried part gets a fresh one) and must be read in the thread that owns
    ``buffers``. ``len()`` is known up front, so the request carries a Content-Length, not chunks.
    """

    def __init__(
        self, read_into: ReadInto, offset: int, size: int, cipher: CtrCipher | None, buffers: PieceBuffers
    ) -> None:
        self._read_into = read_into
        self._offset = offset
        self._size = size
        self._cipher = cipher
        self._buffers = buffers
        self._consumed = 0  # source bytes loaded so far
        self._pending = memoryview(b"")  # loaded and not yet returned
        # Content-MD5 (a transfer checksum, not security) of every byte loaded into _pending, i.e. of what is sent
        self._md5 = hashlib.md5(usedforsecurity=False)
        #: The error reading the *source* raised, if any. requests wraps whatever a body raises into a
        #: connection error (which would be retried as transient); the uploader re-raises this instead.
        self.source_error: OSError | None = None

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"PartBody(offset={self._offset}, size={self._size})"

    def _refill(self) -> None:
        n = min(len(self._buffers.plain), self._size - self._consumed)
        plain = memoryview(self._buffers.plain)[:n]
        try:
            self._read_into(self._offset + self._consumed, plain)
        except OSError as error:
            self.source_error = error
            raise
        self._consumed += n
        if self._cipher is None:
            self._pending = plain
        else:
            written = self._cipher.update_into(plain, self._buffers.cipher)
            self._pending = memoryview(self._buffers.cipher)[:written]
        self._md5.update(self._pending)

    @property
    def complete(self) -> bool:
        """Whether every byte of the body has been handed out."""
        return self._consumed >= self._size and not self._pending

    def md5_hex(self) -> str:
        """Upper-case hex MD5 of the whole body as sent (the form of an OSS part ETag).

        Only meaningful once :attr:`complete`; raises otherwise, so a partly read body can never
        be taken as verified.
        """
        if not self.complete:
            raise ValueError(f"{self!r} was not read to the end ({self._consumed} of {self._size} bytes loaded)")
        return self._md5.hexdigest().upper()

    def md5_digest(self) -> bytes:
        """The binary MD5 of :meth:`md5_hex` (for the multipart ETag rule)."""
        self.md5_hex()
        return self._md5.digest()

    def read(self, amt: int | None = -1) -> bytes:
        """Up to ``amt`` bytes (all the rest when ``amt`` is ``None`` or negative)."""
        if amt is None or amt < 0:
            return b"".join(iter(lambda: self.read(len(self._buffers.plain)), b""))
        if not self._pending:
            if self._consumed >= self._size:
                return b""
            self._refill()
        chunk = bytes(self._pending[:amt])
        self._pending = self._pending[len(chunk) :]
        return chunk


def fd_read_into(fd: int, base: int = 0) -> ReadInto:
    """A :data:`ReadInto` over a file descriptor with ``pread`` (thread-safe: no shared position)."""

    def read_into(offset: int, view: memoryview) -> None:
        position, filled = base + offset, 0
        while filled < len(view):
            n = os.preadv(fd, [view[filled:]], position + filled)
            if n == 0:
                raise OSError(f"source shrank while uploading: wanted {len(view)} bytes at {offset}, got {filled}")
            filled += n

    return read_into
