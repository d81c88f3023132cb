"""What an upload reads from: a path, a file-like object or an iterator of bytes, made uniform.

Re-readable sources (a path, a seekable file) support random-access ``read_at`` so parts can be
read (and a first integrity pass made) independently by several threads. An iterator can be read
only once, front to back: the uploader spools its *ciphertext* when it is too large for one PUT.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from airflow_provider_osscse.envelope.streams import iter_chunks

UploadSource = str | os.PathLike[str] | BinaryIO | Iterable[bytes]


class RandomAccessSource:
    """A re-readable source of known size; ``read_at`` is safe from many threads."""

    def __init__(self, source: str | os.PathLike[str] | BinaryIO, size: int | None = None) -> None:
        self._lock = threading.Lock()
        self._owned: BinaryIO | None = None
        if isinstance(source, (str, os.PathLike)):
            self._owned = open(source, "rb")  # noqa: SIM115 - closed by close()
            self._file: BinaryIO = self._owned
            self._base = 0
        else:
            self._file = source
            self._base = source.tell()
        self._fd = _fileno(self._file)
        end = self._file.seek(0, io.SEEK_END)
        self._file.seek(self._base)
        self.size = end - self._base if size is None else size

    def read_at(self, offset: int, length: int) -> bytes:
        """``length`` bytes from ``offset`` (relative to where the source started)."""
        if self._fd is not None:
            chunks = []
            position, remaining = self._base + offset, length
            while remaining:
                chunk = os.pread(self._fd, remaining, position)
                if not chunk:
                    break
                chunks.append(chunk)
                position += len(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
        else:
            with self._lock:
                self._file.seek(self._base + offset)
                data = self._file.read(length)
        if len(data) != length:
            raise OSError(f"source shrank while uploading: wanted {length} bytes at {offset}, got {len(data)}")
        return data

    def read_into(self, offset: int, view: memoryview) -> None:
        """Fill ``view`` with the bytes at ``offset`` (no allocation: the caller reuses ``view``)."""
        if self._fd is not None:
            position, filled = self._base + offset, 0
            while filled < len(view):
                n = os.preadv(self._fd, [view[filled:]], position + filled)
                if n == 0:
                    break
                filled += n
        else:
            with self._lock:
                self._file.seek(self._base + offset)
                filled = 0
                while filled < len(view):
                    n = _readinto(self._file, view[filled:])
                    if not n:
                        break
                    filled += n
        if filled != len(view):
            raise OSError(f"source shrank while uploading: wanted {len(view)} bytes at {offset}, got {filled}")

    def close(self) -> None:
        if self._owned is not None:
            self._owned.close()


def _readinto(handle: BinaryIO, view: memoryview) -> int:
    readinto = getattr(handle, "readinto", None)
    if readinto is not None:
        return readinto(view) or 0
    data = handle.read(len(view))
    view[: len(data)] = data
    return len(data)


def _fileno(handle: BinaryIO) -> int | None:
    try:
        return handle.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def is_random_access(source: UploadSource) -> bool:
    """A path, or a file object that can seek (and so be read twice)."""
    if isinstance(source, (str, os.PathLike)):
        return True
    seekable = getattr(source, "seekable", None)
    return bool(seekable and seekable() and hasattr(source, "read"))


def iter_source(source: UploadSource, chunk_size: int) -> Iterator[bytes | memoryview]:
    """Front-to-back chunks of any source (for iterators and non-seekable files)."""
    return iter_chunks(source, chunk_size)
