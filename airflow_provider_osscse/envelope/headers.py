"""The envelope as OSS user metadata: header names, the :class:`Envelope` dataclass, parse and render.

Writing produces exactly the official headers (base64 with padding for binary values, decimal
numbers, compact sorted matdesc) plus this project's ``x-oss-meta-osscse-integrity`` beside them.
Reading accepts what every official SDK writes and refuses everything else with an
:class:`EnvelopeFormatError` that names the header and the object — never a silent fallback.
Servers and SDKs hand metadata back in any case (``X-Oss-Meta-…``) and the v2 SDK without the
``x-oss-meta-`` prefix: :func:`normalise_metadata` folds all of that to one form first.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass

from airflow_provider_osscse.envelope.aes_ctr import CEK_ALG_AES_CTR
from airflow_provider_osscse.envelope.integrity import INTEGRITY_HEADER, IntegrityTag
from airflow_provider_osscse.envelope.keywrap import WrappedDataKey
from airflow_provider_osscse.envelope.matdesc import (
    LEGACY_MATDESC_CMK,
    LEGACY_MATDESC_CMK_VERSION,
    MATDESC_HEADER,
    dump_matdesc,
    parse_matdesc,
)
from airflow_provider_osscse.envelope.multipart import MAX_PART_SIZE
from airflow_provider_osscse.exceptions import (
    EnvelopeFormatError,
    MetadataTooLargeError,
    NotEncryptedError,
    UnsupportedAlgorithmError,
)

USER_META_PREFIX = "x-oss-meta-"
CSE_PREFIX = USER_META_PREFIX + "client-side-encryption-"

KEY_HEADER = CSE_PREFIX + "key"
START_HEADER = CSE_PREFIX + "start"
CEK_ALG_HEADER = CSE_PREFIX + "cek-alg"
WRAP_ALG_HEADER = CSE_PREFIX + "wrap-alg"
UNENCRYPTED_CONTENT_LENGTH_HEADER = CSE_PREFIX + "unencrypted-content-length"
UNENCRYPTED_CONTENT_MD5_HEADER = CSE_PREFIX + "unencrypted-content-md5"
DATA_SIZE_HEADER = CSE_PREFIX + "data-size"
PART_SIZE_HEADER = CSE_PREFIX + "part-size"

#: This project's own headers (official readers ignore them): everything under ``osscse-``.
OSSCSE_PREFIX = USER_META_PREFIX + "osscse-"
#: The identity of the CMK that wrapped the data key (``vault-transit:<mount>/<key>``, ...).
CMK_HEADER = OSSCSE_PREFIX + "cmk"
#: The CMK version that wrapped it, where the key service names one.
CMK_VERSION_HEADER = OSSCSE_PREFIX + "cmk-version"

# oss2 2.5–2.10 (read only, behind ``allow_legacy``).
LEGACY_KEY_HEADER = USER_META_PREFIX + "oss-crypto-key"
LEGACY_START_HEADER = USER_META_PREFIX + "oss-crypto-start"
LEGACY_CEK_ALG_HEADER = USER_META_PREFIX + "oss-cek-alg"
LEGACY_WRAP_ALG_HEADER = USER_META_PREFIX + "oss-wrap-alg"
LEGACY_MATDESC_HEADER = USER_META_PREFIX + "oss-crypto-matdesc"

WRAP_ALG_RSA_PKCS1 = "RSA/NONE/PKCS1Padding"
WRAP_ALG_KMS = "KMS/ALICLOUD"
WRAP_ALG_VAULT_TRANSIT = "VAULT/TRANSIT"
#: oss2 ``LocalRsaProvider`` and legacy objects: read only, behind ``allow_legacy``; never written.
WRAP_ALG_RSA_OAEP = "RSA/NONE/OAEPWithSHA-1AndMGF1Padding"
_LEGACY_MISLABELLED_CEK_ALG = "AES/GCM/NoPadding"

#: OSS's limit on the total size of user metadata (names with prefix + values, UTF-8).
USER_METADATA_LIMIT = 8 * 1024
#: OSS's largest object (48.8 TiB); larger decimal lengths in headers are refused before use.
MAX_OBJECT_SIZE = 48_800 * 1024**3

_RESERVED_PREFIXES = (
    CSE_PREFIX,
    OSSCSE_PREFIX,
    USER_META_PREFIX + "oss-crypto-",
    LEGACY_CEK_ALG_HEADER,
    LEGACY_WRAP_ALG_HEADER,
)
_BARE_PREFIXES = ("client-side-encryption-", "osscse-", "oss-crypto-", "oss-cek-alg", "oss-wrap-alg")
_DECIMAL = re.compile(r"^[0-9]{1,20}$")


def normalise_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Lower-case header names; give bare v2-SDK names (``client-side-encryption-key``) their prefix."""
    out: dict[str, str] = {}
    for name, value in metadata.items():
        lowered = name.strip().lower()
        if lowered.startswith(_BARE_PREFIXES):
            lowered = USER_META_PREFIX + lowered
        out[lowered] = value
    return out


def is_encrypted(metadata: Mapping[str, str]) -> bool:
    """Whether the metadata carries client-side encryption headers (current or legacy)."""
    names = normalise_metadata(metadata)
    return KEY_HEADER in names or LEGACY_KEY_HEADER in names


def user_metadata_size(metadata: Mapping[str, str]) -> int:
    """Bytes of user metadata as OSS counts them (conservatively: full names plus values)."""
    return sum(
        len(name.encode()) + len(str(value).encode())
        for name, value in normalise_metadata(metadata).items()
        if name.startswith(USER_META_PREFIX)
    )


def check_metadata_size(metadata: Mapping[str, str], *, object_name: str) -> None:
    """Raise :class:`MetadataTooLargeError` before any upload if OSS would refuse the metadata."""
    size = user_metadata_size(metadata)
    if size > USER_METADATA_LIMIT:
        raise MetadataTooLargeError(
            f"user metadata is {size} bytes, over OSS's {USER_METADATA_LIMIT}-byte "
            f"limit (encryption headers included); shorten the matdesc or the user metadata",
            object_name=object_name,
        )


def user_metadata_headers(user_metadata: Mapping[str, str] | None, *, object_name: str) -> dict[str, str]:
    """The caller's metadata as ``x-oss-meta-*`` headers; refuses names in the encryption namespaces.

    Names may be bare (``owner``) or prefixed (``x-oss-meta-owner``). Writers call this (and
    :func:`check_metadata_size` on the result) before contacting a key service, so bad metadata fails
    fast, and again through :meth:`Envelope.to_metadata` once the encryption headers are known.
    """
    meta: dict[str, str] = {}
    for name, value in (user_metadata or {}).items():
        lowered = name.strip().lower()
        if not lowered.startswith(USER_META_PREFIX):
            lowered = USER_META_PREFIX + lowered
        if lowered.startswith(_RESERVED_PREFIXES):
            raise EnvelopeFormatError(
                f"user metadata {name!r} collides with the encryption headers",
                object_name=object_name,
            )
        meta[lowered] = value
    return meta


@dataclass(frozen=True)
class Envelope:
    """Everything the metadata says about an encrypted object. Holds no secret (keys are wrapped)."""

    wrapped: WrappedDataKey
    cek_alg: str = CEK_ALG_AES_CTR
    unencrypted_content_length: int | None = None
    unencrypted_content_md5: str | None = None
    data_size: int | None = None
    part_size: int | None = None
    integrity: IntegrityTag | None = None
    #: Parsed from oss2 2.5–2.10's ``oss-crypto-*`` headers (start is a decimal counter, not an IV).
    legacy: bool = False

    def check_object_size(self, object_size: int, *, object_name: str) -> int:
        """The plaintext size, after checking every length header against the stored ``object_size``.

        CTR adds no bytes, so each declared length must equal the ciphertext length; the multipart
        part size must be a multiple of 16 within OSS's limits; the tag's segment count is bounded.
        All of this is checked before any header value is used to size a buffer or a loop.
        """
        for header, value in (
            (UNENCRYPTED_CONTENT_LENGTH_HEADER, self.unencrypted_content_length),
            (DATA_SIZE_HEADER, self.data_size),
        ):
            if value is not None and value != object_size:
                raise EnvelopeFormatError(
                    f"header {header} says {value} bytes but the object holds "
                    f"{object_size}; the object was truncated, extended or its headers altered",
                    object_name=object_name,
                )
        if self.part_size is not None and (self.part_size % 16 or not 16 <= self.part_size <= MAX_PART_SIZE):
            raise EnvelopeFormatError(
                f"header {PART_SIZE_HEADER} is {self.part_size}; expected a multiple of 16 up to {MAX_PART_SIZE}",
                object_name=object_name,
            )
        if self.integrity is not None:
            try:
                self.integrity.segment_count(object_size)
            except EnvelopeFormatError as exc:
                raise exc.for_object(object_name) from None
        return object_size

    def to_metadata(self, *, user_metadata: Mapping[str, str] | None = None, object_name: str = "?") -> dict[str, str]:
        """The headers to send (names lower-case, values ASCII), user metadata merged and size-checked.

        ``user_metadata`` names may be bare (``owner``) or prefixed (``x-oss-meta-owner``); they must not
        collide with the encryption headers.
        """
        if self.legacy:
            raise EnvelopeFormatError("legacy oss-crypto-* envelopes are read only, never written")
        meta = user_metadata_headers(user_metadata, object_name=object_name)
        meta[KEY_HEADER] = base64.b64encode(self.wrapped.wrapped_key).decode("ascii")
        meta[START_HEADER] = base64.b64encode(self.wrapped.wrapped_iv).decode("ascii")
        meta[CEK_ALG_HEADER] = self.cek_alg
        meta[WRAP_ALG_HEADER] = self.wrapped.wrap_alg
        if self.wrapped.matdesc:
            meta[MATDESC_HEADER] = dump_matdesc(self.wrapped.matdesc)
        if self.wrapped.cmk_identity is not None:
            meta[CMK_HEADER] = self.wrapped.cmk_identity
        if self.wrapped.cmk_version is not None:
            meta[CMK_VERSION_HEADER] = self.wrapped.cmk_version
        if self.unencrypted_content_length is not None:
            meta[UNENCRYPTED_CONTENT_LENGTH_HEADER] = str(self.unencrypted_content_length)
        if self.unencrypted_content_md5 is not None:
            meta[UNENCRYPTED_CONTENT_MD5_HEADER] = self.unencrypted_content_md5
        if self.data_size is not None or self.part_size is not None:
            if self.data_size is None or self.part_size is None:
                raise EnvelopeFormatError("multipart envelopes need both data-size and part-size")
            meta[DATA_SIZE_HEADER] = str(self.data_size)
            meta[PART_SIZE_HEADER] = str(self.part_size)
        if self.integrity is not None:
            meta[INTEGRITY_HEADER] = self.integrity.to_header_value()
        check_metadata_size(meta, object_name=object_name)
        return meta


def _b64(value: str, header: str, object_name: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeFormatError(f"header {header} is not valid base64", object_name=object_name) from None
    if not raw:
        raise EnvelopeFormatError(f"header {header} is empty", object_name=object_name)
    return raw


def _decimal(meta: Mapping[str, str], header: str, object_name: str) -> int | None:
    value = meta.get(header)
    if value is None:
        return None
    if not _DECIMAL.match(value.strip()):
        raise EnvelopeFormatError(f"header {header} is not a decimal number", object_name=object_name)
    number = int(value)
    if number > MAX_OBJECT_SIZE:
        raise EnvelopeFormatError(
            f"header {header} is {number}, beyond OSS's largest object size",
            object_name=object_name,
        )
    return number


def _identity(meta: Mapping[str, str], matdesc: dict[str, str], object_name: str) -> tuple[str | None, str | None]:
    """The CMK identity and version: this project's headers, else (objects written by earlier
    versions of this package) the ``osscse-cmk`` / ``osscse-cmk-version`` matdesc entries, which are
    then taken out of the matdesc so that only the user's own entries remain there."""
    identity, version = meta.get(CMK_HEADER), meta.get(CMK_VERSION_HEADER)
    legacy_identity = matdesc.pop(LEGACY_MATDESC_CMK, None)
    legacy_version = matdesc.pop(LEGACY_MATDESC_CMK_VERSION, None)
    if identity is None:
        identity, version = legacy_identity, version if version is not None else legacy_version
    for header, value in ((CMK_HEADER, identity), (CMK_VERSION_HEADER, version)):
        if value is not None and (not value.strip() or len(value) > 512 or not value.isprintable()):
            raise EnvelopeFormatError(f"header {header} is empty, too long or not printable", object_name=object_name)
    return (identity.strip() if identity else None), (version.strip() if version else None)


def _required(meta: Mapping[str, str], header: str, object_name: str) -> str:
    value = meta.get(header)
    if value is None or not value.strip():
        raise EnvelopeFormatError(
            f"header {header} is missing; the object cannot be decrypted",
            object_name=object_name,
        )
    return value.strip()


def parse_envelope(metadata: Mapping[str, str], *, object_name: str, allow_legacy: bool = False) -> Envelope:
    """Read the envelope from object metadata (any header case, with or without ``x-oss-meta-``).

    Raises :class:`NotEncryptedError` when there are no encryption headers, :class:`EnvelopeFormatError`
    for missing/malformed values and :class:`UnsupportedAlgorithmError` for an unknown ``cek-alg``
    (or the OAEP wrap-alg / legacy headers without ``allow_legacy``).
    """
    meta = normalise_metadata(metadata)
    integrity_value = meta.get(INTEGRITY_HEADER)
    integrity = IntegrityTag.parse(integrity_value, object_name=object_name) if integrity_value is not None else None
    if KEY_HEADER not in meta and START_HEADER not in meta:
        if LEGACY_KEY_HEADER in meta:
            return _parse_legacy(meta, object_name=object_name, allow_legacy=allow_legacy)
        raise NotEncryptedError("it has no client-side encryption metadata", object_name=object_name)
    wrapped_key = _b64(_required(meta, KEY_HEADER, object_name), KEY_HEADER, object_name)
    wrapped_iv = _b64(_required(meta, START_HEADER, object_name), START_HEADER, object_name)
    cek_alg = _required(meta, CEK_ALG_HEADER, object_name)
    if cek_alg != CEK_ALG_AES_CTR:
        raise UnsupportedAlgorithmError(
            f"header {CEK_ALG_HEADER} is {cek_alg!r}; only {CEK_ALG_AES_CTR} is supported",
            object_name=object_name,
        )
    wrap_alg = _required(meta, WRAP_ALG_HEADER, object_name)
    if wrap_alg == WRAP_ALG_RSA_OAEP and not allow_legacy:
        raise UnsupportedAlgorithmError(
            f"header {WRAP_ALG_HEADER} is {wrap_alg!r} (oss2 LocalRsaProvider); reading it needs allow_legacy=True",
            object_name=object_name,
        )
    matdesc_text = meta.get(MATDESC_HEADER)
    matdesc = parse_matdesc(matdesc_text, object_name=object_name) if matdesc_text else {}
    identity, version = _identity(meta, matdesc, object_name)
    return Envelope(
        wrapped=WrappedDataKey(
            wrap_alg=wrap_alg,
            wrapped_key=wrapped_key,
            wrapped_iv=wrapped_iv,
            matdesc=matdesc,
            cmk_identity=identity,
            cmk_version=version,
        ),
        cek_alg=cek_alg,
        unencrypted_content_length=_decimal(meta, UNENCRYPTED_CONTENT_LENGTH_HEADER, object_name),
        unencrypted_content_md5=meta.get(UNENCRYPTED_CONTENT_MD5_HEADER),
        data_size=_decimal(meta, DATA_SIZE_HEADER, object_name),
        part_size=_decimal(meta, PART_SIZE_HEADER, object_name),
        integrity=integrity,
    )


def _parse_legacy(meta: Mapping[str, str], *, object_name: str, allow_legacy: bool) -> Envelope:
    """oss2 2.5–2.10: ``rsa`` → OAEP + base64 values; ``kms`` → the values are CiphertextBlob text."""
    if not allow_legacy:
        raise UnsupportedAlgorithmError(
            f"it uses oss2's legacy {LEGACY_KEY_HEADER} envelope; reading it needs allow_legacy=True",
            object_name=object_name,
        )
    cek_alg = _required(meta, LEGACY_CEK_ALG_HEADER, object_name)
    if cek_alg not in (_LEGACY_MISLABELLED_CEK_ALG, CEK_ALG_AES_CTR):
        raise UnsupportedAlgorithmError(
            f"header {LEGACY_CEK_ALG_HEADER} is {cek_alg!r}, not a legacy oss2 value",
            object_name=object_name,
        )
    legacy_wrap = _required(meta, LEGACY_WRAP_ALG_HEADER, object_name).lower()
    key_text = _required(meta, LEGACY_KEY_HEADER, object_name)
    start_text = _required(meta, LEGACY_START_HEADER, object_name)
    if legacy_wrap == "rsa":
        wrap_alg = WRAP_ALG_RSA_OAEP
        wrapped_key = _b64(key_text, LEGACY_KEY_HEADER, object_name)
        wrapped_iv = _b64(start_text, LEGACY_START_HEADER, object_name)
    elif legacy_wrap == "kms":
        wrap_alg = WRAP_ALG_KMS
        wrapped_key, wrapped_iv = key_text.encode("ascii"), start_text.encode("ascii")
    else:
        raise UnsupportedAlgorithmError(
            f"header {LEGACY_WRAP_ALG_HEADER} is {legacy_wrap!r}; expected rsa or kms",
            object_name=object_name,
        )
    matdesc_text = meta.get(LEGACY_MATDESC_HEADER)
    matdesc = parse_matdesc(matdesc_text, object_name=object_name) if matdesc_text else {}
    return Envelope(
        wrapped=WrappedDataKey(wrap_alg=wrap_alg, wrapped_key=wrapped_key, wrapped_iv=wrapped_iv, matdesc=matdesc),
        cek_alg=CEK_ALG_AES_CTR,
        legacy=True,
    )
