"""Download an object into a file with workers that fetch, decrypt, MAC and write their own ranges.

A download to a file does not need its bytes in order: each worker streams one range of the object
in small pieces, decrypts each piece into a buffer it reuses (``update_into``), feeds the integrity
segments that range covers and ``pwrite``s the plaintext at its offset. The calling thread only
waits. So the CPU work (AES, HMAC) runs beside the network reads of the other workers, and memory
is ``max_workers`` × one piece (~1 MiB each) whatever the object or part size.

Integrity semantics are those of a sequential read: ranges are whole multiples of the segment size,
so every segment is MAC'ed by exactly one worker; a range's segment MACs are recorded only after the
whole range arrived (a retried range starts again from fresh MACs); the caller verifies the tag over
all segments before the file gets its final name.

The same workers serve the reads that must verify before releasing anything (``sink``): a stream
spools the *ciphertext* (decrypting only to MAC), and a ranged read under ``require`` MACs the whole
object keeping nothing, before its range is fetched and decrypted.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Literal

import oss2

from airflow_provider_osscse.envelope.aes_ctr import BLOCK_SIZE, CtrCipher
from airflow_provider_osscse.envelope.integrity import IntegrityBuilder, SegmentHasher
from airflow_provider_osscse.envelope.multipart import split_range
from airflow_provider_osscse.retry import RetryPolicy
from airflow_provider_osscse.transport.parallel import run_bounded
from airflow_provider_osscse.transport.ranged_download import read_range_chunks

#: Bytes a worker reads from the response and decrypts at a time (its whole working set).
PIECE_SIZE = 1024 * 1024

#: What the workers write at each range's offset: the plaintext (a download), the stored bytes (a
#: ciphertext spool; decrypted only to feed the MACs) or nothing (a MAC-only verification pass).
Sink = Literal["plaintext", "ciphertext", "none"]


def range_size_for(part_size: int, segment_size: int | None) -> int:
    """Ranges are 16-aligned and, when verifying, whole multiples of the integrity segment."""
    if segment_size:
        return segment_size * max(1, part_size // segment_size)
    return max(part_size, BLOCK_SIZE) // BLOCK_SIZE * BLOCK_SIZE


def download_to_fd(
    bucket: oss2.Bucket,
    key: str,
    fd: int | None,
    size: int,
    *,
    cipher_at: Callable[[int], CtrCipher] | None,
    builder: IntegrityBuilder | None,
    range_size: int,
    max_workers: int,
    etag: str | None,
    retry: RetryPolicy,
    on_range_done: Callable[[int], None] | None = None,
    sink: Sink = "plaintext",
) -> None:
    """Fetch the whole object (``size`` bytes) in parallel ranges into ``fd`` at offset 0 (see ``sink``).

    ``cipher_at(offset)`` is the decrypting cipher for a range (the reader's :meth:`cipher`);
    ``None`` passes the stored bytes as they are (a plaintext object allowed through). ``builder``
    (when verifying) receives every segment MAC; the caller then verifies. ``fd`` is ``None`` only
    with ``sink="none"``. The first range that still fails after its retries cancels the rest and
    propagates.
    """
    if size == 0:
        return
    if builder is not None and range_size % builder.segment_size:
        raise ValueError("ranges must be whole multiples of the integrity segment size")
    if (fd is None) != (sink == "none"):
        raise ValueError("a file descriptor is needed exactly when the sink writes")
    decrypt = cipher_at is not None and (sink == "plaintext" or builder is not None)
    if fd is not None:
        os.ftruncate(fd, size)
    buffers = threading.local()

    def out_buffer() -> bytearray:
        buf = getattr(buffers, "out", None)
        if buf is None:
            buf = buffers.out = bytearray(PIECE_SIZE + BLOCK_SIZE)
        return buf

    def attempt(start: int, end: int) -> None:
        cipher = cipher_at(start) if decrypt and cipher_at is not None else None
        hashers: list[SegmentHasher] = []
        position = start
        out = out_buffer()
        out_view = memoryview(out)
        for piece in read_range_chunks(bucket, key, start, end, chunk_size=PIECE_SIZE, etag=etag):
            stored = memoryview(piece)
            plain = out_view[: cipher.update_into(piece, out)] if cipher is not None else stored
            if builder is not None:
                _feed_segments(builder, hashers, position, plain)
            if sink == "plaintext":
                _pwrite_all(fd, plain, position)  # type: ignore[arg-type]
            elif sink == "ciphertext":
                _pwrite_all(fd, stored, position)  # type: ignore[arg-type]
            position += len(stored)
        for hasher in hashers:  # recorded only now: a failed attempt leaves no trace in the builder
            hasher.finalize()

    def one(start: int, end: int) -> None:
        retry.call(lambda: attempt(start, end), what=f"GET {key!r} bytes={start}-{end}")
        if on_range_done is not None:
            on_range_done(end - start + 1)

    bounds = split_range(0, size - 1, range_size)
    run_bounded(lambda bound: one(*bound), bounds, max_workers=max_workers, thread_name_prefix="osscse-range")


def _feed_segments(builder: IntegrityBuilder, hashers: list[SegmentHasher], position: int, data: memoryview) -> None:
    """Feed ``data`` (plaintext at object ``position``) to the hashers of the segments it spans."""
    seg = builder.segment_size
    while len(data):
        index, within = divmod(position, seg)
        if within == 0 or not hashers:
            hashers.append(builder.segment_hasher(index))
        take = min(seg - within, len(data))
        hashers[-1].update(data[:take])
        data = data[take:]
        position += take


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while len(data):
        written = os.pwrite(fd, data, offset)
        data = data[written:]
        offset += written
