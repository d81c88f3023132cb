"""Request signature verification for the two styles the Alibaba Cloud SDKs use with KMS.

* **ACS3-HMAC-SHA256** - the default of the Tea SDK (``alibabacloud-kms20160120``): an
  ``Authorization: ACS3-HMAC-SHA256 Credential=AK,SignedHeaders=h1;h2,Signature=hex`` header over a
  canonical request (method, path, sorted RFC 3986 query, the signed headers, the payload SHA-256).
* **RPC v1, HMAC-SHA1** - the Tea SDK with ``signature_algorithm="v2"`` and the old
  ``aliyun-python-sdk-core`` (which oss2's ``AliKMSProvider`` uses): a ``Signature`` parameter that is
  ``base64(HMAC-SHA1(secret + "&", METHOD + "&%2F&" + encode(sorted encoded params)))``.

The functions here only compute; deciding who the caller is and answering is the handler's job. The
server recomputes the string to sign from what it received, so a bad secret and a mangled request
both show up as ``SignatureDoesNotMatch`` with the server's string to sign in the message (the old
core SDK splits that message on ``:`` and crashes if the string is absent).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from airflow_provider_osscse.testing.kms_server.errors import KMSServiceError

ACS3_ALGORITHM = "ACS3-HMAC-SHA256"
RPC_SIGNATURE_METHOD = "HMAC-SHA1"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as both SDK families use it (only ``A-Za-z0-9-_.~`` left bare)."""
    return quote(value, safe="~", encoding="utf-8")


@dataclass(frozen=True)
class Acs3Authorization:
    """The parsed ``Authorization`` header of an ACS3 request."""

    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_acs3_authorization(header: str) -> Acs3Authorization:
    """Split ``ACS3-HMAC-SHA256 Credential=..,SignedHeaders=..,Signature=..``; malformed -> 400."""
    algorithm, _, rest = header.strip().partition(" ")
    if algorithm != ACS3_ALGORITHM:
        raise KMSServiceError(
            400, "IncompleteSignature", f"Unsupported signature algorithm {algorithm!r}; use {ACS3_ALGORITHM}."
        )
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name] = value
    missing = [name for name in ("Credential", "SignedHeaders", "Signature") if not fields.get(name)]
    if missing:
        raise KMSServiceError(400, "IncompleteSignature", f"The Authorization header lacks {', '.join(missing)}.")
    return Acs3Authorization(
        access_key_id=fields["Credential"],
        signed_headers=tuple(fields["SignedHeaders"].split(";")),
        signature=fields["Signature"].lower(),
    )


def acs3_string_to_sign(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, Sequence[str]],
    signed_headers: Sequence[str],
    payload_sha256_hex: str,
) -> str:
    """The ACS3 string to sign; ``headers`` maps lower-case names to every value received."""
    canonical_query = "&".join(f"{key}={percent_encode(query[key])}" for key in sorted(query))
    canonical_headers = "".join(
        f"{name}:{','.join(sorted(v.strip() for v in headers.get(name, ())))}\n" for name in signed_headers
    )
    canonical_request = "\n".join(
        [method, path or "/", canonical_query, canonical_headers, ";".join(signed_headers), payload_sha256_hex]
    )
    return f"{ACS3_ALGORITHM}\n{hashlib.sha256(canonical_request.encode('utf-8')).hexdigest()}"


def acs3_signature(secret: str, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of the string to sign, keyed by the plain secret."""
    return hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def rpc_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """The RPC v1 string to sign over every parameter (query and form body) except ``Signature``."""
    canonical = "&".join(
        f"{percent_encode(key)}={percent_encode(params[key])}" for key in sorted(params) if key != "Signature"
    )
    return f"{method.upper()}&%2F&{percent_encode(canonical)}"


def rpc_signature(secret: str, string_to_sign: str) -> str:
    """Base64 HMAC-SHA1 of the string to sign, keyed by ``secret + "&"``."""
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signatures_match(expected: str, received: str) -> bool:
    """Constant-time comparison, so the server does not leak signature prefixes through timing."""
    return hmac.compare_digest(expected.encode("utf-8"), received.encode("utf-8"))


def signature_mismatch(string_to_sign: str) -> KMSServiceError:
    """The 400 ``SignatureDoesNotMatch`` error, shaped as the old core SDK parses it."""
    return KMSServiceError(
        400,
        "SignatureDoesNotMatch",
        f"Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}",
    )
