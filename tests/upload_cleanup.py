"""Tests that leave multipart uploads in progress on purpose abort them afterwards.

The local OSS server is shared by the whole session, and other tests check that a bucket holds no
upload at all after their own failures; an upload a test left as "another client's" must not be
counted against them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import oss2


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
