"""Every error this package raises derives from :class:`OSSCSEError`.

Messages name what is wrong (the header, the object, the CMK reference) and what to do about it.
They never contain key material: wrapped or unwrapped keys, IVs, tokens or secrets.
"""

from __future__ import annotations


class OSSCSEError(Exception):
    """Base class for errors of airflow-provider-osscse."""


class EnvelopeFormatError(OSSCSEError, ValueError):
    """An object's encryption metadata is missing, malformed or not in the supported format."""


class UnsupportedAlgorithmError(EnvelopeFormatError):
    """A ``cek-alg`` or ``wrap-alg`` this package does not implement (never silently ignored)."""


class NotEncryptedError(OSSCSEError):
    """The object carries no client-side encryption metadata and plaintext pass-through is off."""


class IntegrityError(OSSCSEError):
    """The content or its envelope does not match the integrity tag: the object was altered."""


class UnauthenticatedObjectError(IntegrityError):
    """The object has no integrity tag (e.g. written by an official SDK) and the policy is ``require``."""


class CmkError(OSSCSEError):
    """Base for CMK problems (not :class:`builtins.KeyError`)."""


class KeyUnwrapError(CmkError):
    """The CMK could not unwrap the data key: wrong key for the object, or corrupted wrapped values."""


class NoMatchingKeyError(CmkError):
    """None of the configured CMKs matches the object's wrap-alg and matdesc."""


class CmkReferenceError(CmkError, ValueError):
    """A CMK reference string is malformed, has an unknown scheme, or names a missing connection."""


class WeakRsaKeyError(CmkReferenceError):
    """An RSA CMK's modulus is under 2048 bits: refused for wrapping, and for unwrapping unless the
    reference or constructor opts in with ``allow_weak_key_for_unwrap``."""


class KeyServiceError(CmkError):
    """A key service (Vault, KMS) failed."""


class KeyServiceUnavailableError(KeyServiceError):
    """The key service could not be reached after bounded retries."""


class KeyPermissionError(KeyServiceError):
    """The credentials lack the capability needed (e.g. a token that may only encrypt asked to decrypt)."""


class KeyNotFoundError(KeyServiceError):
    """The CMK, its version or the secret holding it does not exist, or is disabled."""


class MetadataTooLargeError(EnvelopeFormatError):
    """The user metadata would exceed OSS's 8 KB limit; caught before anything is uploaded."""


class UnsafeObjectKeyError(OSSCSEError, ValueError):
    """An object key would write outside the download directory (``..``, absolute, backslash, NUL)."""


class ObjectVerificationError(OSSCSEError):
    """An encrypted copy did not read back to the same bytes as its source; the source was kept."""


class InvalidRangeError(OSSCSEError, ValueError):
    """A byte range is malformed (``bytes=5-2``, ``bytes=x-``) or needs the object size that was not given."""


class RangeNotSatisfiableError(InvalidRangeError):
    """A byte range starts at or beyond the end of the object (HTTP 416 semantics)."""


class PartPlanError(OSSCSEError, ValueError):
    """A multipart plan is impossible (object too large for 10,000 parts) or a part does not fit the plan."""


class ObjectNotFoundError(OSSCSEError):
    """The OSS object (or bucket) does not exist."""


class ObjectChangedError(OSSCSEError):
    """The object changed (its ETag) while it was being read or rewrapped; nothing was overwritten."""
