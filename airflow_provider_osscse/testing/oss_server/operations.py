"""The OSS operations, each a function from a parsed request to a :class:`Response`.

Routing follows the call table oss2 and alibabacloud-oss-v2 use (path-style
``/<bucket>/<key>`` plus sub-resources in the query). Each operation validates what it can before
it consumes the body; the handler drains the rest of an unread body before answering an error so
that the connection stays usable (a client still sending would otherwise see a reset, not the error).
"""

from __future__ import annotations

import base64
import binascii
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import quote, unquote
from xml.etree import ElementTree

from . import conditions, cse_rules
from .checksums import BodyDigest, crc64_combine, multipart_etag
from .protocol import (
    CHUNK_SIZE,
    USER_META_PREFIX,
    OSSServiceError,
    Response,
    http_date,
    invalid_argument,
    iso8601,
    no_such_key,
    parse_byte_range,
    xml_response,
)
from .storage import BlobWriter, ObjectRecord, ObjectStore, PartRecord

MIN_PART_SIZE = 100 * 1024
MAX_USER_METADATA = 8 * 1024
MAX_PART_NUMBER = 10000
DEFAULT_CONTENT_TYPE = "application/octet-stream"
OWNER = [("ID", "local-oss-owner"), ("DisplayName", "local-oss-owner")]
_RESPONSE_OVERRIDES = {
    "response-content-type": "Content-Type",
    "response-content-language": "Content-Language",
    "response-expires": "Expires",
    "response-cache-control": "Cache-Control",
    "response-content-disposition": "Content-Disposition",
    "response-content-encoding": "Content-Encoding",
}


class RequestBody(Protocol):
    def chunks(self) -> Iterator[bytes]: ...

    def read_all(self, limit: int) -> bytes: ...


@dataclass(frozen=True)
class OSSRequest:
    """A request after authentication: decoded bucket and key, decoded query, lower-case headers."""

    method: str
    bucket: str
    key: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: RequestBody
    endpoint: str
    region: str

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)

    @property
    def url_encoding(self) -> bool:
        return self.query.get("encoding-type") == "url"

    def encode_name(self, name: str) -> str:
        """Keys and prefixes in listings are URL-encoded when the client asked for ``encoding-type=url``."""
        return quote(name, safe="") if self.url_encoding else name


# ---------------------------------------------------------------------------------------------
# helpers


def user_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """``x-oss-meta-*`` headers, names lower-cased (OSS stores and returns them lower-case)."""
    metadata = {name.lower(): value for name, value in headers.items() if name.lower().startswith(USER_META_PREFIX)}
    size = sum(
        len(name.encode("latin-1", "replace")) + len(value.encode("latin-1", "replace"))
        for name, value in metadata.items()
    )
    if size > MAX_USER_METADATA:
        raise invalid_argument(
            f"User metadata is {size} bytes; the total of x-oss-meta-* may not exceed 8 KB.", ec="0011-00000002"
        )
    return metadata


def _quoted(etag: str) -> str:
    return f'"{etag}"'


def _receive(store: ObjectStore, request: OSSRequest) -> tuple[BlobWriter, BodyDigest]:
    """Stream the request body into a new blob, checking ``Content-MD5`` when one was sent."""
    writer = store.writer()
    digest = BodyDigest()
    try:
        for chunk in request.body.chunks():
            digest.update(chunk)
            writer.write(chunk)
        _check_content_md5(request, digest)
    except BaseException:
        writer.discard()
        raise
    return writer, digest


def _check_content_md5(request: OSSRequest, digest: BodyDigest) -> None:
    sent = request.header("content-md5")
    if sent is None:
        return
    try:
        valid = len(base64.b64decode(sent, validate=True)) == 16
    except (binascii.Error, ValueError):
        valid = False
    if not valid or sent != digest.content_md5:
        raise OSSServiceError(400, "InvalidDigest", "The Content-MD5 you specified was invalid.")


def _read_xml(request: OSSRequest) -> ElementTree.Element:
    body = request.body.read_all(limit=16 << 20)
    digest = BodyDigest()
    digest.update(body)
    _check_content_md5(request, digest)
    try:
        return ElementTree.fromstring(body)  # noqa: S314 - a loopback test server's own clients; expat caps entity expansion
    except ElementTree.ParseError as error:
        raise OSSServiceError(400, "MalformedXML", f"The XML you provided was not well-formed: {error}.") from None


def _int_param(request: OSSRequest, name: str, default: int, maximum: int) -> int:
    text = request.query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid_argument(f"{name} must be an integer.") from None
    if not 0 <= value <= maximum:
        raise invalid_argument(f"{name} must be between 0 and {maximum}.")
    return value


def _copy_source(request: OSSRequest) -> tuple[str, str]:
    """``x-oss-copy-source: /bucket/<quoted key>`` (optionally ``?versionId=``) as (bucket, key)."""
    raw = request.header("x-oss-copy-source", "") or ""
    raw = raw.split("?", 1)[0]
    bucket, _, key = unquote(raw).lstrip("/").partition("/")
    if not bucket or not key:
        raise invalid_argument("x-oss-copy-source must be /<bucket>/<key>.")
    return bucket, key


def _object_headers(record: ObjectRecord) -> dict[str, str]:
    headers = {
        "Content-Type": record.content_type,
        "ETag": _quoted(record.etag),
        "Last-Modified": http_date(record.last_modified),
        "x-oss-hash-crc64ecma": str(record.crc64),
        "x-oss-object-type": record.object_type,
        "x-oss-storage-class": "Standard",
        "Accept-Ranges": "bytes",
    }
    headers.update(record.metadata)
    return headers


# ---------------------------------------------------------------------------------------------
# service and buckets


def list_buckets(store: ObjectStore, request: OSSRequest) -> Response:
    buckets = [
        (
            "Bucket",
            [
                ("Name", name),
                ("Location", f"oss-{request.region}"),
                ("CreationDate", iso8601(created)),
                ("ExtranetEndpoint", request.endpoint.removeprefix("http://")),
                ("IntranetEndpoint", request.endpoint.removeprefix("http://")),
                ("Region", request.region),
                ("StorageClass", "Standard"),
            ],
        )
        for name, created in store.buckets()
    ]
    return xml_response("ListAllMyBucketsResult", [("Owner", OWNER), ("Buckets", buckets)])


def create_bucket(store: ObjectStore, request: OSSRequest) -> Response:
    name = request.bucket
    if (
        not (3 <= len(name) <= 63)
        or name[0] == "-"
        or name[-1] == "-"
        or not all(c.islower() or c.isdigit() or c == "-" for c in name)
    ):
        raise OSSServiceError(
            400, "InvalidBucketName", "The specified bucket is not valid.", extra={"BucketName": name}
        )
    request.body.read_all(limit=1 << 20)  # optional CreateBucketConfiguration: storage class is ignored
    store.create_bucket(name)
    return Response(200, {"Location": f"/{name}"})


def delete_bucket(store: ObjectStore, request: OSSRequest) -> Response:
    store.delete_bucket(request.bucket)
    return Response(204)


def bucket_info(store: ObjectStore, request: OSSRequest) -> Response:
    created = dict(store.buckets()).get(request.bucket)
    if created is None:
        store.require_bucket(request.bucket)
    host = request.endpoint.removeprefix("http://")
    return xml_response(
        "BucketInfo",
        [
            (
                "Bucket",
                [
                    ("Name", request.bucket),
                    ("Location", f"oss-{request.region}"),
                    ("Region", request.region),
                    ("CreationDate", iso8601(created or 0)),
                    ("ExtranetEndpoint", host),
                    ("IntranetEndpoint", host),
                    ("StorageClass", "Standard"),
                    ("Owner", OWNER),
                    ("AccessControlList", [("Grant", "private")]),
                ],
            )
        ],
    )


def bucket_location(store: ObjectStore, request: OSSRequest) -> Response:
    store.require_bucket(request.bucket)
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint>oss-{request.region}</LocationConstraint>'
    return Response(200, {"Content-Type": "application/xml"}, body.encode())


# ---------------------------------------------------------------------------------------------
# objects


def put_object(store: ObjectStore, request: OSSRequest) -> Response:
    store.require_bucket(request.bucket)
    metadata = user_metadata(request.headers)
    cse_rules.check_upload(metadata, multipart=False)
    precondition = conditions.write_precondition(request.headers)
    if precondition is not None:
        precondition(store.peek(request.bucket, request.key))  # fail before receiving the body; re-checked at commit
    writer, digest = _receive(store, request)
    record = ObjectRecord(
        key=request.key,
        size=digest.size,
        etag=digest.etag,
        crc64=digest.crc64,
        content_type=request.header("content-type") or DEFAULT_CONTENT_TYPE,
        last_modified=time.time(),
        metadata=metadata,
    )
    try:
        store.commit_object(request.bucket, record, writer, precondition=precondition)
    except BaseException:
        writer.discard()
        raise
    return Response(
        200,
        {"ETag": _quoted(record.etag), "x-oss-hash-crc64ecma": str(record.crc64), "Content-MD5": digest.content_md5},
    )


def get_object(store: ObjectStore, request: OSSRequest, *, head: bool) -> Response:
    if head:
        record = store.record(request.bucket, request.key)
        stream = None
    else:
        record, stream = store.open_object(request.bucket, request.key)
    try:
        conditions.check_read(request.headers, record)
        headers = _object_headers(record)
        for param, header in _RESPONSE_OVERRIDES.items():
            if param in request.query:
                headers[header] = request.query[param]
        status, first, length = 200, 0, record.size
        range_header = request.header("range")
        if range_header is not None:
            byte_range = parse_byte_range(range_header, record.size)
            if byte_range is not None:
                status, first, length = 206, byte_range[0], byte_range[1] - byte_range[0] + 1
                headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{record.size}"
            elif (request.header("x-oss-range-behavior") or "").lower() == "standard":
                raise OSSServiceError(416, "InvalidRange", "The requested range cannot be satisfied.")
        if stream is None:
            headers["Content-Length"] = str(length)
            return Response(status, headers)
        stream.seek(first)
        response, stream = Response(status, headers, stream=stream, stream_length=length), None
        return response
    finally:
        if stream is not None:
            stream.close()


def object_meta(store: ObjectStore, request: OSSRequest) -> Response:
    record = store.record(request.bucket, request.key)
    return Response(
        200,
        {
            "ETag": _quoted(record.etag),
            "Content-Length": str(record.size),
            "Last-Modified": http_date(record.last_modified),
            "x-oss-hash-crc64ecma": str(record.crc64),
        },
    )


def copy_object(store: ObjectStore, request: OSSRequest) -> Response:
    source_bucket, source_key = _copy_source(request)
    store.require_bucket(request.bucket)
    if (source_bucket, source_key) == (request.bucket, request.key):
        return _copy_onto_itself(store, request)
    source, stream = store.open_object(source_bucket, source_key)  # the record and bytes copied, consistent
    with stream:
        conditions.check_copy_source(request.headers, source)
        precondition = conditions.write_precondition(request.headers)
        if precondition is not None:
            precondition(store.peek(request.bucket, request.key))  # fail before copying; re-checked at commit
        metadata, content_type = _copy_metadata(request, source)
        request.body.read_all(limit=1 << 20)
        record = replace(
            source, key=request.key, metadata=metadata, content_type=content_type, last_modified=time.time()
        )
        writer = store.writer()
        try:
            while chunk := stream.read(CHUNK_SIZE):
                writer.write(chunk)
            store.commit_object(request.bucket, record, writer, precondition=precondition)
        except BaseException:
            writer.discard()
            raise
    return _copy_result(record)


def _copy_onto_itself(store: ObjectStore, request: OSSRequest) -> Response:
    """Copy onto the same key: only the metadata changes, decided and written under the store's lock."""
    snapshot = store.record(request.bucket, request.key)
    conditions.check_copy_source(request.headers, snapshot)  # fail early; all re-checked under the lock
    _copy_metadata(request, snapshot)
    request.body.read_all(limit=1 << 20)
    now = time.time()

    def change(current: ObjectRecord | None) -> ObjectRecord:
        if current is None:
            raise no_such_key(request.key)
        conditions.check_copy_source(request.headers, current)
        conditions.check_overwrite(request.headers, current)
        metadata, content_type = _copy_metadata(request, current)
        return replace(current, metadata=metadata, content_type=content_type, last_modified=now)

    return _copy_result(store.transform_record(request.bucket, request.key, change))


def _copy_metadata(request: OSSRequest, source: ObjectRecord) -> tuple[dict[str, str], str]:
    """The target's (metadata, content type) under ``x-oss-metadata-directive``."""
    directive = (request.header("x-oss-metadata-directive") or "COPY").upper()
    if directive == "REPLACE":
        metadata = user_metadata(request.headers)
        cse_rules.check_replace_copy(source.metadata, metadata)
        return metadata, request.header("content-type") or DEFAULT_CONTENT_TYPE
    if directive == "COPY":
        return dict(source.metadata), source.content_type
    raise invalid_argument("x-oss-metadata-directive must be COPY or REPLACE.")


def _copy_result(record: ObjectRecord) -> Response:
    response = xml_response(
        "CopyObjectResult", [("ETag", _quoted(record.etag)), ("LastModified", iso8601(record.last_modified))]
    )
    response.headers.update({"ETag": _quoted(record.etag), "x-oss-hash-crc64ecma": str(record.crc64)})
    return response


def delete_object(store: ObjectStore, request: OSSRequest) -> Response:
    store.delete_object(request.bucket, request.key)
    return Response(204)


def delete_objects(store: ObjectStore, request: OSSRequest) -> Response:
    store.require_bucket(request.bucket)
    root = _read_xml(request)
    quiet = (root.findtext("Quiet") or "false").strip().lower() == "true"
    keys = [node.findtext("Key") or "" for node in root.findall("Object")]
    if len(keys) > 1000:
        raise invalid_argument("At most 1000 keys may be deleted in one request.")
    for key in keys:
        store.delete_object(request.bucket, key)
    children: list[tuple[str, object]] = [] if quiet else [("Deleted", [("Key", request.encode_name(k))]) for k in keys]
    if request.url_encoding:
        children.append(("EncodingType", "url"))
    return xml_response("DeleteResult", children)


def _list_entries(
    records: list[ObjectRecord], prefix: str, delimiter: str, after: str, max_keys: int
) -> tuple[list[ObjectRecord], list[str], bool, str]:
    """Objects and common prefixes after ``after`` in key order; (contents, prefixes, truncated, last)."""
    contents: list[ObjectRecord] = []
    prefixes: list[str] = []
    last = ""
    for record in records:
        key = record.key
        if key <= after or not key.startswith(prefix):
            continue
        common = None
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                common = key[: cut + len(delimiter)]
        if common is not None and (common <= after or (prefixes and prefixes[-1] == common)):
            continue
        if len(contents) + len(prefixes) >= max_keys:
            return contents, prefixes, True, last
        if common is not None:
            prefixes.append(common)
            last = common
        else:
            contents.append(record)
            last = key
    return contents, prefixes, False, last


def _contents_xml(request: OSSRequest, record: ObjectRecord) -> tuple[str, object]:
    return (
        "Contents",
        [
            ("Key", request.encode_name(record.key)),
            ("LastModified", iso8601(record.last_modified)),
            ("ETag", _quoted(record.etag)),
            ("Type", record.object_type),
            ("Size", record.size),
            ("StorageClass", "Standard"),
            ("Owner", OWNER),
        ],
    )


def list_objects(store: ObjectStore, request: OSSRequest) -> Response:
    records = store.records(request.bucket)
    prefix = request.query.get("prefix", "")
    delimiter = request.query.get("delimiter", "")
    max_keys = _int_param(request, "max-keys", 100, 1000)
    v2 = request.query.get("list-type") == "2"
    if v2:
        token = request.query.get("continuation-token")
        if token:
            try:
                after = base64.urlsafe_b64decode(token.encode()).decode()
            except (binascii.Error, ValueError, UnicodeDecodeError):
                raise invalid_argument("The continuation token provided is incorrect.") from None
        else:
            after = request.query.get("start-after", "")
    else:
        after = request.query.get("marker", "")
    contents, prefixes, truncated, last = _list_entries(records, prefix, delimiter, after, max_keys)
    children: list[tuple[str, object]] = [
        ("Name", request.bucket),
        ("Prefix", request.encode_name(prefix)),
        ("MaxKeys", max_keys),
        ("Delimiter", request.encode_name(delimiter)),
    ]
    if v2:
        if "start-after" in request.query:
            children.append(("StartAfter", request.encode_name(request.query["start-after"])))
        if "continuation-token" in request.query:
            children.append(("ContinuationToken", request.query["continuation-token"]))
        children.append(("IsTruncated", truncated))
        if truncated:
            children.append(("NextContinuationToken", base64.urlsafe_b64encode(last.encode()).decode()))
        children.append(("KeyCount", len(contents) + len(prefixes)))
    else:
        children.append(("Marker", request.encode_name(after)))
        children.append(("IsTruncated", truncated))
        if truncated:
            children.append(("NextMarker", request.encode_name(last)))
    if request.url_encoding:
        children.append(("EncodingType", "url"))
    children.extend(_contents_xml(request, record) for record in contents)
    children.extend(("CommonPrefixes", [("Prefix", request.encode_name(p))]) for p in prefixes)
    return xml_response("ListBucketResult", children)


# ---------------------------------------------------------------------------------------------
# multipart


def init_multipart(store: ObjectStore, request: OSSRequest) -> Response:
    store.require_bucket(request.bucket)
    metadata = user_metadata(request.headers)
    cse_rules.check_upload(metadata, multipart=True)
    conditions.check_overwrite(request.headers, store.peek(request.bucket, request.key))
    request.body.read_all(limit=1 << 20)
    upload = store.create_upload(
        request.bucket, request.key, request.header("content-type") or DEFAULT_CONTENT_TYPE, metadata
    )
    children: list[tuple[str, object]] = [
        ("Bucket", request.bucket),
        ("Key", request.encode_name(request.key)),
        ("UploadId", upload.upload_id),
    ]
    if request.url_encoding:
        children.append(("EncodingType", "url"))
    return xml_response("InitiateMultipartUploadResult", children)


def _part_number(request: OSSRequest) -> int:
    try:
        number = int(request.query.get("partNumber", ""))
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PART_NUMBER:
        raise invalid_argument(f"partNumber must be an integer between 1 and {MAX_PART_NUMBER}.")
    return number


def upload_part(store: ObjectStore, request: OSSRequest) -> Response:
    number = _part_number(request)
    upload = store.upload(request.bucket, request.key, request.query["uploadId"])
    cse_rules.check_part(upload.metadata, {k.lower(): v for k, v in request.headers.items()})
    writer, digest = _receive(store, request)
    part = PartRecord(number, digest.size, digest.md5, digest.etag, digest.crc64, time.time())
    try:
        store.commit_part(request.bucket, upload.upload_id, part, writer)
    except BaseException:
        writer.discard()
        raise
    return Response(
        200, {"ETag": _quoted(part.etag), "x-oss-hash-crc64ecma": str(part.crc64), "Content-MD5": digest.content_md5}
    )


def upload_part_copy(store: ObjectStore, request: OSSRequest) -> Response:
    number = _part_number(request)
    upload = store.upload(request.bucket, request.key, request.query["uploadId"])
    source_bucket, source_key = _copy_source(request)
    request.body.read_all(limit=1 << 20)
    source, stream = store.open_object(source_bucket, source_key)
    with stream:
        conditions.check_copy_source(request.headers, source)
        first, length = 0, source.size
        range_header = request.header("x-oss-copy-source-range")
        if range_header is not None:
            byte_range = parse_byte_range(range_header, source.size)
            if byte_range is None:
                raise OSSServiceError(416, "InvalidRange", "The x-oss-copy-source-range cannot be satisfied.")
            first, length = byte_range[0], byte_range[1] - byte_range[0] + 1
        stream.seek(first)
        writer = store.writer()
        digest = BodyDigest()
        try:
            while length > 0 and (chunk := stream.read(min(CHUNK_SIZE, length))):
                digest.update(chunk)
                writer.write(chunk)
                length -= len(chunk)
            part = PartRecord(number, digest.size, digest.md5, digest.etag, digest.crc64, time.time())
            store.commit_part(request.bucket, upload.upload_id, part, writer)
        except BaseException:
            writer.discard()
            raise
    response = xml_response(
        "CopyPartResult", [("LastModified", iso8601(part.last_modified)), ("ETag", _quoted(part.etag))]
    )
    response.headers.update({"ETag": _quoted(part.etag), "x-oss-hash-crc64ecma": str(part.crc64)})
    return response


def complete_multipart(store: ObjectStore, request: OSSRequest) -> Response:
    upload_id = request.query["uploadId"]
    upload = store.upload(request.bucket, request.key, upload_id)
    if (request.header("x-oss-complete-all") or "").lower() == "yes":
        request.body.read_all(limit=1 << 20)
        chosen = [(n, upload.parts[n].etag) for n in sorted(upload.parts)]
    else:
        root = _read_xml(request)
        chosen = []
        for node in root.findall("Part"):
            try:
                chosen.append(
                    (int(node.findtext("PartNumber") or ""), (node.findtext("ETag") or "").strip().strip('"').upper())
                )
            except ValueError:
                raise OSSServiceError(400, "MalformedXML", "PartNumber must be an integer.") from None
    if not chosen:
        raise OSSServiceError(400, "MalformedXML", "The XML you provided lists no parts.")
    numbers = [number for number, _ in chosen]
    if any(b <= a for a, b in itertools.pairwise(numbers)):
        raise OSSServiceError(
            400,
            "InvalidPartOrder",
            "The list of parts was not in ascending order. Parts must be ordered by part number.",
        )
    parts: list[PartRecord] = []
    for number, etag in chosen:
        part = upload.parts.get(number)
        if part is None or part.etag != etag:
            raise OSSServiceError(
                400,
                "InvalidPart",
                "One or more of the specified parts could not be found or the specified entity tag might not "
                "have matched the part's entity tag.",
                extra={"PartNumber": str(number), "ETag": etag},
            )
        parts.append(part)
    for part in parts[:-1]:
        if part.size < MIN_PART_SIZE:
            raise OSSServiceError(
                400,
                "EntityTooSmall",
                "Your proposed upload is smaller than the minimum allowed size.",
                extra={"PartNumber": str(part.number), "MinSizeAllowed": str(MIN_PART_SIZE)},
            )
    cse_rules.check_complete(upload.metadata, [part.size for part in parts])
    crc = 0
    for part in parts:
        crc = crc64_combine(crc, part.crc64, part.size)
    record = ObjectRecord(
        key=request.key,
        size=sum(part.size for part in parts),
        etag=multipart_etag([part.md5 for part in parts]),
        crc64=crc,
        content_type=upload.content_type,
        last_modified=time.time(),
        metadata=upload.metadata,
        object_type="Multipart",
    )
    store.assemble_upload(
        request.bucket, upload_id, numbers, record, precondition=conditions.write_precondition(request.headers)
    )
    children: list[tuple[str, object]] = [
        ("Location", f"{request.endpoint}/{request.bucket}/{quote(request.key, safe='/')}"),
        ("Bucket", request.bucket),
        ("Key", request.encode_name(request.key)),
        ("ETag", _quoted(record.etag)),
    ]
    if request.url_encoding:
        children.append(("EncodingType", "url"))
    response = xml_response("CompleteMultipartUploadResult", children)
    response.headers.update({"ETag": _quoted(record.etag), "x-oss-hash-crc64ecma": str(record.crc64)})
    return response


def abort_multipart(store: ObjectStore, request: OSSRequest) -> Response:
    store.abort_upload(request.bucket, request.key, request.query["uploadId"])
    return Response(204)


def list_parts(store: ObjectStore, request: OSSRequest) -> Response:
    upload = store.upload(request.bucket, request.key, request.query["uploadId"])
    marker = _int_param(request, "part-number-marker", 0, MAX_PART_NUMBER)
    max_parts = _int_param(request, "max-parts", 1000, 1000)
    numbers = [n for n in sorted(upload.parts) if n > marker]
    shown, truncated = numbers[:max_parts], len(numbers) > max_parts
    children: list[tuple[str, object]] = [
        ("Bucket", request.bucket),
        ("Key", request.encode_name(request.key)),
        ("UploadId", upload.upload_id),
        ("PartNumberMarker", marker),
        ("NextPartNumberMarker", shown[-1] if shown else marker),
        ("MaxParts", max_parts),
        ("IsTruncated", truncated),
    ]
    if request.url_encoding:
        children.append(("EncodingType", "url"))
    for number in shown:
        part = upload.parts[number]
        children.append(
            (
                "Part",
                [
                    ("PartNumber", number),
                    ("LastModified", iso8601(part.last_modified)),
                    ("ETag", _quoted(part.etag)),
                    ("HashCrc64ecma", part.crc64),
                    ("Size", part.size),
                ],
            )
        )
    return xml_response("ListPartsResult", children)


def list_uploads(store: ObjectStore, request: OSSRequest) -> Response:
    uploads = sorted(store.uploads(request.bucket), key=lambda u: (u.key, u.upload_id))
    prefix = request.query.get("prefix", "")
    key_marker = request.query.get("key-marker", "")
    id_marker = request.query.get("upload-id-marker", "")
    max_uploads = _int_param(request, "max-uploads", 1000, 1000)
    selected = [
        u
        for u in uploads
        if u.key.startswith(prefix)
        and (u.key > key_marker or (id_marker and u.key == key_marker and u.upload_id > id_marker))
    ]
    shown, truncated = selected[:max_uploads], len(selected) > max_uploads
    children: list[tuple[str, object]] = [
        ("Bucket", request.bucket),
        ("KeyMarker", request.encode_name(key_marker)),
        ("UploadIdMarker", id_marker),
        ("NextKeyMarker", request.encode_name(shown[-1].key) if truncated else ""),
        ("NextUploadIdMarker", shown[-1].upload_id if truncated else ""),
        ("Delimiter", request.encode_name(request.query.get("delimiter", ""))),
        ("Prefix", request.encode_name(prefix)),
        ("MaxUploads", max_uploads),
        ("IsTruncated", truncated),
    ]
    if request.url_encoding:
        children.append(("EncodingType", "url"))
    children.extend(
        (
            "Upload",
            [
                ("Key", request.encode_name(upload.key)),
                ("UploadId", upload.upload_id),
                ("StorageClass", "Standard"),
                ("Initiated", iso8601(upload.initiated)),
            ],
        )
        for upload in shown
    )
    return xml_response("ListMultipartUploadsResult", children)


# ---------------------------------------------------------------------------------------------
# routing

Operation = Callable[[ObjectStore, OSSRequest], Response]


def _not_implemented(store: ObjectStore, request: OSSRequest) -> Response:
    raise OSSServiceError(501, "NotImplemented", "This operation is not implemented by the local OSS server.")


def route(request: OSSRequest) -> Operation:
    """The operation a request names (method, whether a bucket/key is present, sub-resources)."""
    method, query = request.method, request.query
    if not request.bucket:
        return list_buckets if method == "GET" else _not_implemented
    if not request.key:
        if method == "PUT" and not query:
            return create_bucket
        if method == "DELETE" and not query:
            return delete_bucket
        if method == "POST" and "delete" in query:
            return delete_objects
        if method == "GET":
            if "uploads" in query:
                return list_uploads
            if "bucketInfo" in query:
                return bucket_info
            if "location" in query:
                return bucket_location
            return list_objects
        return _not_implemented
    if method == "PUT":
        if "uploadId" in query and "partNumber" in query:
            return upload_part_copy if "x-oss-copy-source" in request.headers else upload_part
        if "x-oss-copy-source" in request.headers:
            return copy_object
        return put_object
    if method in ("GET", "HEAD"):
        if method == "GET" and "uploadId" in query:
            return list_parts
        if method == "HEAD" and "objectMeta" in query:
            return object_meta
        return lambda store, req: get_object(store, req, head=method == "HEAD")
    if method == "DELETE":
        return abort_multipart if "uploadId" in query else delete_object
    if method == "POST":
        if "uploads" in query:
            return init_multipart
        if "uploadId" in query:
            return complete_multipart
    return _not_implemented
