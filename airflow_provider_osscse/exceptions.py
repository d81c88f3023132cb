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
"""

from __future__ import annotations

from typing import Self

__all__ = [
    "AlreadyEncryptedError",
    "CmkConnectionNotFoundError",
    "CmkError",
    "CmkReferenceError",
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
    "OssConnectionError",
    "PartPlanError",
    "RangeNotSatisfiableError",
    "TransferChecksumError",
    "TransientKeyServiceError",
    "UnauthenticatedObjectError",
    "UnsafeObjectKeyError",
    "UnsupportedAlgorithmError",
    "UsageError",
    "WeakRsaKeyError",
]


class OSSCSEError(Exception):
    """Root of the errors of airflow-provider-osscse.

    ``object_name`` (keyword-only, optional) is the OSS object key the error concerns; when set,
    ``str()`` prefixes the message with ``object '<name>': `` so every layer names the object the
    same way without formatting it by hand.
    """

    def __init__(self, message: str = "", *, object_name: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.object_name = object_name

    def for_object(self, object_name: str | None) -> Self:
        """Attach the object's name where the raiser did not know it; an existing name is kept.

        Returns the error itself, so a caller can ``raise exc.for_object(name)``.
        """
        if self.object_name is None:
            self.object_name = object_name
        return self

    def __str__(self) -> str:
        text = super().__str__()
        if self.object_name is None:
            return text
        return f"object {self.object_name!r}: {text}" if text else f"object {self.object_name!r}"

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
    """A multipart plan is impossible (object too large for 10,000 parts) or a part does not fit the plan."""


# -- CMKs and key services -----------------------------------------------------------------------------


class CmkError(OSSCSEError):
    """Base for CMK problems (not :class:`builtins.KeyError`)."""


class KeyUnwrapError(CmkError):
    """The CMK could not unwrap the data key: wrong key for the object, or corrupted wrapped values."""


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


class TransferChecksumError(OSSCSEError):
    """What OSS stored differs from what was sent (its ETag is not the MD5 of the bytes sent).

    A corrupted transfer: transient, so the request is retried within the transport's retry policy.
    """


class ObjectNotFoundError(OSSCSEError):
    """The OSS object (or bucket) does not exist."""


class ObjectChangedError(OSSCSEError):
    """The object changed (its ETag) while it was being read or rewrapped; nothing was overwritten."""


class ObjectVerificationError(OSSCSEError):
    """An encrypted copy did not read back to the same bytes as its source; the source was kept."""


# -- local files and the command line --------------------------------------------------------------


class UnsafeObjectKeyError(OSSCSEError, ValueError):
    """An object key would write outside the download directory (``..``, absolute, backslash, NUL)."""


class UsageError(OSSCSEError, ValueError):
    """A command-line argument that argparse cannot check (e.g. a malformed ``oss://`` URI): exit 2."""
