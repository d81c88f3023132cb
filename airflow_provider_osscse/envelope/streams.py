"""Encrypt/decrypt paths, binary file-like objects and chunk iterators in constant memory.

Memory is one chunk buffer (``DEFAULT_CHUNK_SIZE``) whatever the object size. Every function takes
an ``offset`` (a byte position of the object, usually 16-aligned) so a stream can start anywhere:
a ranged read, one multipart part, or a resumed transfer.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.keywrap import DataKey

DEFAULT_CHUNK_SIZE = 1024 * 1024

#: What the streaming functions accept: a path, a binary file-like object (``readinto``/``read``),
#: a bytes-like object, or an iterable of bytes-like chunks.
ByteSource = str | os.PathLike[str] | BinaryIO | bytes | bytearray | memoryview | Iterable[bytes]


def iter_chunks(source: ByteSource, chunk_size: int = DEFAULT_CHUNK_SIZE) -> Iterator[bytes | memoryview]:
    """Yield the source's bytes in chunks of at most ``chunk_size`` (iterables keep their own chunking)."""
    if chunk_size <= 0:
        raise ValueError("chunk size must be > 0")
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as handle:
            yield from iter_chunks(handle, chunk_size)
        return
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        for start in range(0, len(view), chunk_size):
            yield view[start : start + chunk_size]
        return
    read = getattr(source, "read", None)
    if read is not None:
        while True:
            chunk = read(chunk_size)
            if not chunk:
                return
            yield chunk
    for chunk in source:
        if chunk:
            yield chunk


def transform_chunks(
    source: ByteSource, data_key: DataKey, *, offset: int = 0, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> Iterator[bytes]:
    """Encrypt or decrypt (CTR is symmetric) ``source`` whose first byte sits at object ``offset``."""
    cipher = CtrCipher(data_key.key, data_key.iv, offset)
    for chunk in iter_chunks(source, chunk_size):
        yield cipher.update(chunk)


encrypt_chunks = transform_chunks
decrypt_chunks = transform_chunks


def transform_file(
    source: str | os.PathLike[str] | BinaryIO,
    destination: str | os.PathLike[str] | BinaryIO,
    data_key: DataKey,
    *,
    offset: int = 0,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> int:
    """File to file with two preallocated buffers (``readinto`` + ``update_into``): no per-chunk allocation.

    Returns the number of bytes written. Paths are opened and closed here; file objects are left open.
    """
    cipher = CtrCipher(data_key.key, data_key.iv, offset)
    in_buf = bytearray(chunk_size)
    out_buf = bytearray(chunk_size + 15)
    in_view, out_view = memoryview(in_buf), memoryview(out_buf)
    src = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source  # noqa: SIM115
    dst = open(destination, "wb") if isinstance(destination, (str, os.PathLike)) else destination  # noqa: SIM115
    total = 0
    try:
        readinto = getattr(src, "readinto", None)
        while True:
            if readinto is not None:
                n = readinto(in_buf)
            else:
                data = src.read(chunk_size)
                n = len(data)
                in_buf[:n] = data
            if not n:
                break
            written = cipher.update_into(in_view[:n], out_buf)
            dst.write(out_view[:written])
            total += written
    finally:
        if src is not source:
            src.close()
        if dst is not destination:
            dst.close()
    return total
