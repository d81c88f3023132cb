"""The seam between the envelope core and CMK custody.

The core never learns how a customer master key (CMK) is reached. It hands a :class:`DataKey`
(the per-object data key and IV) to a :class:`Cmk` and gets back a :class:`WrappedDataKey`
(the values that travel in object metadata), and the reverse. Vault Transit, Vault KV, Alibaba KMS
and local RSA keys are all implementations of this one small interface (``airflow_provider_osscse.keys``).

Secrets: a ``DataKey`` holds raw key bytes. Its ``repr`` hides them and it refuses to be pickled,
so it cannot leak into logs, XCom or task state by accident.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NoReturn, TypeVar

from airflow_provider_osscse.exceptions import OSSCSEError

_T = TypeVar("_T")

#: Length of the AES-256 data key (CEK) in bytes.
DATA_KEY_SIZE = 32
#: Length of the initial counter block (IV) in bytes.
IV_SIZE = 16


def new_iv() -> bytes:
    """A random 16-byte initial counter block with bytes 8..11 zero, as every OSS SDK writes it.

    Java's counter arithmetic only reads bytes 12..15; zeroing 8..11 keeps ranged and multipart
    reads identical across the Python, Go, C++ and Java SDKs.
    """
    raw = bytearray(os.urandom(IV_SIZE))
    raw[8:12] = b"\x00\x00\x00\x00"
    return bytes(raw)


@dataclass(frozen=True, eq=False)
class DataKey:
    """The secret per-object material: the AES-256 data key and the initial counter block.

    Lives only in memory for one object's operation. Never logged, never pickled.
    """

    key: bytes
    iv: bytes

    def __post_init__(self) -> None:
        if len(self.key) != DATA_KEY_SIZE:
            raise ValueError(f"data key must be {DATA_KEY_SIZE} bytes, got {len(self.key)}")
        if len(self.iv) != IV_SIZE:
            raise ValueError(f"IV must be {IV_SIZE} bytes, got {len(self.iv)}")

    @classmethod
    def generate(cls) -> DataKey:
        """A fresh random data key and IV (IV bytes 8..11 zero)."""
        return cls(key=os.urandom(DATA_KEY_SIZE), iv=new_iv())

    def __repr__(self) -> str:
        return "DataKey(<secret>)"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:  # refuse pickling: key material must not travel
        raise TypeError("DataKey holds key material and cannot be pickled")

    def __eq__(self, other: object) -> bool:
        import hmac

        if not isinstance(other, DataKey):
            return NotImplemented
        return hmac.compare_digest(self.key + self.iv, other.key + other.iv)

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class WrappedDataKey:
    """What travels in the object's metadata: the wrapped data key and IV and how they were wrapped.

    ``wrapped_key`` and ``wrapped_iv`` are the raw bytes behind the base64 header values
    ``client-side-encryption-key`` / ``-start`` (for KMS that is the decoded ``CiphertextBlob``; for
    Vault Transit the UTF-8 ``vault:vN:...`` string). ``matdesc`` is the non-secret description of
    the CMK that wrapped them.
    """

    wrap_alg: str
    wrapped_key: bytes
    wrapped_iv: bytes
    #: The material description the *user* configured (official ``client-side-encryption-matdesc``);
    #: empty by default, as the official SDKs write it. Never carries this project's identity.
    matdesc: Mapping[str, str] = field(default_factory=dict)
    #: This project's name of the CMK (``x-oss-meta-osscse-cmk``): ``vault-transit:<mount>/<key>``,
    #: ``kms:<key id>``, ``rsa-sha256:<fingerprint>``. ``None`` for objects of the official SDKs.
    cmk_identity: str | None = None
    #: The CMK version that wrapped the data key (``x-oss-meta-osscse-cmk-version``), where the
    #: key service names one (KMS ``KeyVersionId``, Vault KV secret version, Transit ``vN``).
    cmk_version: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "matdesc", MappingProxyType(dict(sorted(self.matdesc.items()))))


@dataclass(frozen=True)
class DataKeyRequest:
    """What a CMK may need to know to make one object's data key; every field is optional.

    Travels unchanged through every CMK (and every keyring or cache around one): an implementation
    uses the fields it needs and ignores the others, so callers never ask which CMK they hold. Holds
    nothing secret. ``plaintext_size``: the object's plaintext bytes, when known; the opt-in write
    cache (``keys.data_key_cache``) needs it for its byte bound and serves no object without it.
    """

    plaintext_size: int | None = None


class Cmk(ABC):
    """A CMK that wraps and unwraps per-object data keys.

    Implementations: ``keys.local_rsa.LocalRsaKey``, ``keys.vault_transit.VaultTransitKey``,
    ``keys.vault_kv.VaultKvRsaKey``, ``keys.alicloud_kms.AlicloudKmsKey``; wrappers around one
    (``keys.keyring.Keyring``, ``keys.caching_cmk.CachingCmk``) delegate every method.
    Callers never ask which one they hold: what a CMK may need travels in a :class:`DataKeyRequest`,
    and a native rewrap is found through :meth:`cmk_for` and :attr:`rewrap_domain`.

    One wrap or unwrap is one key-service round trip (or two, where the service cannot batch) per
    object, never per part: callers keep the unwrapped :class:`DataKey` for the whole object.
    """

    #: ``client-side-encryption-wrap-alg`` value this CMK writes, e.g. ``RSA/NONE/PKCS1Padding``.
    wrap_alg: str

    #: A non-secret, human-readable name of the CMK (its reference string), for messages and XCom.
    @property
    @abstractmethod
    def reference(self) -> str: ...

    @property
    @abstractmethod
    def matdesc(self) -> Mapping[str, str]:
        """The user-configured material description written into ``client-side-encryption-matdesc``
        (empty by default, so official readers built without one read the objects)."""

    @property
    def identity(self) -> str | None:
        """This CMK's deployment-independent name, written as ``x-oss-meta-osscse-cmk``.

        ``None`` for CMKs that cannot name themselves. Objects name the CMK that wrapped them by
        this value, so readers choose the right CMK without trying keys.
        """
        return None

    @abstractmethod
    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        """Wrap the data key and the IV separately (the official format) under this CMK."""

    @abstractmethod
    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        """Recover the data key and IV. Raises ``KeyUnwrapError`` (never returns garbage) on failure."""

    def new_data_key(self, request: DataKeyRequest | None = None) -> tuple[DataKey, WrappedDataKey]:
        """A fresh data key and IV, already wrapped. Key services that generate data keys override this.

        ``request`` says what is known about the object (:class:`DataKeyRequest`); wrappers pass it on.
        """
        data_key = DataKey.generate()
        return data_key, self.wrap(data_key)

    # -- many objects at once ---------------------------------------------------------------
    # One object's key-service round trip costs more than its encryption when objects are small, so
    # bulk operations hand a CMK a group of objects at once. Services that batch (Vault Transit's
    # ``batch_input``) override these; the defaults loop over the one-object methods, so every CMK
    # supports them. Results keep the input's order, and one object's failure is that object's
    # result (an exception *value*), never the others': a fleet operation reports per object.

    def new_data_keys(self, requests: Sequence[DataKeyRequest]) -> list[tuple[DataKey, WrappedDataKey]]:
        """A fresh data key per request (one per object, saying its size), each already wrapped, in as
        few service calls as the service allows.

        All or nothing: the objects of one group share the CMK, so a failure is raised for the group.
        """
        return [self.new_data_key(request) for request in requests]

    def unwrap_many(self, wrapped: Sequence[WrappedDataKey]) -> list[DataKey | OSSCSEError]:
        """Unwrap each of ``wrapped``; an item that fails gives its error in its place."""
        return [_outcome(self.unwrap, item) for item in wrapped]

    def rewrap_many(self, wrapped: Sequence[WrappedDataKey]) -> list[WrappedDataKey | OSSCSEError]:
        """:meth:`rewrap` for each item (natively, batched where the service can); errors per item."""
        return self.rewrap_many_from(wrapped, self)

    def rewrap_many_from(self, wrapped: Sequence[WrappedDataKey], source: Cmk) -> list[WrappedDataKey | OSSCSEError]:
        """:meth:`rewrap_from` for each item; override to batch (keep the per-item error contract)."""
        return [_outcome(lambda item: self.rewrap_from(item, source), item) for item in wrapped]

    def latest_version(self) -> str | None:
        """The version a wrap under this CMK writes *now* (one key-service call each time: Transit
        key read, KMS ``DescribeKey``), so a rotation run reads it once and then tells current from
        stale objects by their headers alone (:meth:`is_current`).

        ``None``: this CMK has no versions (a local RSA key). A versioned CMK that does not override
        this (Vault KV) answers ``None`` too: its objects record a version, so none is judged current
        from headers and the rewrap itself decides. A CMK that cannot tell raises ``KeyServiceError``.
        """
        return None

    def is_current(self, wrapped: WrappedDataKey, latest_version: str | None) -> bool:
        """Whether ``wrapped`` is already under this CMK at ``latest_version`` (from
        :meth:`latest_version`, read once per run): nothing to rewrap, and no key-service call made.

        Decided from the headers: this CMK (not another keyring member) wrapped it, and its version is
        ``latest_version`` (for a CMK without versions: it records none either).
        """
        if not self.matches(wrapped) or self.cmk_for(wrapped).reference != self.reference:
            return False
        return self.key_version(wrapped) == latest_version

    def wrap_ivs(
        self, key_bytes: bytes, ivs: Sequence[bytes], *, reuse: WrappedDataKey | None = None
    ) -> list[WrappedDataKey]:
        """Optional: wrap several IVs that will share one data key, in as few service calls as possible.

        Returns one :class:`WrappedDataKey` per IV, in order, each the complete header values of
        one object (the same wrapped data key, that object's wrapped IV); a service that cannot batch
        may wrap only a leading part of ``ivs`` (at least one) and return that many. With ``reuse`` (an earlier
        result for the same ``key_bytes``) its wrapped data key and matdesc are kept and only the IVs
        are wrapped; without it ``key_bytes`` is wrapped too, in the same batch where the service can.
        Returns ``[]`` when the IVs cannot be wrapped consistently with ``reuse`` (e.g. the CMK was
        rotated in between): the caller then starts a new data key.

        Used only by the opt-in write cache (``keys.data_key_cache.DataKeyCache``). The default says
        "not supported" (``NotImplementedError``); the cache then wraps per object with :meth:`wrap`.
        """
        raise NotImplementedError(f"{type(self).__name__} does not batch IV wrapping")

    def rewrap(self, wrapped: WrappedDataKey) -> WrappedDataKey:
        """Re-wrap under this CMK's newest version (a keyring: from the member that wrapped it to
        the primary). Override :meth:`rewrap_from`, not this."""
        return self.rewrap_from(wrapped, self)

    def rewrap_from(self, wrapped: WrappedDataKey, source: Cmk) -> WrappedDataKey:
        """Re-wrap ``wrapped`` (made by ``source``) under this CMK's newest version.

        The default unwraps with ``source`` and wraps here: the data key is in memory once.
        Services that can move it without releasing it override this (Transit ``rewrap`` when the
        source is the same key, KMS ``ReEncrypt`` within one KMS), recognising the source by
        ``source.cmk_for(wrapped)`` and :attr:`rewrap_domain`; keyrings and caches delegate it.
        """
        return self.wrap(source.unwrap(wrapped))

    def cmk_for(self, wrapped: WrappedDataKey) -> Cmk:
        """The CMK itself (no keyring or cache around it) that unwraps ``wrapped``: ``self`` here;
        wrappers answer their member's, so a rewrap target sees what the source really is."""
        return self

    @property
    def rewrap_domain(self) -> object | None:
        """Where this CMK can move wrapped data keys natively: CMKs with equal, non-``None`` domains
        rewrap between each other without releasing the data key (one Transit key; one KMS).
        ``None`` (the default): only by unwrap and wrap."""
        return None

    def matches(self, wrapped: WrappedDataKey) -> bool:
        """Whether this CMK is the one that wrapped ``wrapped``.

        Same wrap-alg, and: the same identity when the object names one (``osscse-cmk``); otherwise
        (objects of the official SDKs) the object's matdesc holds every entry of this CMK's matdesc.
        """
        if wrapped.wrap_alg != self.wrap_alg:
            return False
        if wrapped.cmk_identity is not None and self.identity is not None:
            return wrapped.cmk_identity == self.identity
        own = dict(self.matdesc)
        return all(wrapped.matdesc.get(k) == v for k, v in own.items()) if own else True

    def key_version(self, wrapped: WrappedDataKey) -> str | None:
        """The CMK version that wrapped ``wrapped``, when the service records one."""
        return wrapped.cmk_version

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.reference!r})"


def _outcome(operation: Callable[[WrappedDataKey], _T], item: WrappedDataKey) -> _T | OSSCSEError:
    """``operation(item)``, or the package error it raised (the item's own result in a batch)."""
    try:
        return operation(item)
    except OSSCSEError as exc:
        return exc
