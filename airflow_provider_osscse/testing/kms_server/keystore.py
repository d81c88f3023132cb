"""Customer master keys with real key material: versions, rotation, aliases, enable/disable.

Each key version holds a random AES-256 key; ``encrypt`` seals bytes with AES-256-GCM under the
key's newest (primary) version and returns a self-describing blob, so ``decrypt`` needs only the blob
(as KMS ``Decrypt`` needs only ``CiphertextBlob``) and old blobs keep decrypting after a rotation.

Blob layout (then standard base64, as the real service's blobs are base64 text)::

    b"LKMS" | 0x01 | len(key_id) | key_id | len(version_id) | version_id | nonce(12) | ciphertext + tag

The AAD is everything before the nonce followed by the canonical EncryptionContext (compact JSON with
sorted keys), so swapping the key reference or the context makes GCM authentication fail.
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from airflow_provider_osscse.testing.kms_server.errors import KMSServiceError

BLOB_MAGIC = b"LKMS\x01"
NONCE_BYTES = 12
ACCOUNT_ID = "1000000000000000"
ALIAS_PREFIX = "alias/"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_context(context: Mapping[str, str] | None) -> bytes:
    """The AAD form of an EncryptionContext: equal maps give equal bytes whatever the key order."""
    return json.dumps(dict(context or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass
class KeyVersion:
    """One generation of a key's material; ``material`` is excluded from ``repr``."""

    version_id: str
    created: str
    material: bytes = field(repr=False)


@dataclass
class MasterKey:
    """A symmetric CMK; the last entry of ``versions`` is the primary version used for new blobs."""

    key_id: str
    description: str
    created: str
    versions: list[KeyVersion]
    enabled: bool = True
    last_rotation: str = ""

    @property
    def primary(self) -> KeyVersion:
        return self.versions[-1]

    def version(self, version_id: str) -> KeyVersion | None:
        return next((v for v in self.versions if v.version_id == version_id), None)


@dataclass(frozen=True)
class SealResult:
    """What Encrypt/GenerateDataKey report: the key, the version that sealed, the blob text."""

    key_id: str
    key_version_id: str
    ciphertext_blob: str


@dataclass(frozen=True)
class OpenResult:
    """What Decrypt reports: the key and version named by the blob, and the recovered bytes."""

    key_id: str
    key_version_id: str
    plaintext: bytes = field(repr=False)


class KeyStore:
    """Thread-safe in-memory keys and aliases for one server (one region, one account)."""

    def __init__(self, region: str) -> None:
        self._region = region
        self._lock = threading.Lock()
        self._keys: dict[str, MasterKey] = {}
        self._aliases: dict[str, str] = {}

    # -- management --------------------------------------------------------------------------
    def create_key(self, *, description: str = "", alias: str | None = None) -> MasterKey:
        """A new enabled key with one fresh version; optionally bound to ``alias`` at once."""
        created = _now()
        key = MasterKey(
            key_id=f"key-{secrets.token_hex(12)}",
            description=description,
            created=created,
            versions=[KeyVersion(str(uuid.uuid4()), created, AESGCM.generate_key(bit_length=256))],
        )
        with self._lock:
            if alias is not None:
                self._check_new_alias(alias)
            self._keys[key.key_id] = key
            if alias is not None:
                self._aliases[alias] = key.key_id
        return key

    def create_alias(self, alias: str, key_or_alias: str) -> None:
        """Bind ``alias`` (``alias/NAME``) to an existing key; an alias names one key only."""
        with self._lock:
            key = self._resolve(key_or_alias)
            self._check_new_alias(alias)
            self._aliases[alias] = key.key_id

    def rotate(self, key_or_alias: str) -> KeyVersion:
        """Add a new primary version; earlier versions stay to decrypt the blobs they made."""
        version = KeyVersion(str(uuid.uuid4()), _now(), AESGCM.generate_key(bit_length=256))
        with self._lock:
            key = self._resolve(key_or_alias)
            key.versions.append(version)
            key.last_rotation = version.created
        return version

    def set_enabled(self, key_or_alias: str, enabled: bool) -> None:
        with self._lock:
            self._resolve(key_or_alias).enabled = enabled

    def describe(self, key_or_alias: str) -> dict[str, object]:
        """``KeyMetadata`` as DescribeKey/CreateKey return it."""
        with self._lock:
            key = self._resolve(key_or_alias)
            return {
                "KeyId": key.key_id,
                "Arn": f"acs:kms:{self._region}:{ACCOUNT_ID}:key/{key.key_id}",
                "KeyState": "Enabled" if key.enabled else "Disabled",
                "KeyUsage": "ENCRYPT/DECRYPT",
                "KeySpec": "Aliyun_AES_256",
                "Origin": "Aliyun_KMS",
                "ProtectionLevel": "SOFTWARE",
                "Description": key.description,
                "Creator": ACCOUNT_ID,
                "CreationDate": key.created,
                "LastRotationDate": key.last_rotation or key.created,
                "PrimaryKeyVersion": key.primary.version_id,
                "AutomaticRotation": "Disabled",
                "DeletionProtection": "Disabled",
            }

    def list_aliases(self) -> list[dict[str, str]]:
        with self._lock:
            return [
                {
                    "AliasName": alias,
                    "AliasArn": f"acs:kms:{self._region}:{ACCOUNT_ID}:{alias}",
                    "KeyId": key_id,
                }
                for alias, key_id in sorted(self._aliases.items())
            ]

    # -- cryptography ------------------------------------------------------------------------
    def encrypt(self, key_or_alias: str, plaintext: bytes, context: Mapping[str, str] | None = None) -> SealResult:
        """Seal ``plaintext`` under the key's primary version; a disabled key refuses."""
        with self._lock:
            key = self._resolve(key_or_alias)
            self._require_enabled(key)
            version = key.primary
        header = self._blob_header(key.key_id, version.version_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = AESGCM(version.material).encrypt(nonce, plaintext, header + canonical_context(context))
        blob = base64.b64encode(header + nonce + sealed).decode("ascii")
        return SealResult(key.key_id, version.version_id, blob)

    def decrypt(self, ciphertext_blob: str, context: Mapping[str, str] | None = None) -> OpenResult:
        """Open a blob made by :meth:`encrypt`: the blob names its key and version."""
        key_id, version_id, header, body = self._parse_blob(ciphertext_blob)
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                raise _key_not_found(key_id)
            self._require_enabled(key)
            version = key.version(version_id)
        if version is None or len(body) < NONCE_BYTES + 16:
            raise _invalid_ciphertext()
        nonce, sealed = body[:NONCE_BYTES], body[NONCE_BYTES:]
        try:
            plaintext = AESGCM(version.material).decrypt(nonce, sealed, header + canonical_context(context))
        except InvalidTag:
            raise _invalid_ciphertext() from None
        return OpenResult(key_id, version_id, plaintext)

    # -- internals ---------------------------------------------------------------------------
    @staticmethod
    def _blob_header(key_id: str, version_id: str) -> bytes:
        kid, vid = key_id.encode("ascii"), version_id.encode("ascii")
        return BLOB_MAGIC + bytes([len(kid)]) + kid + bytes([len(vid)]) + vid

    @staticmethod
    def _parse_blob(ciphertext_blob: str) -> tuple[str, str, bytes, bytes]:
        try:
            raw = base64.b64decode(ciphertext_blob.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise _invalid_ciphertext() from None
        if not raw.startswith(BLOB_MAGIC):
            raise _invalid_ciphertext()
        try:
            pos = len(BLOB_MAGIC)
            kid_len = raw[pos]
            key_id = raw[pos + 1 : pos + 1 + kid_len].decode("ascii")
            pos += 1 + kid_len
            vid_len = raw[pos]
            version_id = raw[pos + 1 : pos + 1 + vid_len].decode("ascii")
            pos += 1 + vid_len
        except (IndexError, ValueError, UnicodeDecodeError):
            raise _invalid_ciphertext() from None
        return key_id, version_id, raw[:pos], raw[pos:]

    def _resolve(self, key_or_alias: str) -> MasterKey:
        """A key id, ``alias/NAME``, or either as an ARN (``acs:kms:REGION:ACCOUNT:key/ID``)."""
        ref = key_or_alias.strip()
        if ref.startswith("acs:kms:"):
            ref = ref.rsplit(":", 1)[-1]
            ref = ref.removeprefix("key/")
        if ref.startswith(ALIAS_PREFIX):
            key_id = self._aliases.get(ref)
            if key_id is None:
                raise KMSServiceError(404, "Forbidden.AliasNotFound", f"The specified Alias is not found: {ref}")
            ref = key_id
        key = self._keys.get(ref)
        if key is None:
            raise _key_not_found(ref)
        return key

    def _check_new_alias(self, alias: str) -> None:
        name = alias.removeprefix(ALIAS_PREFIX)
        if not alias.startswith(ALIAS_PREFIX) or not name or not all(c.isalnum() or c in "_/-" for c in name):
            raise KMSServiceError(
                400, "InvalidParameter", f"The alias {alias!r} is not valid: use alias/NAME with [a-zA-Z0-9_/-]."
            )
        if alias in self._aliases:
            # Our choice of code: the public docs do not settle the duplicate-alias error name.
            raise KMSServiceError(409, "EntityAlreadyExists.Alias", f"The alias {alias} already exists.")

    @staticmethod
    def _require_enabled(key: MasterKey) -> None:
        if not key.enabled:
            # Our choice of code (KMS answers a disabled key with a "Rejected." family error).
            raise KMSServiceError(400, "Rejected.Disabled", f"The key {key.key_id} is disabled; enable it to use it.")


def _key_not_found(key_id: str) -> KMSServiceError:
    return KMSServiceError(404, "Forbidden.KeyNotFound", f"The specified Key is not found: {key_id}")


def _invalid_ciphertext() -> KMSServiceError:
    return KMSServiceError(
        400,
        "InvalidCiphertext",
        "The specified Ciphertext is not valid: it was altered, or the EncryptionContext does not match "
        "the one used to encrypt it.",
    )
