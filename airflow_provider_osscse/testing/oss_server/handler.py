"""HTTP/1.1 plumbing: request bodies (sized or chunked), authentication, faults, responses, errors.

Keep-alive matters: oss2 keeps a pool of connections and uploads parts in parallel, so every
response carries an exact Content-Length, and every request body is read to its end (or the
connection closed) before the next request on the same connection is parsed.
"""

from __future__ import annotations

import base64
import contextlib
import io
import logging
import socket
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast
from urllib.parse import unquote

from ..serving import NoDelayMixin, QuietDisconnectsMixin
from .faults import FaultPlan
from .operations import OSSRequest, route
from .protocol import CHUNK_SIZE, OSSServiceError, Response, error_document
from .request_log import RequestLog
from .signature import Credentials, SignedRequest, verify
from .storage import ObjectStore

logger = logging.getLogger(__name__)


class ClientDisconnectedError(ConnectionError):
    """The client went away in the middle of its request body."""


class RequestBodyReader:
    """The request body as a stream: ``Content-Length`` or ``Transfer-Encoding: chunked`` (oss2 streams generators)."""

    def __init__(self, rfile: io.BufferedIOBase, headers: dict[str, str]) -> None:
        self._rfile = rfile
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._left = 0 if self._chunked else int(headers.get("content-length", "0") or "0")
        self._finished = not self._chunked and self._left == 0
        self._corrupt = False

    @property
    def has_body(self) -> bool:
        return not self._finished

    def corrupt_next_byte(self) -> None:
        """Flip the lowest bit of the next byte read: corruption on the wire that TCP did not catch."""
        self._corrupt = True

    def _read_exact_line(self) -> bytes:
        line = self._rfile.readline(65537)
        if not line:
            raise ClientDisconnectedError("connection closed inside a chunked body")
        return line

    def read(self, size: int = CHUNK_SIZE) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end of the body."""
        while not self._finished and self._left == 0:
            if not self._chunked:
                self._finished = True
                break
            chunk_size = int(self._read_exact_line().split(b";", 1)[0].strip() or b"0", 16)
            if chunk_size == 0:
                while self._read_exact_line() not in (b"\r\n", b"\n"):
                    pass  # trailers
                self._finished = True
            else:
                self._left = chunk_size
        if self._finished:
            return b""
        data = self._rfile.read(min(size, self._left))
        if not data:
            raise ClientDisconnectedError("connection closed inside the request body")
        self._left -= len(data)
        if self._chunked and self._left == 0:
            self._read_exact_line()  # CRLF after the chunk data
        if self._corrupt:
            self._corrupt = False
            data = _flip_first_bit(data)
        return data

    def chunks(self) -> Iterator[bytes]:
        while data := self.read(CHUNK_SIZE):
            yield data

    def read_all(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        for data in self.chunks():
            total += len(data)
            if total > limit:
                raise OSSServiceError(400, "InvalidArgument", f"The request body exceeds {limit} bytes.")
            parts.append(data)
        return b"".join(parts)

    def drain(self) -> None:
        for _ in self.chunks():
            pass


def _flip_first_bit(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


class OSSHTTPServer(QuietDisconnectsMixin, NoDelayMixin, ThreadingHTTPServer):
    """One thread per connection; remembers open connections so ``stop`` can cut them."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], store: ObjectStore, credentials: Credentials, region: str, faults: FaultPlan
    ) -> None:
        super().__init__(address, OSSRequestHandler)
        self.store = store
        self.credentials = credentials
        self.region = region
        self.faults = faults
        self.requests = RequestLog()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        host, port = cast("tuple[str, int]", self.server_address[:2])  # bound to a (host, port) in __init__
        return f"http://{host}:{port}"

    def track(self, connection: socket.socket, open_: bool) -> None:
        with self._connections_lock:
            (self._connections.add if open_ else self._connections.discard)(connection)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class OSSRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    sys_version = ""
    server: OSSHTTPServer

    def setup(self) -> None:
        super().setup()  # TCP_NODELAY is already set, at accept (serving.NoDelayMixin)
        self.server.track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.connection, False)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._handle()

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET

    # ------------------------------------------------------------------------------------------

    def _handle(self) -> None:
        request_id = uuid.uuid4().hex[:24].upper()
        method = self.command
        raw_path, _, raw_query = self.path.partition("?")
        headers = {name.lower(): value for name, value in self.headers.items()}
        body = RequestBodyReader(self.rfile, headers)
        self.server.requests.record(method, unquote(raw_path), raw_query)
        try:
            action = self.server.faults.take(method, unquote(raw_path), raw_query)
            corrupt_answer = False
            if action is not None:
                if action.kind == "corrupt":
                    if body.has_body:
                        body.corrupt_next_byte()
                    else:
                        corrupt_answer = True
                elif action.kind == "delay":
                    time.sleep(action.seconds)
                elif action.kind == "reset":
                    body.drain()
                    self._reset_connection()
                    return
                else:
                    body.drain()
                    self._send_error(
                        OSSServiceError(
                            action.status, "InternalError", "We encountered an internal error. Please try again."
                        ),
                        request_id,
                    )
                    return
            try:
                response = self._dispatch(method, raw_path, raw_query, headers, body)
            except OSSServiceError as error:
                body.drain()
                self._send_error(error, request_id)
                return
            except (ClientDisconnectedError, ConnectionError):
                raise
            except Exception:
                logger.exception("local OSS server: unexpected error on %s %s", method, raw_path)
                body.drain()
                self._send_error(
                    OSSServiceError(500, "InternalError", "We encountered an internal error. Please try again."),
                    request_id,
                )
                return
            self._send(response, request_id, head=method == "HEAD", corrupt=corrupt_answer)
        except (ClientDisconnectedError, ConnectionError, TimeoutError):
            self.close_connection = True

    def _dispatch(
        self, method: str, raw_path: str, raw_query: str, headers: dict[str, str], body: RequestBodyReader
    ) -> Response:
        signed = SignedRequest(method, raw_path, raw_query, headers)
        verify(signed, self.server.credentials, self.server.region)
        bucket, _, key = unquote(raw_path).lstrip("/").partition("/")
        query: dict[str, str] = {}
        for name, value in signed.decoded_query_pairs():
            query.setdefault(name, value)
        request = OSSRequest(method, bucket, key, query, headers, body, self.server.endpoint, self.server.region)
        response = route(request)(self.server.store, request)
        if body.read(1):  # an operation that ignores its body still has to consume it
            body.drain()
        return response

    def _reset_connection(self) -> None:
        """Drop the connection without answering; SO_LINGER 0 makes the close an RST, as a load balancer would."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _send(self, response: Response, request_id: str, *, head: bool, corrupt: bool = False) -> None:
        self.send_response(response.status)
        headers = dict(response.headers)
        if not head or "Content-Length" not in headers:
            headers["Content-Length"] = str(response.content_length)
        headers["x-oss-request-id"] = request_id
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            if response.stream is not None:
                response.stream.close()
            return
        for chunk in response.chunks():
            sent = chunk
            if corrupt and chunk:
                sent, corrupt = _flip_first_bit(chunk), False
            self.wfile.write(sent)

    def _send_error(self, error: OSSServiceError, request_id: str) -> None:
        document = error_document(error, request_id, self.headers.get("Host", "localhost"))
        head = self.command == "HEAD"
        self.send_response(error.status)
        self.send_header("x-oss-request-id", request_id)
        if error.ec:
            self.send_header("x-oss-ec", error.ec)
        if error.status == 304:
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Type", "application/xml")
        if head:
            self.send_header("x-oss-err", base64.b64encode(document).decode("ascii"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(document)))
        self.end_headers()
        self.wfile.write(document)
