"""Every error this provider raises, in one flat module, all derived from :class:`OSSCSEError`.

One type per condition, whatever the layer that detects it: the envelope core (format, integrity,
ranges), the key providers (CMK references, key services), the transport (OSS connection, objects
that vanish or change) and the operators (unsafe local paths). Callers catch by condition, never by
the layer or module that happened to raise it, so the module is pure (no Airflow, no I/O, no import
from the rest of the package): every layer, the envelope core included, may import it.

Messages name what is wrong (the header, the CMK reference, the option) and what to do about it.
They never contain key material: wrapped or unwrapped keys, IVs, tokens or secrets.

The object an error concerns is an attribute, not a hand-built prefix: raise with
``object_name=key`` (or attach it later with :meth:`OSSCSEError.for_object` where only the caller
knows the name) and ``str(error)`` reads ``object 'key': <message>``; the bare message stays in
:attr:`OSSCSEError.message` for code that wants it without the prefix.

What to do is a :class:`Remedy` naming a *setting* (``cmk``, ``read_cmk``, ``new_cmk``,
``allow_plaintext``, ``integrity``, ``overwrite``), not words baked into the message: ``str(error)``
says it in the Python API's words (``pass allow_plaintext=True``, from :data:`PYTHON_WORDS`) and the
command line in its flags (``pass --allow-plaintext``, ``cli_errors.CLI_WORDS``), each interface
from one table, through :meth:`OSSCSEError.render`. A type may carry a default remedy (class
attribute ``remedy``); ``remedy=`` or :meth:`OSSCSEError.with_remedy` give one per error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

__all__ = [
    "AlreadyEncryptedError",
    "BucketNotFoundError",
    "CmkConnectionNotFoundError",
    "CmkError",
    "CmkReferenceError",
    "ConnectionNotFoundError",
    "EnvelopeFormatError",
    "InsecureKmsConnectionError",
    "IntegrityError",
    "InvalidKeyMaterialError",
    "InvalidRangeError",
    "KeyNotFoundError",
    "KeyPermissionError",
    "KeyServiceError",
    "KeyServiceUnavailableError",
    "KeyUnwrapError",
    "KmsKeyMismatchError",
    "MetadataTooLargeError",
    "NoMatchingKeyError",
    "NotEncryptedError",
    "OSSCSEError",
    "ObjectChangedError",
    "ObjectNotFoundError",
    "ObjectVerificationError",
    "OssAccessDeniedError",
    "OssConnectionError",
    "OssCredentialsError",
    "OssServiceError",
    "OssUnavailableError",
    "PartPlanError",
    "PublicKeyOnlyError",
    "RangeNotSatisfiableError",
    "TransferChecksumError",
    "TransientKeyServiceError",
    "UnauthenticatedObjectError",
    "UnsafeObjectKeyError",
    "UnsupportedAlgorithmError",
    "UsageError",
    "WeakRsaKeyError",
]

#: How each setting a :class:`Remedy` may name reads in one interface: ``(with a value, without)``,
#: ``{value}`` standing for the remedy's value; the second form when the remedy gives none.
Words = Mapping[str, tuple[str, str]]

#: The settings in the Python API's words (hook and operator arguments): ``cmk`` wraps new data keys,
#: ``read_cmk`` unwraps objects (the hook reads with ``cmk`` and every ``decrypt_cmks`` entry),
#: ``new_cmk`` is a rewrap's target. The command line's table is ``cli_errors.CLI_WORDS``: a new
#: setting goes into both.
PYTHON_WORDS: Words = {
    "cmk": ("cmk={value!r}", "cmk='<reference>'"),
    "read_cmk": ("cmk={value!r} or decrypt_cmks=[{value!r}]", "cmk= or decrypt_cmks="),
    "new_cmk": ("new_cmk={value!r}", "new_cmk='<reference>'"),
    "allow_plaintext": ("allow_plaintext=True", "allow_plaintext=True"),
    "integrity": ("integrity={value!r}", "integrity='if-present'"),
    "overwrite": ("overwrite=True", "overwrite=True"),
}


@dataclass(frozen=True, init=False)
class Remedy:
    """What the user changes to get past an error: one of ``settings`` (alternatives, keys of the
    words tables) set to ``value`` (``None``: the table's form without a value), then ``note``
    (why, or what it costs), e.g. ``Remedy("allow_plaintext", note="to read it as is")``: structured
    rather than written out, so that each interface says it in its own words.
    """

    settings: tuple[str, ...]
    value: str | None
    note: str

    def __init__(self, *settings: str, value: str | None = None, note: str = "") -> None:
        if not settings:
            raise ValueError("a Remedy names at least one setting")
        object.__setattr__(self, "settings", settings)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "note", note)

    def render(self, words: Words = PYTHON_WORDS) -> str:
        """``pass <setting> [or <setting>] [note]`` in ``words`` (an unknown setting in the Python API's)."""
        phrases: dict[str, None] = {}  # ordered, and alternatives one interface words alike said once
        for setting in self.settings:
            with_value, without = words.get(setting) or PYTHON_WORDS.get(setting) or (setting, setting)
            phrases[with_value.format(value=self.value) if self.value is not None else without] = None
        text = "pass " + " or ".join(phrases)
        return f"{text} {self.note}" if self.note else text


class OSSCSEError(Exception):
    """Root of the errors of airflow-provider-osscse.

    ``object_name`` (keyword-only, optional) is the OSS object key the error concerns; when set,
    ``str()`` prefixes the message with ``object '<name>': `` so every layer names the object the
    same way without formatting it by hand.

    ``remedy`` (keyword-only, optional; else the type's default) says what to do: ``str()`` appends it
    in the Python API's words, :meth:`render` in another interface's.
    """

    #: The type's default remedy; an instance given ``remedy=`` (or :meth:`with_remedy`) has its own.
    remedy: Remedy | None = None

    def __init__(self, message: str = "", *, object_name: str | None = None, remedy: Remedy | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.object_name = object_name
        if remedy is not None:
            self.remedy = remedy

    def for_object(self, object_name: str | None) -> Self:
        """Attach the object's name where the raiser did not know it; an existing name is kept.

        Returns the error itself, so a caller can ``raise exc.for_object(name)``.
        """
        if self.object_name is None:
            self.object_name = object_name
        return self

    def with_remedy(self, remedy: Remedy) -> Self:
        """Attach a remedy where only the caller knows it; an existing one (the raiser's or the type's) is kept."""
        if self.remedy is None:
            self.remedy = remedy
        return self

    def render(self, words: Words = PYTHON_WORDS) -> str:
        """The message, its remedy in ``words``, and the object's name as prefix: ``str()`` with
        :data:`PYTHON_WORDS`, the command line with its flags."""
        text = super().__str__()
        if self.remedy is not None:
            text = f"{text}; {self.remedy.render(words)}" if text else self.remedy.render(words)
        if self.object_name is None:
            return text
        return f"object {self.object_name!r}: {text}" if text else f"object {self.object_name!r}"

    def __str__(self) -> str:
        return self.render(PYTHON_WORDS)

    def __reduce__(self) -> tuple[type[Self], tuple[str], dict[str, object]]:
        # Exceptions pickle as cls(*args): keep the keyword attribute (tasks may ship errors across
        # processes, e.g. from a trigger or a worker pool) in the state dict.
        return type(self), (self.message,), dict(self.__dict__)


# -- the envelope format ------------------------------------------------------------------------


class EnvelopeFormatError(OSSCSEError, ValueError):
    """An object's encryption metadata is missing, malformed or not in the supported format."""


class UnsupportedAlgorithmError(EnvelopeFormatError):
    """A ``cek-alg`` or ``wrap-alg`` this package does not implement (never silently ignored)."""


class MetadataTooLargeError(EnvelopeFormatError):
    """The user metadata would exceed OSS's 8 KB limit; caught before anything is uploaded."""


class NotEncryptedError(OSSCSEError):
    """The object carries no client-side encryption metadata and plaintext pass-through is off."""


class AlreadyEncryptedError(OSSCSEError):
    """A source to encrypt is already client-side encrypted and skipping it is off (never encrypted twice)."""


# -- integrity -------------------------------------------------------------------------------------


class IntegrityError(OSSCSEError):
    """The content or its envelope does not match the integrity tag: the object was altered."""


class UnauthenticatedObjectError(IntegrityError):
    """The object (or a range of it) cannot be verified and the policy is ``require``.

    Raised for an object without an integrity tag (e.g. written by an official SDK) and for a
    ranged read that cannot verify the tag, in the envelope core and in the transport alike.
    """


# -- byte ranges and multipart plans -----------------------------------------------------------------


class InvalidRangeError(OSSCSEError, ValueError):
    """A byte range is malformed (``bytes=5-2``, ``bytes=x-``) or needs the object size that was not given."""


class RangeNotSatisfiableError(InvalidRangeError):
    """A byte range starts at or beyond the end of the object (HTTP 416 semantics)."""


class PartPlanError(OSSCSEError, ValueError):
    """A multipart plan is impossible (object too large for 9,999 data parts) or a part does not fit the plan."""


# -- CMKs and key services -----------------------------------------------------------------------------


class CmkError(OSSCSEError):
    """Base for CMK problems (not :class:`builtins.KeyError`)."""


class KeyUnwrapError(CmkError):
    """The CMK could not unwrap the data key: wrong key for the object, or corrupted wrapped values."""


class PublicKeyOnlyError(KeyUnwrapError):
    """The CMK holds only a public key (an RSA file of the public half, a Vault KV writer's secret):
    it wraps data keys for writers but cannot unwrap them; a reader needs the private key."""

    remedy = Remedy("read_cmk", note="naming the private key (a reader needs it; the public key only wraps)")


class KmsKeyMismatchError(KeyUnwrapError):
    """KMS answered for another key than the one this CMK is pinned to (relabelled object, or a KMS
    or credential serving several keys): nothing KMS returned is used. Key ids are not secret, so the
    message names the configured reference, the pinned key id and the key KMS actually used."""


class NoMatchingKeyError(CmkError):
    """None of the configured CMKs matches the object's wrap-alg and CMK identity."""


class CmkReferenceError(CmkError, ValueError):
    """A CMK reference string is malformed, has an unknown scheme, or names a missing connection."""


class CmkConnectionNotFoundError(CmkReferenceError):
    """The Airflow connection a CMK reference names (``vault-transit://CONN/...``) is not defined."""


class InvalidKeyMaterialError(CmkReferenceError):
    """The PEM given for an RSA CMK (constructor, key file or Vault KV secret) is not a usable RSA key:
    not PEM, encrypted, not RSA, or a public half that does not belong to the private half."""


class WeakRsaKeyError(CmkReferenceError):
    """An RSA CMK's modulus is under 2048 bits: refused for wrapping, and for unwrapping unless the
    reference or constructor opts in with ``allow_weak_key_for_unwrap``."""


class InsecureKmsConnectionError(CmkError, ValueError):
    """A KMS connection asks for plain ``http`` to a host that is not loopback."""


class KeyServiceError(CmkError):
    """A key service (Vault, KMS) failed."""


class TransientKeyServiceError(KeyServiceError):
    """A key-service call failed in a way worth retrying (connection refused, timeout, 5xx).

    Raised by a provider's classifier inside a retried call and consumed by the retry policy, which
    turns the last one into :class:`KeyServiceUnavailableError`; ``detail`` names the fault only.
    """

    def __init__(self, detail: str, *, object_name: str | None = None) -> None:
        super().__init__(detail, object_name=object_name)
        self.detail = detail


class KeyServiceUnavailableError(KeyServiceError):
    """The key service could not be reached after bounded retries."""


class KeyPermissionError(KeyServiceError):
    """The credentials lack the capability needed (e.g. a token that may only encrypt asked to decrypt)."""


class KeyNotFoundError(KeyServiceError):
    """The CMK, its version or the secret holding it does not exist, or is disabled."""


# -- OSS and the objects in it ----------------------------------------------------------------------


class OssConnectionError(OSSCSEError, ValueError):
    """The ``oss`` connection is incomplete or names an unsupported option."""


class ConnectionNotFoundError(OSSCSEError, LookupError):
    """An Airflow connection is not defined (or its definition cannot be read) where this provider
    looked it up without Airflow (the ``osscse`` command line's fast path); the message names the
    ``AIRFLOW_CONN_<ID>`` variable and the other places a connection can live."""


class TransferChecksumError(OSSCSEError):
    """Bytes were corrupted in transit: what OSS stored differs from what was sent (its ETag is not
    the MD5 of the bytes sent), or what was received differs from what OSS stored (its CRC-64).

    A corrupted transfer: transient, so the request is retried within the transport's retry policy.
    """


class ObjectNotFoundError(OSSCSEError):
    """The OSS object (or bucket) does not exist."""


class OssServiceError(OSSCSEError):
    """OSS refused a request or could not be reached: the transport's one-line translation of oss2's
    error (the ``__cause__``). ``status``, ``code``, ``request_id``: OSS's answer (``status`` -2 when
    nothing answered); ``bucket``, ``endpoint``: where the request went. Never OSS's message text."""

    def __init__(
        self,
        message: str = "",
        *,
        object_name: str | None = None,
        remedy: Remedy | None = None,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        bucket: str | None = None,
        endpoint: str | None = None,
    ) -> None:
        super().__init__(message, object_name=object_name, remedy=remedy)
        self.status = status
        self.code = code
        self.request_id = request_id
        self.bucket = bucket
        self.endpoint = endpoint


class BucketNotFoundError(ObjectNotFoundError, OssServiceError):
    """The bucket does not exist at the endpoint (``NoSuchBucket``): an :class:`ObjectNotFoundError`
    too, so code catching a missing object still catches it."""


class OssCredentialsError(OssServiceError):
    """OSS refused who the request claims to be: an unknown access key id, a signature made with
    another secret (or, for signature v4, another region), an invalid or expired STS token."""


class OssAccessDeniedError(OssServiceError):
    """OSS knows the credentials but refuses them this request (``AccessDenied``): a RAM or bucket
    policy lacks the action."""


class OssUnavailableError(OssServiceError):
    """OSS could not be reached (refused, unresolvable, timed out) or kept failing (5xx, throttled)
    after the transport's retries."""


class ObjectChangedError(OSSCSEError):
    """The object changed (its ETag) while it was being read or rewrapped; nothing was overwritten."""


class ObjectVerificationError(OSSCSEError):
    """An encrypted copy did not read back to the same bytes as its source; the source was kept."""


# -- local files and the command line --------------------------------------------------------------


class UnsafeObjectKeyError(OSSCSEError, ValueError):
    """An object key would write outside the download directory (``..``, absolute, backslash, NUL)."""


class UsageError(OSSCSEError, ValueError):
    """A command-line argument that argparse cannot check (e.g. a malformed ``oss://`` URI): exit 2."""
