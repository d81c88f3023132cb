"""Wire-level pieces of the OSS protocol shared by the handler and the operations.

Response XML carries no namespace: oss2 parses with bare ``find('IsTruncated')`` and a namespaced
document silently breaks it. Errors are ``<Error><Code/><Message/><RequestId/><HostId/></Error>``;
oss2 chooses its exception class from (HTTP status, Code).
"""

from __future__ import annotations

import calendar
import email.utils
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from xml.etree import ElementTree

USER_META_PREFIX = "x-oss-meta-"
CHUNK_SIZE = 1 << 20


class OSSServiceError(Exception):
    """An error OSS would answer with: HTTP status, OSS error ``Code`` and an optional ``EC``."""

    def __init__(
        self, status: int, code: str, message: str, *, ec: str | None = None, extra: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.ec = ec
        self.extra = extra or {}


def no_such_bucket(bucket: str) -> OSSServiceError:
    return OSSServiceError(404, "NoSuchBucket", "The specified bucket does not exist.", extra={"BucketName": bucket})


def no_such_key(key: str) -> OSSServiceError:
    return OSSServiceError(404, "NoSuchKey", "The specified key does not exist.", extra={"Key": key})


def no_such_upload(upload_id: str) -> OSSServiceError:
    return OSSServiceError(
        404,
        "NoSuchUpload",
        "The specified upload does not exist. The upload ID may be invalid, "
        "or the upload may have been aborted or completed.",
        extra={"UploadId": upload_id},
    )


def invalid_argument(message: str, *, ec: str | None = None) -> OSSServiceError:
    return OSSServiceError(400, "InvalidArgument", message, ec=ec)


@dataclass
class Response:
    """What an operation answers: status, headers and a body (bytes, or a stream of ``length`` bytes)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: BinaryIO | None = None
    stream_length: int = 0

    def chunks(self) -> Iterator[bytes]:
        """The body in chunks of at most 1 MiB; a stream is closed afterwards."""
        if self.stream is None:
            if self.body:
                yield self.body
            return
        remaining = self.stream_length
        try:
            while remaining > 0:
                chunk = self.stream.read(min(CHUNK_SIZE, remaining))
                if not chunk:
                    raise OSError("stored object is shorter than its recorded size")
                remaining -= len(chunk)
                yield chunk
        finally:
            self.stream.close()

    @property
    def content_length(self) -> int:
        return self.stream_length if self.stream is not None else len(self.body)


def xml_document(root_tag: str, children: Iterable[tuple[str, object]]) -> bytes:
    """Serialize a namespace-free XML document; values are str, bool, int, None or nested lists."""
    root = ElementTree.Element(root_tag)
    _append_children(root, children)
    document: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)  # bytes with an encoding
    return document


def _append_children(parent: ElementTree.Element, children: Iterable[tuple[str, object]]) -> None:
    for tag, value in children:
        node = ElementTree.SubElement(parent, tag)
        if isinstance(value, list):
            _append_children(node, value)
        elif isinstance(value, bool):
            node.text = "true" if value else "false"
        elif value is not None:
            node.text = str(value)


def xml_response(root_tag: str, children: Iterable[tuple[str, object]], status: int = 200) -> Response:
    return Response(status=status, headers={"Content-Type": "application/xml"}, body=xml_document(root_tag, children))


def error_document(error: OSSServiceError, request_id: str, host_id: str) -> bytes:
    children: list[tuple[str, object]] = [
        ("Code", error.code),
        ("Message", error.message),
        ("RequestId", request_id),
        ("HostId", host_id),
    ]
    children.extend(error.extra.items())
    if error.ec:
        children.append(("EC", error.ec))
    return xml_document("Error", children)


def http_date(timestamp: float) -> str:
    """RFC 1123 date, as in ``Last-Modified``."""
    return email.utils.formatdate(timestamp, usegmt=True)


def iso8601(timestamp: float) -> str:
    """``2024-01-02T03:04:05.000Z``: oss2 parses listing dates with exactly this shape."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(timestamp))


def parse_http_date(value: str) -> float | None:
    try:
        parsed = email.utils.parsedate_tz(value)
    except (TypeError, ValueError):
        return None
    if parsed is None:
        return None
    return float(calendar.timegm(parsed[:9])) - (parsed[9] or 0)


def parse_byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` inclusive for ``bytes=a-b``, ``a-`` or ``-n``; None when not satisfiable.

    OSS answers an unusable range with the whole object (200) unless the client asks for
    ``x-oss-range-behavior: standard``; the caller decides which.
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first_text == "":
            suffix = int(last_text)
            if suffix <= 0 or size == 0:
                return None
            return max(0, size - suffix), size - 1
        first = int(first_text)
        last = int(last_text) if last_text != "" else size - 1
    except ValueError:
        return None
    if first < 0 or first >= size or last < first:
        return None
    return first, min(last, size - 1)
