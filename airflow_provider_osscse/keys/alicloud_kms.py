"""A CMK in Alibaba Cloud KMS (Tea SDK ``alibabacloud-kms20160120``), and its Airflow hook.

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
import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_osscse.envelope.errors import (
    CmkError,
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceError,
    KeyUnwrapError,
)
from airflow_provider_osscse.envelope.keywrap import (
    DATA_KEY_SIZE,
    DataKey,
    Cmk,
    WrappedDataKey,
    new_iv,
)
from airflow_provider_osscse.keys.identified_cmk import IdentifiedCmk
from airflow_provider_osscse.keys.masking import mask_key_bytes
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy, TransientKeyServiceError

try:  # Airflow is optional for the key classes, required for the hook.
    from airflow.sdk import BaseHook
except ImportError:  # pragma: no cover
    BaseHook = object  # type: ignore[assignment,misc]

T = TypeVar("T")
WRAP_ALG = "KMS/ALICLOUD"
#: The EncryptionContext name oss2's ``AliKMSProvider`` puts its passphrase under.
OSS2_PASSPHRASE_CONTEXT = "x-passphrase"
SERVICE = "Alibaba Cloud KMS"
_BASE64_TEXT = re.compile(rb"^[A-Za-z0-9+/]+={0,2}$")
_NOT_FOUND = ("Forbidden.KeyNotFound", "Forbidden.AliasNotFound", "Rejected.Disabled", "Forbidden.KeyDisabled")
_AUTH = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "IncompleteSignature", "InvalidSecurityToken")


class KmsKeyMismatchError(KeyUnwrapError):
    """KMS answered for another key than the one this CMK is pinned to (relabelled object, or a KMS
    or credential serving several keys): nothing KMS returned is used. Key ids are not secret, so the
    message names the configured reference, the pinned key id and the key KMS actually used."""


class InsecureKmsConnectionError(CmkError, ValueError):
    """A KMS connection asks for plain ``http`` to a host that is not loopback."""


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


class AlicloudKmsHook(BaseHook):  # type: ignore[misc,valid-type]
    """Connection ``alicloud_kms``: login = AccessKey ID, password = secret; extras ``region``,
    ``endpoint``, ``security_token`` (STS), ``protocol`` (``https``; ``http`` only to a loopback
    endpoint), ``oss2_passphrase`` (read/write objects of oss2's ``AliKMSProvider(passphrase=...)``).
    The client is built lazily, once."""

    conn_name_attr = "kms_conn_id"
    default_conn_name = "kms_default"
    conn_type = "alicloud_kms"
    hook_name = "Alibaba Cloud KMS"

    def __init__(self, kms_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kms_conn_id = kms_conn_id

    @cached_property
    def _settings(self) -> dict[str, Any]:
        conn = self.get_connection(self.kms_conn_id)
        extra = conn.extra_dejson
        region = extra.get("region") or "cn-hangzhou"
        endpoint = str(extra.get("endpoint") or f"kms.{region}.aliyuncs.com")
        protocol = str(extra.get("protocol") or "https")
        if protocol.lower() == "http" and not is_loopback_endpoint(endpoint):
            raise InsecureKmsConnectionError(
                f"KMS connection {self.kms_conn_id!r} sets protocol 'http' for endpoint {endpoint}: data "
                "keys would cross the network unencrypted. Set the extra 'protocol' to 'https' (the "
                "default); 'http' is accepted only for a loopback endpoint (127.0.0.1, ::1, localhost), "
                "e.g. the local KMS server"
            )
        return {
            "access_key_id": conn.login,
            "access_key_secret": conn.password,
            "security_token": extra.get("security_token") or None,
            "region_id": region,
            "endpoint": endpoint,
            "protocol": protocol,
        }

    @property
    def endpoint(self) -> str:
        return str(self._settings["endpoint"])

    @cached_property
    def encryption_context(self) -> dict[str, str] | None:
        """The EncryptionContext from extra ``oss2_passphrase`` (registered with the masker), or None."""
        passphrase = self.get_connection(self.kms_conn_id).extra_dejson.get("oss2_passphrase")
        if not passphrase:
            return None
        from airflow_provider_osscse.keys.masking import mask_strings

        mask_strings([str(passphrase)])
        return oss2_passphrase_context(str(passphrase))

    @cached_property
    def client(self) -> Any:
        """The Tea KMS client (``alibabacloud_kms20160120.client.Client``)."""
        from alibabacloud_kms20160120.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        return Client(Config(**self._settings))

    def get_conn(self) -> Any:
        return self.client

    def runtime_options(self, *, connect_timeout_ms: int = 5000, read_timeout_ms: int = 10000) -> Any:
        """No SDK auto-retry (our :class:`RetryPolicy` bounds retries) and bounded timeouts."""
        from darabonba.runtime import RuntimeOptions

        return RuntimeOptions(autoretry=False, connect_timeout=connect_timeout_ms, read_timeout=read_timeout_ms)

    def test_connection(self) -> tuple[bool, str]:
        """Sign one cheap read call (ListAliases); reports the error code, never credentials."""
        from alibabacloud_kms20160120 import models

        try:
            self._settings
        except InsecureKmsConnectionError as exc:
            return False, str(exc)
        try:
            self.client.list_aliases_with_options(models.ListAliasesRequest(page_size=1), self.runtime_options())
        except Exception as exc:  # noqa: BLE001 - report any failure as the test result
            return False, f"KMS at {self.endpoint} failed: {getattr(exc, 'code', None) or type(exc).__name__}"
        return True, f"Connected to Alibaba Cloud KMS at {self.endpoint}"

    def get_key(self, key_id: str, **kwargs: Any) -> AlicloudKmsKey:
        """The CMK ``key_id`` reached through this connection."""
        kwargs.setdefault("encryption_context", self.encryption_context)
        return AlicloudKmsKey(
            self.client, key_id=key_id, endpoint=self.endpoint, runtime=self.runtime_options(), **kwargs
        )


class AlicloudKmsKey(IdentifiedCmk):
    """A KMS key (id or ``alias/NAME``) wrapping data keys through a Tea KMS client.

    ``encryption_context``: KMS authenticated data sent with every call (e.g.
    :func:`oss2_passphrase_context`); a blob sealed under a context opens only with the same one.
    It is secret-ish (an oss2 passphrase), so it never appears in the matdesc, repr or messages.
    """

    wrap_alg = WRAP_ALG

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
        self.key_id = key_id
        self._set_identity(reference=reference or f"kms://kms_default/{key_id}", identity=kms_identity(key_id),
                           matdesc=matdesc)
        self._retry = retry
        self._runtime = runtime
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
        from alibabacloud_kms20160120 import models

        body = self._call_in_body("DescribeKey", {"KeyId": self.key_id}, models.DescribeKeyResponse,
                                  context_param=None).body
        key_id = body.key_metadata.key_id if body.key_metadata is not None else None
        if not key_id:
            raise KeyServiceError(f"CMK {self._reference}: KMS DescribeKey named no KeyId for {self.key_id}")
        return str(key_id)

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
            why = ("KMS sealed under another key than this CMK's (was the alias re-pointed?); nothing was "
                   "wrapped. A new provider instance (the next task) resolves the alias afresh")
        else:
            why = ("the object was not wrapped by this CMK (its headers may have been altered to name "
                   "it); nothing KMS returned was used")
        return KmsKeyMismatchError(
            f"CMK {self._reference} is pinned to KMS key {pinned} (configured as {self.key_id}), but "
            f"KMS {action} answered{role} with {used}: {why}"
        )

    def shares_service_with(self, other: AlicloudKmsKey) -> bool:
        """Whether ``other`` is reached through the same KMS (so ReEncrypt can move keys between them)."""
        if self._endpoint and other._endpoint:
            return self._endpoint == other._endpoint
        return self._client is other._client

    # -- calls ---------------------------------------------------------------------------------
    def _runtime_options(self) -> Any:
        if self._runtime is None:
            from darabonba.runtime import RuntimeOptions

            self._runtime = RuntimeOptions(autoretry=False, connect_timeout=5000, read_timeout=10000)
        return self._runtime

    def _call_in_body(
        self,
        action: str,
        params: dict[str, Any],
        response_cls: type[T],
        *,
        context_param: str | None = "EncryptionContext",
        extra_context: tuple[str, Mapping[str, str] | None] | None = None,
    ) -> T:
        """:meth:`_call_raw`, answered as the SDK's ``response_cls`` model."""
        from darabonba.core import DaraCore

        raw = self._call_raw(action, params, context_param=context_param, extra_context=extra_context)
        return DaraCore.from_map(response_cls(), raw)

    def _call_raw(
        self,
        action: str,
        params: dict[str, Any],
        *,
        context_param: str | None = "EncryptionContext",
        extra_context: tuple[str, Mapping[str, str] | None] | None = None,
    ) -> dict[str, Any]:
        """Call an RPC action with its parameters in the form body, never in the URL.

        The SDK's generated ``*_with_options`` methods put every parameter in the query string, and
        urllib3 logs request lines (``POST /?...&Plaintext=<base64 data key>``) at DEBUG level; the
        URL-encoded value also escapes Airflow's masker. KMS accepts RPC parameters as
        ``application/x-www-form-urlencoded`` bodies, so plaintexts, ciphertext blobs and
        EncryptionContexts travel there. The SDK still signs the request (ACS3 hashes the body).
        Answers the SDK's raw map (``body``, ``headers``, ``statusCode``), so fields the generated
        models do not declare (``ReEncrypt``'s ``SourceKeyId``) stay visible.
        """
        from alibabacloud_tea_openapi import utils_models

        form = dict(params)
        if context_param and self._context:
            form[context_param] = _context_json(self._context)
        if extra_context and extra_context[1]:
            form[extra_context[0]] = _context_json(extra_context[1])
        request = utils_models.OpenApiRequest(body=form)
        rpc = utils_models.Params(
            action=action, version="2016-01-20", protocol="HTTPS", pathname="/", method="POST",
            auth_type="AK", style="RPC", req_body_type="formData", body_type="json",
        )
        return self._call(action, lambda rt: dict(self._client.call_api(rpc, request, rt)))

    def _call(self, action: str, fn: Callable[[Any], T]) -> T:
        """Run one KMS action with bounded retries; map errors by code, never quoting the SDK text."""

        def attempt() -> T:
            try:
                return fn(self._runtime_options())
            except Exception as exc:
                status = _status(exc)
                if getattr(exc, "code", None) is None or (status is not None and status >= 500):
                    kind = f"HTTP {status}" if status else "connection failed"
                    raise TransientKeyServiceError(f"{action}: {kind}") from None
                raise

        error: Exception
        try:
            return self._retry.call(attempt, service=SERVICE, reference=self._reference)
        except Exception as exc:
            code = str(getattr(exc, "code", None) or "")
            if not code:
                raise
            if code.startswith(_NOT_FOUND):
                error = KeyNotFoundError(f"CMK {self._reference}: KMS says {code} (key missing or disabled)")
            elif code.startswith("Forbidden"):
                error = KeyPermissionError(
                    f"CMK {self._reference}: the KMS credentials may not call kms:{action} ({code})"
                )
            elif code.startswith(_AUTH):
                error = KeyPermissionError(
                    f"CMK {self._reference}: KMS rejected the credentials ({code}); check the "
                    "AccessKey ID/secret or STS token of the connection"
                )
            elif action in ("Decrypt", "ReEncrypt") and code.startswith(("InvalidCiphertext", "InvalidParameter")):
                error = KeyUnwrapError(
                    f"CMK {self._reference} could not unwrap the data key ({code}): wrong key for "
                    "this object or corrupted wrapped values"
                )
            else:
                error = KeyServiceError(f"CMK {self._reference}: KMS {action} failed ({code})")
        raise error

    def _encrypt(self, raw: bytes) -> tuple[bytes, str | None]:
        """(blob bytes, KeyVersionId) of ``Encrypt(base64(raw))`` under the pinned key."""
        from alibabacloud_kms20160120 import models

        params = {"KeyId": self._request_key_id(), "Plaintext": base64.b64encode(raw).decode("ascii")}
        body = self._call_in_body("Encrypt", params, models.EncryptResponse).body
        self._pin_from_answer("Encrypt", body.key_id)
        return base64.b64decode(body.ciphertext_blob), body.key_version_id

    def _decrypt(self, wrapped: bytes) -> bytes:
        """``Decrypt``; the answer must name the pinned key, else nothing it returned is used."""
        from alibabacloud_kms20160120 import models

        pinned = self.pinned_key_id
        params = {"CiphertextBlob": blob_from_header_bytes(wrapped)}
        body = self._call_in_body("Decrypt", params, models.DecryptResponse).body
        if body.key_id != pinned:
            raise self._mismatch("Decrypt", pinned, body.key_id)
        try:
            raw = base64.b64decode(body.plaintext, validate=True)
        except (binascii.Error, TypeError):
            raw = None
        if raw is None:
            raise KeyUnwrapError(f"CMK {self._reference}: KMS returned a non-base64 plaintext")
        mask_key_bytes(raw)
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
            params["SourceEncryptionContext"] = _context_json(source._context)
        raw = self._call_raw("ReEncrypt", params, context_param=None,
                             extra_context=("DestinationEncryptionContext", self._context))
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

    def new_data_key(self) -> tuple[DataKey, WrappedDataKey]:
        """``GenerateDataKey`` (KMS entropy, key and its blob in one call) plus one Encrypt for the IV."""
        from alibabacloud_kms20160120 import models

        params = {"KeyId": self._request_key_id(), "NumberOfBytes": DATA_KEY_SIZE}
        body = self._call_in_body("GenerateDataKey", params, models.GenerateDataKeyResponse).body
        self._pin_from_answer("GenerateDataKey", body.key_id)
        key = base64.b64decode(body.plaintext)
        mask_key_bytes(key)
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

    def reencrypt_from(
        self, wrapped: WrappedDataKey, source: AlicloudKmsKey | None = None
    ) -> WrappedDataKey:
        """KMS ``ReEncrypt`` of both values to this key's newest version (the data key stays in KMS).

        ``source`` is the CMK that wrapped them (default: this one); its EncryptionContext opens them
        and its pinned key must be the one KMS decrypted with (see :meth:`_reencrypt`). The result
        carries this CMK's identity and user matdesc, whatever the source object carried.
        """
        origin = source or self
        wrapped_key, version = self._reencrypt(wrapped.wrapped_key, origin)
        wrapped_iv, _ = self._reencrypt(wrapped.wrapped_iv, origin)
        return self._wrapped(wrapped_key, wrapped_iv, version)

    def rewrap(self, wrapped: WrappedDataKey) -> WrappedDataKey:
        return self.reencrypt_from(wrapped)

    def key_version(self, wrapped: WrappedDataKey) -> str | None:
        """The ``KeyVersionId`` recorded at wrap/rewrap time (``cmk_version``), or None (other SDKs' objects)."""
        if wrapped.wrap_alg != WRAP_ALG:
            return None
        return wrapped.cmk_version

    def __reduce__(self) -> Any:
        raise TypeError("AlicloudKmsKey holds an authenticated KMS client and cannot be pickled")


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "statusCode", None) or getattr(exc, "status_code", None)
    data = getattr(exc, "data", None)
    if status is None and isinstance(data, dict):
        status = data.get("statusCode")
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def _context_json(context: Mapping[str, str]) -> str:
    """An EncryptionContext as the SDK serialises it: compact JSON of string pairs."""
    return json.dumps(dict(context), separators=(",", ":"), sort_keys=True)
