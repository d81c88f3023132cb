"""Verification of OSS request signatures: v1 (``OSS ak:sig``, HMAC-SHA1) and v4 (``OSS4-HMAC-SHA256``).

The server recomputes what the SDK signed from what arrived on the wire. Two details matter:

* v1 signs the *decoded* ``/bucket/key`` and only the sub-resources OSS knows (``uploadId``,
  ``partNumber``, ``uploads``, ``delete``, ``response-*``, ...), an empty value as the bare name.
* v4 signs the whole query string. oss2 signs it RFC 3986-encoded (``/`` as ``%2F``), while
  alibabacloud-oss-v2 signs it exactly as it sent it (``quote`` keeps ``/``). Both forms are tried,
  which is what a tolerant server has to do to accept both SDKs.
* Query components are *form*-decoded (:func:`decode_query_component`): oss2 sends its query through
  ``requests``, which encodes a space as ``+`` (and a literal ``+`` as ``%2B``), while it signs the
  space as ``%20``. Plain ``unquote`` kept the ``+``, so a v4 prefix with a space failed its
  signature and a v1 listing looked for a literal ``+``. The v2 SDK never sends a bare ``+``.

Header values arrive decoded as ISO-8859-1 by ``http.server``; they are re-encoded to the exact
bytes the client signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, unquote_plus

from .protocol import OSSServiceError

V1_SUBRESOURCES = frozenset(
    [
        "acl",
        "uploadId",
        "uploads",
        "partNumber",
        "group",
        "link",
        "delete",
        "website",
        "location",
        "objectInfo",
        "objectMeta",
        "response-content-type",
        "response-content-language",
        "response-cache-control",
        "response-content-encoding",
        "response-expires",
        "response-content-disposition",
        "logging",
        "cors",
        "lifecycle",
        "restore",
        "qos",
        "referer",
        "stat",
        "bucketInfo",
        "append",
        "position",
        "security-token",
        "live",
        "comp",
        "status",
        "vod",
        "startTime",
        "endTime",
        "x-oss-process",
        "symlink",
        "callback",
        "callback-var",
        "tagging",
        "encryption",
        "versions",
        "versioning",
        "versionId",
        "policy",
        "requestPayment",
        "x-oss-traffic-limit",
        "qosInfo",
        "asyncFetch",
        "x-oss-request-payer",
        "sequential",
        "inventory",
        "inventoryId",
        "continuation-token",
        "worm",
        "wormId",
        "wormExtend",
        "replication",
        "replicationLocation",
        "replicationProgress",
        "transferAcceleration",
        "cname",
        "metaQuery",
        "resourceGroup",
        "style",
        "styleName",
        "x-oss-async-process",
        "regionList",
    ]
)
_V4_ALGORITHM = "OSS4-HMAC-SHA256"
_V4_DEFAULT_SIGNED = ("content-type", "content-md5")


@dataclass(frozen=True)
class Credentials:
    """The one identity the server accepts. ``repr`` never shows the secret or the token."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class SignedRequest:
    """The parts of a request a signature covers, as received."""

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, str]  # lower-case names

    @property
    def decoded_path(self) -> str:
        return unquote(self.raw_path)

    def query_pairs(self) -> list[tuple[str, str]]:
        """``(raw name, raw value)`` pairs exactly as on the wire."""
        if not self.raw_query:
            return []
        return [(k, v) for k, _, v in (p.partition("=") for p in self.raw_query.split("&") if p)]

    def decoded_query_pairs(self) -> list[tuple[str, str]]:
        """``(name, value)`` pairs as the client meant them (see :func:`decode_query_component`)."""
        return [(decode_query_component(k), decode_query_component(v)) for k, v in self.query_pairs()]

    def header_bytes(self, name: str) -> bytes:
        return self.headers.get(name, "").encode("latin-1", "replace")


def decode_query_component(text: str) -> str:
    """One query name or value as the client meant it: percent-decoded, ``+`` read as a space.

    ``requests`` (under oss2) form-encodes a space as ``+`` and a literal ``+`` as ``%2B``;
    alibabacloud-oss-v2 percent-encodes both. Form decoding is right for both SDKs.
    """
    return unquote_plus(text)


def _signature_mismatch(string_to_sign: str | None = None) -> OSSServiceError:
    extra = {"StringToSign": string_to_sign} if string_to_sign is not None else None
    return OSSServiceError(
        403,
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided.",
        extra=extra,
    )


def _unknown_access_key(access_key_id: str) -> OSSServiceError:
    return OSSServiceError(
        403,
        "InvalidAccessKeyId",
        "The OSS Access Key Id you provided does not exist in our records.",
        extra={"OSSAccessKeyId": access_key_id},
    )


def verify(request: SignedRequest, credentials: Credentials, region: str) -> None:
    """Raise :class:`OSSServiceError` unless the request is signed by ``credentials``."""
    authorization = request.headers.get("authorization", "")
    if authorization.startswith("OSS "):
        access_key_id, _, signature = authorization[4:].strip().rpartition(":")
        _check_identity(request, credentials, access_key_id)
        _verify_v1(request, credentials, signature)
    elif authorization.startswith(_V4_ALGORITHM + " "):
        _verify_v4(request, credentials, region, authorization[len(_V4_ALGORITHM) + 1 :])
    elif authorization:
        raise OSSServiceError(
            400, "InvalidArgument", "Unsupported Authorization header; use OSS (v1) or OSS4-HMAC-SHA256 (v4)."
        )
    else:
        raise OSSServiceError(403, "AccessDenied", "Anonymous access is forbidden for this operation.")


def _check_identity(request: SignedRequest, credentials: Credentials, access_key_id: str) -> None:
    if not hmac.compare_digest(access_key_id.encode(), credentials.access_key_id.encode()):
        raise _unknown_access_key(access_key_id)
    token = request.headers.get("x-oss-security-token")
    expected = credentials.security_token
    if (token is None) != (expected is None) or (
        token is not None and expected is not None and not hmac.compare_digest(token.encode(), expected.encode())
    ):
        raise OSSServiceError(403, "InvalidSecurityToken", "The security token you provided is invalid.")


def _bucket_and_key(request: SignedRequest) -> tuple[str, str]:
    path = request.decoded_path.lstrip("/")
    bucket, _, key = path.partition("/")
    return bucket, key


def _verify_v1(request: SignedRequest, credentials: Credentials, signature: str) -> None:
    bucket, key = _bucket_and_key(request)
    resource = f"/{bucket}/{key}" if bucket else "/"
    subresources = sorted((k, v) for k, v in request.decoded_query_pairs() if k in V1_SUBRESOURCES)
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    oss_headers = sorted((name, request.header_bytes(name)) for name in request.headers if name.startswith("x-oss-"))
    date = request.header_bytes("x-oss-date") or request.header_bytes("date")
    to_sign = b"\n".join(
        [
            request.method.encode(),
            request.header_bytes("content-md5"),
            request.header_bytes("content-type"),
            date,
            b"".join(name.encode() + b":" + value + b"\n" for name, value in oss_headers) + resource.encode("utf-8"),
        ]
    )
    expected = base64.b64encode(
        hmac.new(credentials.access_key_secret.encode(), to_sign, hashlib.sha1).digest()
    ).decode()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise _signature_mismatch(to_sign.decode("utf-8", "replace"))


def _parse_v4_authorization(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in value.split(","):
        name, _, field_value = item.strip().partition("=")
        fields[name] = field_value
    return fields


def _rfc3986(text: str) -> str:
    return quote(text, safe="-_.~")


def _verify_v4(request: SignedRequest, credentials: Credentials, region: str, authorization: str) -> None:
    fields = _parse_v4_authorization(authorization)
    credential, signature = fields.get("Credential", ""), fields.get("Signature", "")
    scope_parts = credential.split("/")
    if len(scope_parts) != 5 or scope_parts[4] != "aliyun_v4_request" or not signature:
        raise OSSServiceError(400, "InvalidArgument", "Malformed OSS4-HMAC-SHA256 Authorization header.")
    access_key_id, date, scope_region, product, _ = scope_parts
    _check_identity(request, credentials, access_key_id)
    timestamp = request.headers.get("x-oss-date", "")
    if timestamp[:8] != date:
        raise _signature_mismatch()
    if scope_region != region:
        raise OSSServiceError(
            403, "SignatureDoesNotMatch", f"Invalid signing region in Authorization header; expected {region!r}."
        )

    additional = fields.get("AdditionalHeaders", "")
    additional_names = {name for name in additional.split(";") if name}
    signed_names = sorted(
        name
        for name in request.headers
        if name.startswith("x-oss-") or name in _V4_DEFAULT_SIGNED or name in additional_names
    )
    canonical_headers = b"".join(name.encode() + b":" + request.header_bytes(name) + b"\n" for name in signed_names)
    bucket, key = _bucket_and_key(request)
    uri = f"/{bucket}/{key}" if bucket else "/"
    canonical_uri = quote(uri, safe="/-_.~")
    payload_hash = request.headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD")

    query_forms = {
        "&".join(
            f"{k}={v}" if v else k
            for k, v in sorted((_rfc3986(k), _rfc3986(v)) for k, v in request.decoded_query_pairs())
        ),
        "&".join(f"{k}={v}" if v else k for k, v in sorted(request.query_pairs())),
    }
    signing_key = _v4_signing_key(credentials.access_key_secret, date, scope_region, product)
    last_string_to_sign = ""
    for canonical_query in query_forms:
        canonical_request = b"\n".join(
            [
                request.method.encode(),
                canonical_uri.encode(),
                canonical_query.encode(),
                canonical_headers,
                additional.encode(),
                payload_hash.encode(),
            ]
        )
        last_string_to_sign = "\n".join(
            [
                _V4_ALGORITHM,
                timestamp,
                f"{date}/{scope_region}/{product}/aliyun_v4_request",
                hashlib.sha256(canonical_request).hexdigest(),
            ]
        )
        expected = hmac.new(signing_key, last_string_to_sign.encode(), hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return
    raise _signature_mismatch(last_string_to_sign)


def _v4_signing_key(secret: str, date: str, region: str, product: str) -> bytes:
    key = hmac.new(("aliyun_v4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
