"""Buckets, objects and multipart uploads, at rest on disk (``data_dir``) or in memory.

On disk every object is one file holding exactly its bytes at rest (what OSS stores: for CSE
objects, the ciphertext), next to a JSON sidecar with its metadata, so a person can inspect both::

    <data_dir>/<bucket>/bucket.json
    <data_dir>/<bucket>/objects/<percent-encoded key>          the bytes
    <data_dir>/<bucket>/meta/<percent-encoded key>.json        key, size, ETag, CRC, type, x-oss-meta-*
    <data_dir>/.multipart/<upload id>/<part number>           parts of uploads in progress
    <data_dir>/.tmp/                                           bodies being received

Bodies are streamed into a temporary file and renamed into place, so memory stays constant
whatever the object size and a reader never sees a half-written object. The index (metadata of
every object) lives in memory behind one lock and is rebuilt from the sidecars on start; uploads in
progress are not persisted. Without ``data_dir`` the bytes are kept in memory too.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from hashlib import sha256
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from .protocol import CHUNK_SIZE, OSSServiceError, no_such_bucket, no_such_key, no_such_upload


@dataclass(frozen=True)
class ObjectRecord:
    """What the index knows about one object. ``metadata`` maps lower-case ``x-oss-meta-*`` names."""

    key: str
    size: int
    etag: str  # upper-case hex, without quotes
    crc64: int
    content_type: str
    last_modified: float
    metadata: dict[str, str]
    object_type: str = "Normal"


Precondition = Callable[[ObjectRecord | None], None]
"""Called under the store's lock with a key's current record; raises to refuse a write."""


@dataclass(frozen=True)
class PartRecord:
    number: int
    size: int
    md5: bytes
    etag: str
    crc64: int
    last_modified: float


@dataclass
class UploadRecord:
    """A multipart upload in progress; ``metadata`` and ``content_type`` come from the Init request."""

    upload_id: str
    key: str
    initiated: float
    content_type: str
    metadata: dict[str, str]
    parts: dict[int, PartRecord] = field(default_factory=dict)


@dataclass
class _Bucket:
    name: str
    created: float
    objects: dict[str, ObjectRecord] = field(default_factory=dict)
    uploads: dict[str, UploadRecord] = field(default_factory=dict)


class BlobWriter(ABC):
    """A body being received; invisible until committed under a name."""

    @abstractmethod
    def write(self, chunk: bytes) -> None: ...

    @abstractmethod
    def discard(self) -> None: ...


class _Blobs(ABC):
    """Where bytes live, by name (``<bucket>/objects/<enc key>``, ``.multipart/<id>/<n>``)."""

    @abstractmethod
    def writer(self) -> BlobWriter: ...

    @abstractmethod
    def commit(self, writer: BlobWriter, name: str) -> None: ...

    @abstractmethod
    def open(self, name: str) -> BinaryIO: ...

    @abstractmethod
    def delete(self, name: str) -> None: ...

    @abstractmethod
    def delete_tree(self, prefix: str) -> None:
        """Forget every blob under ``prefix`` (a multipart upload's directory)."""


class _MemoryWriter(BlobWriter):
    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, chunk: bytes) -> None:
        self.buffer.write(chunk)

    def discard(self) -> None:
        self.buffer = io.BytesIO()


class _MemoryBlobs(_Blobs):
    def __init__(self) -> None:
        self._data: dict[str, bytes] = {}

    def writer(self) -> BlobWriter:
        return _MemoryWriter()

    def commit(self, writer: BlobWriter, name: str) -> None:
        if not isinstance(writer, _MemoryWriter):
            raise TypeError(f"a {type(writer).__name__} cannot be committed to the in-memory blob store")
        self._data[name] = writer.buffer.getvalue()

    def open(self, name: str) -> BinaryIO:
        return io.BytesIO(self._data[name])

    def delete(self, name: str) -> None:
        self._data.pop(name, None)

    def delete_tree(self, prefix: str) -> None:
        for name in [n for n in self._data if n.startswith(prefix + "/")]:
            del self._data[name]


class _DiskWriter(BlobWriter):
    def __init__(self, tmp_dir: Path) -> None:
        fd, path = tempfile.mkstemp(dir=tmp_dir, prefix="body-")
        self.path = Path(path)
        self.file = os.fdopen(fd, "wb", buffering=0)

    def write(self, chunk: bytes) -> None:
        self.file.write(chunk)

    def discard(self) -> None:
        self.file.close()
        self.path.unlink(missing_ok=True)


class _DiskBlobs(_Blobs):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / ".tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def writer(self) -> BlobWriter:
        return _DiskWriter(self.tmp)

    def commit(self, writer: BlobWriter, name: str) -> None:
        if not isinstance(writer, _DiskWriter):
            raise TypeError(f"a {type(writer).__name__} cannot be committed to the on-disk blob store")
        writer.file.close()
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(writer.path, target)

    def open(self, name: str) -> BinaryIO:
        return open(self.root / name, "rb")

    def delete(self, name: str) -> None:
        (self.root / name).unlink(missing_ok=True)

    def delete_tree(self, prefix: str) -> None:
        shutil.rmtree(self.root / prefix, ignore_errors=True)


def _file_name(key: str) -> str:
    """A readable, collision-free file name for a key (``/`` becomes ``%2F``)."""
    name = quote(key, safe=" -_.~()!,;=@+")
    if name.startswith("."):
        name = "%2E" + name[1:]
    if len(name.encode()) > 200:
        name = "long-key-" + sha256(key.encode()).hexdigest()
    return name


class ObjectStore:
    """Thread-safe store behind the HTTP server and the test helpers."""

    def __init__(self, data_dir: str | Path | None) -> None:
        self._lock = threading.RLock()
        self._buckets: dict[str, _Bucket] = {}
        self._root = Path(data_dir) if data_dir is not None else None
        self._blobs: _Blobs = _DiskBlobs(self._root) if self._root is not None else _MemoryBlobs()
        if self._root is not None:
            self._load(self._root)

    # -- persistence ------------------------------------------------------------------------

    def _load(self, root: Path) -> None:
        for bucket_file in sorted(root.glob("*/bucket.json")):
            info = json.loads(bucket_file.read_text())
            bucket = _Bucket(info["name"], info["created"])
            for meta_file in (bucket_file.parent / "meta").glob("*.json"):
                record = ObjectRecord(**json.loads(meta_file.read_text()))
                bucket.objects[record.key] = record
            self._buckets[bucket.name] = bucket

    def _persist_bucket(self, bucket: _Bucket) -> None:
        if self._root is not None:
            directory = self._root / bucket.name
            (directory / "objects").mkdir(parents=True, exist_ok=True)
            (directory / "meta").mkdir(parents=True, exist_ok=True)
            (directory / "bucket.json").write_text(json.dumps({"name": bucket.name, "created": bucket.created}))

    def _persist_record(self, bucket: str, record: ObjectRecord | None, key: str) -> None:
        if self._root is not None:
            path = self._root / bucket / "meta" / (_file_name(key) + ".json")
            if record is None:
                path.unlink(missing_ok=True)
            else:
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_text(json.dumps(asdict(record), indent=1, sort_keys=True, ensure_ascii=False))
                os.replace(tmp, path)

    @staticmethod
    def _object_blob(bucket: str, key: str) -> str:
        return f"{bucket}/objects/{_file_name(key)}"

    @staticmethod
    def _part_blob(upload_id: str, number: int) -> str:
        return f".multipart/{upload_id}/{number}"

    # -- buckets ------------------------------------------------------------------------------

    def _bucket(self, name: str) -> _Bucket:
        bucket = self._buckets.get(name)
        if bucket is None:
            raise no_such_bucket(name)
        return bucket

    def require_bucket(self, name: str) -> None:
        with self._lock:
            self._bucket(name)

    def create_bucket(self, name: str) -> None:
        with self._lock:
            if name in self._buckets:
                raise OSSServiceError(
                    409,
                    "BucketAlreadyExists",
                    "The requested bucket name is not available.",
                    extra={"BucketName": name},
                )
            bucket = _Bucket(name, time.time())
            self._buckets[name] = bucket
            self._persist_bucket(bucket)

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            bucket = self._bucket(name)
            if bucket.objects or bucket.uploads:
                raise OSSServiceError(
                    409, "BucketNotEmpty", "The bucket you tried to delete is not empty.", extra={"BucketName": name}
                )
            del self._buckets[name]
            if self._root is not None:
                shutil.rmtree(self._root / name, ignore_errors=True)

    def buckets(self) -> list[tuple[str, float]]:
        with self._lock:
            return sorted((b.name, b.created) for b in self._buckets.values())

    # -- objects ------------------------------------------------------------------------------

    def writer(self) -> BlobWriter:
        """Start receiving a body (outside the lock: bodies may be large and slow)."""
        return self._blobs.writer()

    def commit_object(
        self, bucket: str, record: ObjectRecord, writer: BlobWriter, *, precondition: Precondition | None = None
    ) -> None:
        """Make a received body the object ``record.key``, replacing any previous one atomically.

        ``precondition`` is called under the lock with the current record of the key (None when
        there is none) and may raise to refuse the write; the writer is then left to the caller.
        """
        with self._lock:
            state = self._bucket(bucket)
            if precondition is not None:
                precondition(state.objects.get(record.key))
            self._blobs.commit(writer, self._object_blob(bucket, record.key))
            state.objects[record.key] = record
            self._persist_record(bucket, record, record.key)

    def update_record(self, bucket: str, record: ObjectRecord) -> None:
        """Replace an object's metadata without touching its bytes (copy onto itself)."""
        with self._lock:
            self._bucket(bucket).objects[record.key] = record
            self._persist_record(bucket, record, record.key)

    def record(self, bucket: str, key: str) -> ObjectRecord:
        with self._lock:
            record = self._bucket(bucket).objects.get(key)
            if record is None:
                raise no_such_key(key)
            return record

    def transform_record(
        self, bucket: str, key: str, change: Callable[[ObjectRecord | None], ObjectRecord]
    ) -> ObjectRecord:
        """Replace ``key``'s record by ``change(current)`` (bytes untouched), read and written under the lock.

        ``change`` may raise to refuse; it must return a record for the same key.
        """
        with self._lock:
            state = self._bucket(bucket)
            record = change(state.objects.get(key))
            if record.key != key:
                raise ValueError(f"change() must return a record for {key!r}, not for {record.key!r}")
            state.objects[key] = record
            self._persist_record(bucket, record, key)
            return record

    def peek(self, bucket: str, key: str) -> ObjectRecord | None:
        """The current record of ``key``, or None when there is no such object (the bucket must exist)."""
        with self._lock:
            return self._bucket(bucket).objects.get(key)

    def open_object(self, bucket: str, key: str) -> tuple[ObjectRecord, BinaryIO]:
        """The record and a stream of its bytes, consistent with each other even under overwrites."""
        with self._lock:
            record = self.record(bucket, key)
            return record, self._blobs.open(self._object_blob(bucket, key))

    def delete_object(self, bucket: str, key: str) -> None:
        with self._lock:
            state = self._bucket(bucket)
            if state.objects.pop(key, None) is not None:
                self._blobs.delete(self._object_blob(bucket, key))
                self._persist_record(bucket, None, key)

    def records(self, bucket: str) -> list[ObjectRecord]:
        """Every object of the bucket, sorted by key (a snapshot)."""
        with self._lock:
            return sorted(self._bucket(bucket).objects.values(), key=lambda r: r.key)

    # -- multipart ------------------------------------------------------------------------------

    def create_upload(self, bucket: str, key: str, content_type: str, metadata: dict[str, str]) -> UploadRecord:
        with self._lock:
            upload = UploadRecord(uuid.uuid4().hex.upper(), key, time.time(), content_type, dict(metadata))
            self._bucket(bucket).uploads[upload.upload_id] = upload
            return upload

    def upload(self, bucket: str, key: str | None, upload_id: str) -> UploadRecord:
        with self._lock:
            upload = self._bucket(bucket).uploads.get(upload_id)
            if upload is None or (key is not None and upload.key != key):
                raise no_such_upload(upload_id)
            return upload

    def uploads(self, bucket: str) -> list[UploadRecord]:
        with self._lock:
            return sorted(self._bucket(bucket).uploads.values(), key=lambda u: (u.key, u.initiated, u.upload_id))

    def commit_part(self, bucket: str, upload_id: str, part: PartRecord, writer: BlobWriter) -> None:
        with self._lock:
            upload = self.upload(bucket, None, upload_id)
            self._blobs.commit(writer, self._part_blob(upload_id, part.number))
            upload.parts[part.number] = part

    def assemble_upload(
        self,
        bucket: str,
        upload_id: str,
        numbers: list[int],
        record: ObjectRecord,
        *,
        precondition: Precondition | None = None,
    ) -> None:
        """Concatenate the chosen parts into the object and forget the upload.

        The copy streams in 1 MiB chunks outside the lock; the upload is removed first so that a
        concurrent abort or complete of the same upload gets ``NoSuchUpload``. ``precondition`` is
        checked under the lock before the upload is taken and again atomically with the commit; when
        it refuses, the upload and its parts are left as they were (it can be completed or aborted).
        """
        with self._lock:
            state = self._bucket(bucket)
            upload = state.uploads.get(upload_id)
            if upload is None:
                raise no_such_upload(upload_id)
            if precondition is not None:
                precondition(state.objects.get(record.key))
            del state.uploads[upload_id]
        writer = self._blobs.writer()
        keep_parts = False
        try:
            for number in numbers:
                with self._blobs.open(self._part_blob(upload_id, number)) as part:
                    while chunk := part.read(CHUNK_SIZE):
                        writer.write(chunk)
            self.commit_object(bucket, record, writer, precondition=precondition)
        except OSSServiceError:
            writer.discard()
            with self._lock:
                if bucket in self._buckets:  # refused: give the upload back
                    self._buckets[bucket].uploads[upload_id] = upload
                    keep_parts = True
            raise
        except BaseException:
            writer.discard()
            raise
        finally:
            if not keep_parts:
                self._blobs.delete_tree(f".multipart/{upload_id}")

    def abort_upload(self, bucket: str, key: str, upload_id: str) -> None:
        with self._lock:
            self.upload(bucket, key, upload_id)
            del self._bucket(bucket).uploads[upload_id]
            self._blobs.delete_tree(f".multipart/{upload_id}")

    def open_part(self, upload_id: str, number: int) -> BinaryIO:
        return self._blobs.open(self._part_blob(upload_id, number))
