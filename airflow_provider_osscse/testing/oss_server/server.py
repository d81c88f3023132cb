"""``LocalOSSServer``: the local OSS endpoint for tests, its lifecycle and its test helpers."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType

from ..serving import ServingThread
from .checksums import BodyDigest
from .faults import FaultPlan
from .handler import OSSHTTPServer
from .operations import DEFAULT_CONTENT_TYPE
from .protocol import USER_META_PREFIX, OSSServiceError
from .request_log import RequestLog
from .signature import Credentials
from .storage import ObjectRecord, ObjectStore


@dataclass(frozen=True)
class StoredObject:
    """An object as it is at rest. ``metadata`` maps lower-case ``x-oss-meta-*`` header names to values."""

    data: bytes
    metadata: dict[str, str]
    etag: str
    content_type: str


@dataclass(frozen=True)
class InProgressUpload:
    """A multipart upload neither completed nor aborted (what "no orphaned parts" checks look for)."""

    key: str
    upload_id: str
    initiated: float
    part_numbers: tuple[int, ...]


def _metadata_names(metadata: dict[str, str]) -> dict[str, str]:
    """Accept ``x-oss-meta-foo`` or bare ``foo`` and store the lower-case header name."""
    normalized = {}
    for name, value in metadata.items():
        lower = name.lower()
        normalized[lower if lower.startswith(USER_META_PREFIX) else USER_META_PREFIX + lower] = value
    return normalized


class LocalOSSServer:
    """An OSS endpoint on loopback that verifies v1/v4 signatures against one set of credentials.

    Speaks the protocol the way oss2 and alibabacloud-oss-v2 use it (path-style addressing) and
    applies the checks real OSS makes (multipart rules, Content-MD5, client-side-encryption headers).
    Objects live under ``data_dir`` (one file of bytes plus a JSON sidecar each) or in memory.
    """

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        region: str = "cn-hangzhou",
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        security_token: str | None = None,
    ) -> None:
        self._credentials = Credentials(access_key_id, access_key_secret, security_token)
        self._region = region
        self._address = (host, port)
        self._store = ObjectStore(data_dir)
        self._faults = FaultPlan()
        self._http: OSSHTTPServer | None = None
        self._serving: ServingThread | None = None

    def __repr__(self) -> str:
        state = self.endpoint if self._http is not None else "stopped"
        return f"LocalOSSServer(access_key_id={self.access_key_id!r}, region={self._region!r}, {state})"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalOSSServer:
        """Bind, listen and serve from a daemon thread; returns once connections are accepted."""
        if self._http is not None:
            raise RuntimeError("LocalOSSServer is already running")
        self._http = OSSHTTPServer(self._address, self._store, self._credentials, self._region, self._faults)
        self._serving = ServingThread(self._http, f"local-oss-{self.port}")
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and kept-alive connections; safe to call twice."""
        serving, self._serving, self._http = self._serving, None, None
        if serving is not None:
            serving.stop()

    def __enter__(self) -> LocalOSSServer:
        return self.start() if self._http is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- identity -------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def requests(self) -> RequestLog:
        """Every request this server received (since it started): count what was served."""
        if self._http is None:
            raise RuntimeError("LocalOSSServer is not running: call start() first")
        return self._http.requests

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("LocalOSSServer is not running: call start() first")
        return int(self._http.server_address[1])

    @property
    def access_key_id(self) -> str:
        return self._credentials.access_key_id

    @property
    def access_key_secret(self) -> str:
        return self._credentials.access_key_secret

    @property
    def security_token(self) -> str | None:
        return self._credentials.security_token

    @property
    def region(self) -> str:
        return self._region

    # -- test helpers (bypass HTTP) ---------------------------------------------------------------

    def create_bucket(self, name: str) -> None:
        """Create a bucket; an existing bucket is left as it is (fixtures may share the server)."""
        try:
            self._store.create_bucket(name)
        except OSSServiceError as error:
            if error.code != "BucketAlreadyExists":
                raise

    def stored_object(self, bucket: str, key: str) -> StoredObject:
        """The bytes and metadata at rest (for CSE objects: the ciphertext and the envelope)."""
        record, stream = self._store.open_object(bucket, key)
        with stream:
            data = stream.read()
        return StoredObject(data, dict(record.metadata), record.etag, record.content_type)

    def overwrite_stored(
        self, bucket: str, key: str, data: bytes | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        """Tamper with an object at rest, bypassing every check (simulates an attacker or corruption).

        ``data`` replaces the bytes (ETag, CRC and size follow them, as if written through the API,
        so SDK transport checks pass and only the reader's own integrity checks can notice);
        ``metadata`` replaces all user metadata. Creates the object when ``data`` is given for a
        missing key.
        """
        try:
            current: ObjectRecord | None = self._store.record(bucket, key)
        except OSSServiceError as error:
            if error.code != "NoSuchKey" or data is None:
                raise KeyError(f"{bucket}/{key}") from None
            current = None
        new_metadata = (
            _metadata_names(metadata) if metadata is not None else (dict(current.metadata) if current else {})
        )
        if data is None:
            if current is None:  # unreachable: a missing key without data raised KeyError above
                raise KeyError(f"{bucket}/{key}")
            self._store.update_record(bucket, replace(current, metadata=new_metadata))
            return
        digest = BodyDigest()
        digest.update(data)
        writer = self._store.writer()
        writer.write(data)
        record = ObjectRecord(
            key=key,
            size=len(data),
            etag=digest.etag,
            crc64=digest.crc64,
            content_type=current.content_type if current else DEFAULT_CONTENT_TYPE,
            last_modified=time.time(),
            metadata=new_metadata,
        )
        self._store.commit_object(bucket, record, writer)

    def list_multipart_uploads(self, bucket: str) -> list[InProgressUpload]:
        return [
            InProgressUpload(u.key, u.upload_id, u.initiated, tuple(sorted(u.parts)))
            for u in self._store.uploads(bucket)
        ]

    # -- fault injection ------------------------------------------------------------------------------

    def inject_fault(
        self,
        method: str | None = None,
        *,
        path_contains: str | None = None,
        query_contains: str | None = None,
        action: str,
        times: int = 1,
    ) -> None:
        """Arm a fault for the next ``times`` matching requests.

        ``action``: ``"reset"`` (read the request, then drop the connection without a response),
        ``"status:500"`` / ``"status:503"`` (an ``InternalError`` answer), ``"delay:SECONDS"``
        (wait, then serve normally), ``"corrupt"`` (flip one bit of the request body as received, or,
        for a request without a body, of the answer's body as sent: corruption on the wire that TCP
        did not catch). ``path_contains`` matches the decoded path, ``query_contains``
        the raw query string.
        """
        self._faults.add(method, path_contains, query_contains, action, times)

    def clear_faults(self) -> None:
        self._faults.clear()
