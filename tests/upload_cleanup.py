"""Multipart uploads left in progress on purpose: how tests make them (:func:`start_upload`), and
how they abort them afterwards (:func:`uploads_aborted_after`).

The local OSS server is shared by the whole session, and other tests check that a bucket holds no
upload at all after their own failures; an upload a test left as "another client's" must not be
counted against them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import oss2

from airflow_provider_osscse.transport.multipart_upload import MARKER_PART_NUMBER, marker_body


def start_upload(
    bucket: oss2.Bucket, key: str, purpose: str | None, data_parts: int = 1, part_10000: bytes | None = None
) -> str:
    """An upload left in progress, as a killed run leaves it: with this provider's marker for
    ``purpose`` (``None``: without, as another client's; ``part_10000``: that client's own last part),
    then ``data_parts`` data parts. Returns its upload id."""
    upload_id: str = bucket.init_multipart_upload(key).upload_id
    if purpose is not None:
        bucket.upload_part(key, upload_id, MARKER_PART_NUMBER, marker_body(purpose))
    elif part_10000 is not None:
        bucket.upload_part(key, upload_id, MARKER_PART_NUMBER, part_10000)
    for number in range(1, data_parts + 1):
        bucket.upload_part(key, upload_id, number, os.urandom(100))
    return upload_id


@contextmanager
def uploads_aborted_after(server: Any, bucket: oss2.Bucket, prefix: str) -> Iterator[str]:
    """``prefix``, and afterwards the server's faults cleared and every upload in progress whose key
    starts with it aborted."""
    try:
        yield prefix
    finally:
        server.clear_faults()
        for upload in server.list_multipart_uploads(bucket.bucket_name):
            if upload.key.startswith(prefix):
                with suppress(oss2.exceptions.NoSuchUpload):
                    bucket.abort_multipart_upload(upload.key, upload.upload_id)
