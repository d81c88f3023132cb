"""The checks real OSS applies to client-side-encrypted uploads (``x-oss-meta-client-side-encryption-*``).

OSS knows the CSE headers: it rejects a CSE upload missing the key, the IV (``start``) or the
algorithms, demands the same multipart CSE values on InitiateMultipartUpload and every UploadPart,
checks the part sizes against ``part-size``/``data-size`` on complete, and refuses a REPLACE copy
that would change any CSE header (it would make the object undecryptable).

Real OSS answers these with documented EC codes (``0005-00000401`` key missing, ``0005-00000407``
part-size missing, ``0005-00000408`` data-size not an integer, ``0005-00000413`` value differs from
Init); the XML ``Code`` it pairs with them is not documented, so this server uses ``InvalidArgument``
(400), which oss2 raises as ``oss2.exceptions.InvalidArgument``, and adds the EC.
"""

from __future__ import annotations

from collections.abc import Mapping

from .protocol import OSSServiceError, invalid_argument

CSE_PREFIX = "x-oss-meta-client-side-encryption-"
REQUIRED = ("key", "start", "cek-alg", "wrap-alg")
_EC_BY_MISSING = {"key": "0005-00000401"}


def cse_headers(metadata: Mapping[str, str]) -> dict[str, str]:
    """The ``client-side-encryption-*`` subset of lower-case user metadata."""
    return {name: value for name, value in metadata.items() if name.startswith(CSE_PREFIX)}


def check_upload(metadata: Mapping[str, str], *, multipart: bool) -> None:
    """PutObject / InitiateMultipartUpload: a CSE upload must carry the whole envelope."""
    cse = cse_headers(metadata)
    if not cse:
        return
    for suffix in REQUIRED:
        if CSE_PREFIX + suffix not in cse:
            raise invalid_argument(
                f"Client-side encryption upload is missing the {CSE_PREFIX}{suffix} header.",
                ec=_EC_BY_MISSING.get(suffix),
            )
    if multipart:
        if CSE_PREFIX + "part-size" not in cse:
            raise invalid_argument(
                f"Client-side encryption multipart upload needs {CSE_PREFIX}part-size.", ec="0005-00000407"
            )
        for suffix in ("part-size", "data-size"):
            value = cse.get(CSE_PREFIX + suffix)
            if value is not None and not value.isdigit():
                raise invalid_argument(f"{CSE_PREFIX}{suffix} must be an integer.", ec="0005-00000408")


def check_part(init_metadata: Mapping[str, str], part_headers: Mapping[str, str]) -> None:
    """UploadPart: exactly the CSE values of the Init request (none if the upload is not CSE)."""
    expected, sent = cse_headers(init_metadata), cse_headers(part_headers)
    if expected != sent:
        differing = sorted(name for name in expected.keys() | sent.keys() if expected.get(name) != sent.get(name))
        raise invalid_argument(
            "Client-side encryption headers of UploadPart differ from InitiateMultipartUpload: "
            f"{', '.join(differing)}.",
            ec="0005-00000413",
        )


def check_complete(init_metadata: Mapping[str, str], part_sizes: list[int]) -> None:
    """CompleteMultipartUpload: every part but the last exactly part-size, the sum equal to data-size."""
    cse = cse_headers(init_metadata)
    if not cse:
        return
    part_size = int(cse[CSE_PREFIX + "part-size"])
    if any(size != part_size for size in part_sizes[:-1]):
        raise invalid_argument(f"Client-side encryption: every part but the last must be exactly {part_size} bytes.")
    data_size = cse.get(CSE_PREFIX + "data-size")
    if data_size is not None and sum(part_sizes) != int(data_size):
        raise invalid_argument(
            f"Client-side encryption: the parts add up to {sum(part_sizes)} bytes, not data-size {data_size}."
        )


def check_replace_copy(source_metadata: Mapping[str, str], new_metadata: Mapping[str, str]) -> None:
    """CopyObject with REPLACE may change any metadata except the CSE envelope."""
    if cse_headers(source_metadata) != cse_headers(new_metadata):
        raise OSSServiceError(
            400,
            "InvalidArgument",
            "CopyObject with x-oss-metadata-directive REPLACE may not add, change or remove "
            "client-side-encryption headers.",
        )
