"""What transfers return: small, frozen, JSON-able summaries that are safe to push to XCom.

They name the object and the CMK *reference* (a non-secret string) and never carry key material,
wrapped keys or IVs: XCom is readable by anyone with UI access.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


def oss_uri(bucket: str, key: str) -> str:
    """The canonical ``oss://bucket/key`` name of an object."""
    return f"oss://{bucket}/{key}"


class _XComMixin:
    """``to_xcom()``: a plain dict copy so callers can push it or ``json.dumps`` it directly."""

    def to_xcom(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class UploadResult(_XComMixin):
    """An encrypted object written to OSS."""

    uri: str
    bucket: str
    key: str
    size: int
    etag: str
    cmk: str
    key_version: str | None
    wrap_alg: str
    integrity: str
    parts: int


@dataclass(frozen=True)
class DownloadResult(_XComMixin):
    """An object decrypted to a local file.

    ``integrity`` is ``verified`` (tag checked over the whole object), ``unauthenticated`` (the object
    has no tag, e.g. written by an official SDK, and the policy allowed that) or ``skipped``
    (policy ``off``, or a plaintext object read with ``allow_plaintext``).
    """

    uri: str
    bucket: str
    key: str
    path: str
    size: int
    integrity: str
    cmk: str | None
    key_version: str | None


@dataclass(frozen=True)
class ObjectInfo(_XComMixin):
    """What an object's headers say about its encryption, read without unwrapping anything."""

    uri: str
    bucket: str
    key: str
    encrypted: bool
    wrap_alg: str | None
    cek_alg: str | None
    matdesc: dict[str, str] = field(hash=False)
    cmk: str | None
    key_version: str | None
    plaintext_size: int | None
    ciphertext_size: int
    part_size: int | None
    integrity_tag: bool
    etag: str
    last_modified: str


@dataclass(frozen=True)
class RewrapResult(_XComMixin):
    """The outcome of re-wrapping one object's data key under a (new) CMK or CMK version.

    ``status``: ``rewrapped``, ``already-current`` (nothing to do), ``would-rewrap`` (dry run) or
    ``failed`` (``error`` says why; e.g. the object changed during the rewrap).
    """

    uri: str
    bucket: str
    key: str
    status: str
    from_cmk: str | None
    to_cmk: str
    from_version: str | None
    to_version: str | None
    error: str | None = None
