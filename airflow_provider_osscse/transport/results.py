"""What transfers return: small, frozen, JSON-able summaries that are safe to push to XCom.

They name the object and the CMK *reference* (a non-secret string) and never carry key material,
wrapped keys or IVs: XCom is readable by anyone with UI access.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Self, TypeVar

T = TypeVar("T")


def oss_uri(bucket: str, key: str) -> str:
    """The canonical ``oss://bucket/key`` name of an object."""
    return f"oss://{bucket}/{key}"


class _XComMixin:
    """``to_xcom()``: a plain dict copy so callers can push it or ``json.dumps`` it directly."""

    def to_xcom(self) -> dict[str, Any]:
        return {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
            if f.metadata.get("xcom", True)
        }


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


class PlaintextStream(Iterator[bytes]):
    """The plaintext chunks of one object (``hook.stream()``), with what is known about them.

    ``uri``, ``cmk`` (the reference of the CMK that unwraps the data key; ``None`` for a plaintext
    object read with ``allow_plaintext``) and ``key_version`` are known when the stream is returned.
    ``integrity`` is ``verified``, ``unauthenticated`` or ``skipped`` as for :class:`DownloadResult`;
    for a read that verifies it is ``None`` until the first ``next()`` has checked the tag over the
    whole object (no chunk is released before that), then ``verified``. Close it (or use it as a
    context manager) to release the ciphertext spool early when not reading to the end.
    """

    def __init__(
        self,
        chunks: Iterator[bytes],
        *,
        uri: str,
        cmk: str | None,
        key_version: str | None,
        integrity: Callable[[], str | None],
    ) -> None:
        self._chunks = chunks
        self._integrity = integrity
        self.uri = uri
        self.cmk = cmk
        self.key_version = key_version

    @property
    def integrity(self) -> str | None:
        """``verified`` | ``unauthenticated`` | ``skipped``; ``None`` while verification is pending."""
        return self._integrity()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> bytes:
        return next(self._chunks)

    def close(self) -> None:
        """Stop reading: cancels pending ranges and deletes the ciphertext spool."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"PlaintextStream(uri={self.uri!r}, integrity={self.integrity!r}, cmk={self.cmk!r})"


class PlaintextBytes(bytes):
    """The plaintext of an object (``hook.read()``): a real ``bytes``, plus ``uri``, ``integrity``
    (``verified`` | ``unauthenticated`` | ``skipped``), ``cmk`` and ``key_version`` as attributes.

    Equality, hashing, slicing and every bytes operation are those of ``bytes`` (slices and other
    derived values are plain ``bytes`` without the attributes).
    """

    uri: str | None
    integrity: str | None
    cmk: str | None
    key_version: str | None

    def __new__(
        cls,
        data: bytes = b"",
        *,
        uri: str | None = None,
        integrity: str | None = None,
        cmk: str | None = None,
        key_version: str | None = None,
    ) -> Self:
        obj = super().__new__(cls, data)
        obj.uri, obj.integrity, obj.cmk, obj.key_version = uri, integrity, cmk, key_version
        return obj


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
    #: Whether the tag binds the object's bucket and key (v2 default): a copy made without this
    #: package's ``copy`` does not verify; ``False`` for unbound, v1 or missing tags.
    integrity_bound: bool = False
    #: The object's own ``x-oss-meta-*`` entries, names without that prefix; the encryption headers
    #: (``client-side-encryption-*``, ``osscse-*``) are left out: they are described above.
    user_metadata: dict[str, str] = field(default_factory=dict, hash=False)
    #: The stored Content-Type (``None`` when OSS returned none).
    content_type: str | None = None


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
    #: The error itself (``failed`` results of a bulk rewrap), for callers that tell kinds apart (the
    #: command line prints ``skipped`` for an object under a CMK it was not given); not in XCom.
    exception: BaseException | None = field(default=None, compare=False, repr=False, metadata={"xcom": False})


@dataclass(frozen=True)
class ObjectOutcome(Generic[T]):
    """One object's outcome in a bulk operation: its ``result``, or the ``error`` it failed with.

    One object's failure never stops the others, so a bulk operation yields one of these per object.
    ``to_xcom()`` is JSON-able: the result's own summary, or the error's class and message (package
    errors never carry key material).
    """

    key: str
    result: T | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_xcom(self) -> dict[str, Any]:
        if self.error is not None:
            return {"key": self.key, "ok": False, "error_type": type(self.error).__name__, "error": str(self.error)}
        summary = self.result.to_xcom() if isinstance(self.result, _XComMixin) else {}
        return {"key": self.key, "ok": True, **summary}
