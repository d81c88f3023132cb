"""A CMK in Alibaba Cloud KMS (Tea SDK ``alibabacloud-kms20160120``); no Airflow import.

The ``alicloud_kms`` connection is read by :mod:`~airflow_provider_osscse.keys.alicloud_kms_connection`
and its Airflow hook is :class:`~airflow_provider_osscse.hooks.alicloud_kms.AlicloudKmsHook`.

Wrap-alg ``KMS/ALICLOUD`` in the Java/Go form: ``Encrypt(KeyId, Plaintext=base64(raw))`` once for
the data key and once for the IV, header value = the returned ``CiphertextBlob`` as is. The core
base64-decodes header values, so the wrapped bytes here are ``base64decode(CiphertextBlob)``. On
read both forms are accepted: oss2's ``AliKMSProvider`` stores base64 of the blob *text*, so if the
decoded header bytes are themselves printable base64 text, that text is the blob.

The KMS blob names its key, so Decrypt needs no KeyId: any credential allowed to decrypt under that
key can read the object. Rotation: ``ReEncrypt`` (the data key never leaves KMS).

Identity and versions: objects name the CMK as ``kms:<configured key id or alias>`` in
``x-oss-meta-osscse-cmk`` and the ``KeyVersionId`` KMS answered when it sealed the data key in
``x-oss-meta-osscse-cmk-version`` (neither is secret), so :meth:`AlicloudKmsKey.key_version` answers
from the headers alone. The matdesc holds only what the user configured (empty by default, as the
official SDKs write it). Objects written by other SDKs name no version: ``None`` until rewrapped.

Pinning: the headers only *select* a CMK; they are not evidence of which key sealed the blob (anyone
who can write the bucket can relabel an object). Because a blob names its own key, a credential
allowed to decrypt under several keys would open any of them. So each :class:`AlicloudKmsKey` pins
one KMS key id and checks it in every answer: ``Decrypt``'s ``KeyId``; ``ReEncrypt``'s
``SourceKeyId`` (the source CMK) and ``KeyId`` (the destination); the ``KeyId`` of ``Encrypt`` and
``GenerateDataKey``. A different key fails closed with :class:`KmsKeyMismatchError` (a
:class:`KeyUnwrapError`), the data key discarded. The pin is resolved once per instance: a key id is
its own pin; an alias (or ARN) is resolved by ``DescribeKey`` before the first Decrypt/ReEncrypt
(readers need ``kms:DescribeKey``; configure the key id to avoid it), or taken from the ``KeyId``
that the first ``Encrypt``/``GenerateDataKey`` answers (writers need no extra permission), and every
later request names the resolved id, so re-pointing the alias cannot fork the key mid-run.

Transport: a connection with ``protocol: http`` would send data keys in clear over the network; it
is refused unless the endpoint is loopback (the local KMS server), see :class:`InsecureKmsConnectionError`.

EncryptionContext: oss2's ``AliKMSProvider(passphrase=...)`` seals both values under the context
``{"x-passphrase": <passphrase>}`` and stores *nothing* about it in the object (KMS binds the
context as authenticated data, so it cannot be recovered from the blob). A reader must therefore be
given the passphrase: connection extra ``oss2_passphrase`` (a secret; masked by Airflow) or
``encryption_context=`` here. One context per CMK; list two references (with and without) in a
keyring to read both kinds of object.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

from airflow_provider_osscse.envelope.headers import WRAP_ALG_KMS
from airflow_provider_osscse.envelope.keywrap import (
    DATA_KEY_SIZE,
    Cmk,
    DataKey,
    DataKeyRequest,
    WrappedDataKey,
    new_iv,
)
from airflow_provider_osscse.exceptions import (
    KeyServiceError,
    KeyUnwrapError,
    KmsKeyMismatchError,
)
from airflow_provider_osscse.keys.identified_cmk import IdentifiedCmk
from airflow_provider_osscse.keys.kms_calls import KmsRpc, context_json
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy

#: The EncryptionContext name oss2's ``AliKMSProvider`` puts its passphrase under (a name, not a secret).
OSS2_PASSPHRASE_CONTEXT = "x-passphrase"  # noqa: S105
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/]+={0,2}$")


def kms_identity(key_id: str) -> str:
    """The CMK identity naming the KMS key as configured (key id or ``alias/NAME``), not the connection."""
    return f"kms:{key_id}"


def needs_resolution(key_ref: str) -> bool:
    """Whether ``key_ref`` is an alias or an ARN (resolved to a key id) rather than a key id itself."""
    return key_ref.startswith(("alias/", "acs:"))


def is_loopback_endpoint(endpoint: str) -> bool:
    """Whether a KMS endpoint (``host[:port]``, optionally with a scheme) is a loopback host:
    127.0.0.0/8, ::1 or ``localhost``. Anything unparsable is not."""
    rest = endpoint.strip().split("://", 1)[-1]
    try:  # a bare address, e.g. ``::1`` (whose colons would read as a port)
        return ipaddress.ip_address(rest.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        host = urlsplit(f"//{rest}").hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def blob_from_header_bytes(raw: bytes) -> str:
    """The ``CiphertextBlob`` behind header-decoded bytes, in the Java/Go form or oss2's double base64."""
    if len(raw) % 4 == 0 and _BASE64_TEXT.match(raw):
        try:
            base64.b64decode(raw, validate=True)
            return raw.decode("ascii")  # oss2: the header held base64 of the blob text
        except binascii.Error:
            pass
    return base64.b64encode(raw).decode("ascii")


def oss2_passphrase_context(passphrase: str) -> dict[str, str]:
    """The EncryptionContext oss2's ``AliKMSProvider(passphrase=...)`` seals its values under."""
    return {OSS2_PASSPHRASE_CONTEXT: passphrase}


class AlicloudKmsKey(IdentifiedCmk):
    """A KMS key (id or ``alias/NAME``) wrapping data keys through a Tea KMS client.

    ``encryption_context``: KMS authenticated data sent with every call (e.g.
    :func:`oss2_passphrase_context`); a blob sealed under a context opens only with the same one.
    It is secret-ish (an oss2 passphrase), so it never appears in the matdesc, repr or messages.
    """

    wrap_alg = WRAP_ALG_KMS

    def __init__(
        self,
        client: Any,
        *,
        key_id: str,
        reference: str | None = None,
        matdesc: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        runtime: Any = None,
        endpoint: str | None = None,
        encryption_context: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._context = dict(encryption_context) if encryption_context else None
        reference = reference or f"kms://kms_default/{key_id}"
        self._rpc = KmsRpc(client, reference=reference, retry=retry, runtime=runtime, context=self._context)
        self.key_id = key_id
        self._set_identity(
            reference=reference or f"kms://kms_default/{key_id}", identity=kms_identity(key_id), matdesc=matdesc
        )
        self._endpoint = endpoint
        self._pin_lock = threading.Lock()
        self._pinned: str | None = None if needs_resolution(key_id) else key_id

    # -- pinning -------------------------------------------------------------------------------
    @property
    def pinned_key_id(self) -> str:
        """The KMS key id every answer must name; an alias is resolved (``DescribeKey``) once."""
        with self._pin_lock:
            if self._pinned is None:
                self._pinned = self._describe_key_id()
            return self._pinned

    def _describe_key_id(self) -> str:
        return self._describe()[0]

    def _describe(self) -> tuple[str, str | None]:
        """(KeyId, PrimaryKeyVersion) from one ``DescribeKey``."""
        from alibabacloud_kms20160120 import models

        body = self._rpc.call_in_body(
            "DescribeKey", {"KeyId": self.key_id}, models.DescribeKeyResponse, context_param=None
        ).body
        metadata = body.key_metadata
        key_id = metadata.key_id if metadata is not None else None
        if not key_id:
            raise KeyServiceError(f"CMK {self._reference}: KMS DescribeKey named no KeyId for {self.key_id}")
        primary = metadata.primary_key_version if metadata is not None else None
        return str(key_id), str(primary) if primary else None

    def latest_version(self) -> str | None:
        """The key's ``PrimaryKeyVersion`` (one ``DescribeKey`` per call), so a rotation run tells
        current from stale objects by their headers. Needs ``kms:DescribeKey``."""
        key_id, primary = self._describe()
        if key_id != self.pinned_key_id:
            raise self._mismatch("DescribeKey", self.pinned_key_id, key_id)
        if primary is None:
            raise KeyServiceError(f"CMK {self._reference}: KMS DescribeKey named no PrimaryKeyVersion")
        return primary

    def _request_key_id(self) -> str:
        """The ``KeyId`` to send to Encrypt/GenerateDataKey: the pin once known, else as configured."""
        with self._pin_lock:
            return self._pinned or self.key_id

    def _pin_from_answer(self, action: str, named: str | None) -> None:
        """Learn the pin from a writer's first answer, or check the answer against the pin."""
        with self._pin_lock:
            if self._pinned is None and named:
                self._pinned = named
            pinned = self._pinned
        if not named or named != pinned:
            raise self._mismatch(action, pinned or self.key_id, named)

    def _mismatch(self, action: str, pinned: str, named: str | None, *, role: str = "") -> KmsKeyMismatchError:
        used = f"KMS key {named}" if named else "no key at all"
        if action in ("Encrypt", "GenerateDataKey"):
            why = (
                "KMS sealed under another key than this CMK's (was the alias re-pointed?); nothing was "
                "wrapped. A new provider instance (the next task) resolves the alias afresh"
            )
        else:
            why = (
                "the object was not wrapped by this CMK (its headers may have been altered to name "
                "it); nothing KMS returned was used"
            )
        return KmsKeyMismatchError(
            f"CMK {self._reference} is pinned to KMS key {pinned} (configured as {self.key_id}), but "
            f"KMS {action} answered{role} with {used}: {why}"
        )

    @property
    def rewrap_domain(self) -> tuple[str, object]:
        """The KMS this key is reached through (its endpoint, else its client): ``ReEncrypt`` moves
        data keys between any two keys of one KMS without releasing them."""
        if self._endpoint:
            return ("alicloud-kms", self._endpoint)
        return ("alicloud-kms-client", id(self._client))

    def _encrypt(self, raw: bytes) -> tuple[bytes, str | None]:
        """(blob bytes, KeyVersionId) of ``Encrypt(base64(raw))`` under the pinned key."""
        from alibabacloud_kms20160120 import models

        params = {"KeyId": self._request_key_id(), "Plaintext": base64.b64encode(raw).decode("ascii")}
        body = self._rpc.call_in_body("Encrypt", params, models.EncryptResponse).body
        self._pin_from_answer("Encrypt", body.key_id)
        return base64.b64decode(body.ciphertext_blob), body.key_version_id

    def _decrypt(self, wrapped: bytes) -> bytes:
        """``Decrypt``; the answer must name the pinned key, else nothing it returned is used."""
        from alibabacloud_kms20160120 import models

        pinned = self.pinned_key_id
        params = {"CiphertextBlob": blob_from_header_bytes(wrapped)}
        body = self._rpc.call_in_body("Decrypt", params, models.DecryptResponse).body
        if body.key_id != pinned:
            raise self._mismatch("Decrypt", pinned, body.key_id)
        try:
            raw = base64.b64decode(body.plaintext, validate=True)
        except (binascii.Error, TypeError):
            raw = None
        if raw is None:
            raise KeyUnwrapError(f"CMK {self._reference}: KMS returned a non-base64 plaintext")
        return raw

    def _reencrypt(self, wrapped: bytes, source: AlicloudKmsKey) -> tuple[bytes, str | None]:
        """(blob bytes, KeyVersionId) of ``ReEncrypt`` from ``source`` to this key's primary version.

        Both pins are checked against the answer. When it names ``SourceKeyId``, that must be the
        source's pinned key and ``KeyId`` this key's. The published API reference lists no
        ``SourceKeyId`` and describes ``KeyId``/``KeyVersionId`` as the key that *decrypted the
        original ciphertext*; such an answer must name the source's pinned key, and the new blob's
        version is then unknown (``None``) rather than guessed. ``SourceKeyId`` is not sent in the
        request: the reference documents it for asymmetric ciphertexts only.
        """
        source_pin, destination_pin = source.pinned_key_id, self.pinned_key_id
        params = {"CiphertextBlob": blob_from_header_bytes(wrapped), "DestinationKeyId": destination_pin}
        if source._context:
            params["SourceEncryptionContext"] = context_json(source._context)
        raw = self._rpc.call_raw(
            "ReEncrypt", params, context_param=None, extra_context=("DestinationEncryptionContext", self._context)
        )
        body = raw.get("body")
        body = body if isinstance(body, Mapping) else {}
        named, named_source = body.get("KeyId"), body.get("SourceKeyId")
        if named_source is not None:
            if named_source != source_pin:
                raise source._mismatch("ReEncrypt", source_pin, named_source, role=" (SourceKeyId)")
            if named != destination_pin:
                raise self._mismatch("ReEncrypt", destination_pin, named, role=" (destination KeyId)")
            version = body.get("KeyVersionId")
        else:
            if named != source_pin:
                raise source._mismatch("ReEncrypt", source_pin, named, role=" (KeyId of the decrypting key)")
            version = None
        blob = body.get("CiphertextBlob")
        if not isinstance(blob, str):
            raise KeyServiceError(f"CMK {self._reference}: KMS ReEncrypt answered no CiphertextBlob")
        return base64.b64decode(blob), str(version) if version else None

    # -- Cmk ----------------------------------------------------------------------------
    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        wrapped_key, version = self._encrypt(data_key.key)
        wrapped_iv, _ = self._encrypt(data_key.iv)
        return self._wrapped(wrapped_key, wrapped_iv, version)

    def new_data_key(self, request: DataKeyRequest | None = None) -> tuple[DataKey, WrappedDataKey]:
        """``GenerateDataKey`` (KMS entropy, key and its blob in one call) plus one Encrypt for the IV."""
        from alibabacloud_kms20160120 import models

        params = {"KeyId": self._request_key_id(), "NumberOfBytes": DATA_KEY_SIZE}
        body = self._rpc.call_in_body("GenerateDataKey", params, models.GenerateDataKeyResponse).body
        self._pin_from_answer("GenerateDataKey", body.key_id)
        key = base64.b64decode(body.plaintext)
        data_key = DataKey(key=key, iv=new_iv())
        wrapped_iv, _ = self._encrypt(data_key.iv)
        return data_key, self._wrapped(base64.b64decode(body.ciphertext_blob), wrapped_iv, body.key_version_id)

    def wrap_ivs(
        self, key_bytes: bytes, ivs: Sequence[bytes], *, reuse: WrappedDataKey | None = None
    ) -> list[WrappedDataKey]:
        """One ``Encrypt`` for the first IV only (KMS has no batch call, so wrapping ahead would save
        nothing and waste calls on IVs never used), plus one for the data key unless ``reuse``.

        So the write cache saves only the ``GenerateDataKey`` call per object with KMS (about one
        call per object instead of two), not the IV's Encrypt. If KMS seals the IV under another
        ``KeyVersionId`` than the data key (rotation in between), ``[]`` is returned and the caller
        starts a new data key.
        """
        if reuse is not None and not self.matches(reuse):
            raise ValueError(f"CMK {self._reference}: 'reuse' was not wrapped by this KMS key")
        if reuse is not None:
            wrapped_key, key_version = reuse.wrapped_key, reuse.cmk_version
        else:
            wrapped_key, key_version = self._encrypt(key_bytes)
        if not ivs:
            return []
        wrapped_iv, iv_version = self._encrypt(ivs[0])
        if key_version and iv_version and iv_version != key_version:
            return []
        return [self._wrapped(wrapped_key, wrapped_iv, key_version)]

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        key, iv = self._decrypt(wrapped.wrapped_key), self._decrypt(wrapped.wrapped_iv)
        try:
            return DataKey(key=key, iv=iv)
        except ValueError:
            raise KeyUnwrapError(
                f"CMK {self._reference}: unwrapped values have the wrong length for a data key and IV"
            ) from None

    def reencrypt_from(self, wrapped: WrappedDataKey, source: AlicloudKmsKey | None = None) -> WrappedDataKey:
        """KMS ``ReEncrypt`` of both values to this key's newest version (the data key stays in KMS).

        ``source`` is the CMK that wrapped them (default: this one); its EncryptionContext opens them
        and its pinned key must be the one KMS decrypted with (see :meth:`_reencrypt`). The result
        carries this CMK's identity and user matdesc, whatever the source object carried.
        """
        origin = source or self
        wrapped_key, version = self._reencrypt(wrapped.wrapped_key, origin)
        wrapped_iv, _ = self._reencrypt(wrapped.wrapped_iv, origin)
        return self._wrapped(wrapped_key, wrapped_iv, version)

    def rewrap_from(self, wrapped: WrappedDataKey, source: Cmk) -> WrappedDataKey:
        """``ReEncrypt`` when ``source`` (whatever keyring or cache holds it) is a key of this same
        KMS: the data key never leaves KMS. From any other CMK: unwrap there, wrap here."""
        origin = source.cmk_for(wrapped)
        if origin.rewrap_domain != self.rewrap_domain:
            return super().rewrap_from(wrapped, source)
        # Only an AlicloudKmsKey answers a KMS rewrap domain, so ``origin`` is one.
        return self.reencrypt_from(wrapped, source=cast("AlicloudKmsKey", origin))

    def key_version(self, wrapped: WrappedDataKey) -> str | None:
        """The ``KeyVersionId`` recorded at wrap/rewrap time (``cmk_version``), or None (other SDKs' objects)."""
        if wrapped.wrap_alg != WRAP_ALG_KMS:
            return None
        return wrapped.cmk_version

    def __reduce__(self) -> Any:
        raise TypeError("AlicloudKmsKey holds an authenticated KMS client and cannot be pickled")
