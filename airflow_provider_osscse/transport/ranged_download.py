"""Parallel ranged GETs delivered in order, with a bounded number of ranges in memory.

Large objects are fetched as consecutive byte ranges by a small thread pool; the caller iterates
``(offset, bytes)`` in object order (so a streaming verifier and a sequential file write work
unchanged) while at most ``max_workers`` ranges are fetched ahead. Every range carries ``If-Match``
with the ETag seen at the start: if the object is replaced mid-download the read fails (412) instead
of silently stitching two versions together.

Ranges are fetched through the bucket's CRC-free twin: oss2 runs every byte of a GET through its
CRC-64 (~3 ms per MiB, holding the GIL) but compares it only for whole objects, never for a range,
so for ranges the pass is pure cost. What checks a range's bytes is the integrity tag.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

import oss2

from airflow_provider_osscse.envelope.multipart import split_range
from airflow_provider_osscse.retry import RetryPolicy
from airflow_provider_osscse.transport.oss_client import without_client_crc
from airflow_provider_osscse.transport.retry import DEFAULT_RETRY

#: Ask OSS for RFC semantics: an unsatisfiable range is a 416, not silently the whole object.
STANDARD_RANGE_HEADERS = {"x-oss-range-behavior": "standard"}


def _range_headers(etag: str | None) -> dict[str, str]:
    headers = dict(STANDARD_RANGE_HEADERS)
    if etag:
        headers["If-Match"] = etag if etag.startswith('"') else f'"{etag}"'
    return headers


def read_range_chunks(
    bucket: oss2.Bucket, key: str, start: int, end: int, *, chunk_size: int, etag: str | None = None
) -> Iterator[bytes]:
    """One attempt at bytes ``start..end`` (inclusive), yielded in pieces of at most ``chunk_size``.

    Streaming the body (instead of ``read()``-ing the whole range) keeps a worker's memory at one
    chunk whatever the range size. A body shorter than asked (connection cut after the headers)
    raises ``ConnectionError`` after the last piece, so the caller's retry redoes the whole range:
    callers must treat the pieces of a failed attempt as void.
    """
    expected = end - start + 1
    result = without_client_crc(bucket).get_object(key, byte_range=(start, end), headers=_range_headers(etag))
    received = 0
    try:
        while received < expected:
            piece = result.read(min(chunk_size, expected - received))
            if not piece:
                break
            received += len(piece)
            yield piece
    finally:
        result.resp.response.close()
    if received != expected:
        raise ConnectionError(f"short read of {key!r} bytes {start}-{end}: got {received} of {expected}")


def fetch_range(
    bucket: oss2.Bucket,
    key: str,
    start: int,
    end: int,
    *,
    etag: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> bytes:
    """Bytes ``start..end`` (inclusive) of the stored object; retried on transient errors.

    A short body (connection cut after the headers) counts as transient and is retried.
    """
    headers = _range_headers(etag)
    expected = end - start + 1
    crc_free = without_client_crc(bucket)

    def get() -> bytes:
        result = crc_free.get_object(key, byte_range=(start, end), headers=headers)
        data = cast("bytes", result.read())  # oss2 is untyped; GetObjectResult.read() returns bytes
        if len(data) != expected:
            raise ConnectionError(f"short read of {key!r} bytes {start}-{end}: got {len(data)} of {expected}")
        return data

    return retry.call(get, what=f"GET {key!r} bytes={start}-{end}")


def iter_ranges(
    bucket: oss2.Bucket,
    key: str,
    start: int,
    end: int,
    *,
    chunk_size: int,
    max_workers: int = 4,
    etag: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    transform: Callable[[int, bytes], bytes] | None = None,
) -> Iterator[tuple[int, bytes]]:
    """Yield ``(offset, data)`` covering ``start..end`` (inclusive) in order, fetched in parallel.

    ``transform(offset, data)`` (e.g. decryption) runs in the worker that fetched the range, so it
    overlaps with the other fetches instead of serialising in the consuming thread. Closing the
    iterator early cancels the ranges not yet started.
    """

    def fetch(s: int, e: int) -> bytes:
        data = fetch_range(bucket, key, s, e, etag=etag, retry=retry)
        return data if transform is None else transform(s, data)

    if end < start:
        return
    bounds = split_range(start, end, chunk_size)
    if len(bounds) == 1 or max_workers <= 1:
        for s, e in bounds:
            yield s, fetch(s, e)
        return
    pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="osscse-range")
    window: deque[tuple[int, Future[bytes]]] = deque()
    pending = iter(bounds)
    try:
        for s, e in pending:
            window.append((s, pool.submit(fetch, s, e)))
            if len(window) >= max_workers:
                break
        while window:
            offset, future = window.popleft()
            data = future.result()
            nxt = next(pending, None)
            if nxt is not None:
                window.append((nxt[0], pool.submit(fetch, nxt[0], nxt[1])))
            yield offset, data
    finally:
        for _, future in window:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
