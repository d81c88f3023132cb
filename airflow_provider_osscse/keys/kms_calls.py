"""KMS RPC calls for one client: parameters in the form body, bounded retries, errors mapped by code.

The CMK (:mod:`~airflow_provider_osscse.keys.alicloud_kms`) decides *what* to ask KMS and checks
every answer against its pinned key; this module only knows *how* to ask: the wire form that keeps
data keys out of URLs and logs, the retry policy for a key service, and the mapping of KMS error
codes to this package's error types (never quoting the SDK's text, which may echo parameters). Each
message names the KMS endpoint, the key and the connection of the CMK reference, and the likely fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

from airflow_provider_osscse.exceptions import (
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceError,
    KeyUnwrapError,
)
from airflow_provider_osscse.keys.retry import RetryPolicy, TransientKeyServiceError, call_key_service
from airflow_provider_osscse.keys.vault_calls import POLICY_DOCS, connection_of, network_reason

T = TypeVar("T")

#: The key service's name in messages.
SERVICE = "Alibaba Cloud KMS"
_NOT_FOUND = ("Forbidden.KeyNotFound", "Forbidden.AliasNotFound", "Rejected.Disabled", "Forbidden.KeyDisabled")
_AUTH = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "IncompleteSignature", "InvalidSecurityToken")


class KmsRpc:
    """The RPC calls of one CMK through one Tea KMS client (``reference`` names the CMK in errors).

    ``context``: the EncryptionContext sent with every call that takes one (secret-ish: an oss2
    passphrase); it never appears in messages.
    """

    def __init__(
        self,
        client: Any,
        *,
        reference: str,
        retry: RetryPolicy,
        runtime: Any = None,
        context: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._reference = reference
        conn = connection_of(reference)
        self._conn = f"connection '{conn}'" if conn else "the KMS connection"
        self._key = urlsplit(reference).path.strip("/") or reference
        self._retry = retry
        self._runtime = runtime
        self._context = dict(context) if context else None

    def __repr__(self) -> str:
        return f"KmsRpc({self._reference!r})"

    def __reduce__(self) -> Any:
        raise TypeError("KmsRpc holds an authenticated KMS client and cannot be pickled")

    def _runtime_options(self) -> Any:
        if self._runtime is None:
            from darabonba.runtime import RuntimeOptions

            self._runtime = RuntimeOptions(autoretry=False, connect_timeout=5000, read_timeout=10000)
        return self._runtime

    def call_in_body(
        self,
        action: str,
        params: dict[str, Any],
        response_cls: type[T],
        *,
        context_param: str | None = "EncryptionContext",
        extra_context: tuple[str, Mapping[str, str] | None] | None = None,
    ) -> T:
        """:meth:`call_raw`, answered as the SDK's ``response_cls`` model."""
        from darabonba.core import DaraCore

        raw = self.call_raw(action, params, context_param=context_param, extra_context=extra_context)
        return DaraCore.from_map(response_cls(), raw)  # type: ignore[no-any-return]

    def call_raw(
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
            form[context_param] = context_json(self._context)
        if extra_context and extra_context[1]:
            form[extra_context[0]] = context_json(extra_context[1])
        request = utils_models.OpenApiRequest(body=form)
        rpc = utils_models.Params(
            action=action,
            version="2016-01-20",
            protocol="HTTPS",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        )
        return self.call(action, lambda rt: dict(self._client.call_api(rpc, request, rt)))

    def call(self, action: str, fn: Callable[[Any], T]) -> T:
        """Run one KMS action with bounded retries; map errors by code, never quoting the SDK text."""

        def attempt() -> T:
            try:
                return fn(self._runtime_options())
            except Exception as exc:
                status = _status(exc)
                if getattr(exc, "code", None) is None or (status is not None and status >= 500):
                    if status:
                        raise TransientKeyServiceError(f"KMS{self._at} answered HTTP {status} to {action}") from None
                    reason = network_reason(getattr(exc, "inner_exception", None) or exc)
                    raise TransientKeyServiceError(
                        f"cannot reach KMS{self._at} ({action}: {reason}): check the endpoint and region of "
                        f"{self._conn}, and the network"
                    ) from None
                raise

        error: Exception
        try:
            return call_key_service(self._retry, attempt, service=SERVICE, reference=self._reference)
        except Exception as exc:
            code = str(getattr(exc, "code", None) or "")
            if not code:
                raise
            error = self._mapped(action, code)
        raise error

    @property
    def _at(self) -> str:
        """`` at <endpoint>`` of the client (its configured endpoint), or nothing when it has none."""
        endpoint = getattr(self._client, "_endpoint", None)
        if not isinstance(endpoint, str) or not endpoint:
            return ""
        protocol = getattr(self._client, "_protocol", None)
        return f" at {endpoint}" if "://" in endpoint or not protocol else f" at {str(protocol).lower()}://{endpoint}"

    def _mapped(self, action: str, code: str) -> Exception:
        if code.startswith(_NOT_FOUND):
            return KeyNotFoundError(
                f"CMK {self._reference}: KMS{self._at} has no enabled key '{self._key}' ({code}): check the key id "
                f"or alias in the CMK reference, the region and endpoint of {self._conn}, and that the key is enabled"
            )
        if code.startswith("Forbidden"):
            return KeyPermissionError(
                f"CMK {self._reference}: the KMS credentials of {self._conn} may not call kms:{action} on key "
                f"'{self._key}'{self._at} ({code}): allow it in their RAM policy ({POLICY_DOCS})"
            )
        if code.startswith(_AUTH):
            return KeyPermissionError(
                f"CMK {self._reference}: KMS{self._at} rejected the credentials ({code}); check the "
                f"AccessKey ID/secret or STS token of {self._conn}"
            )
        if action in ("Decrypt", "ReEncrypt") and code.startswith(("InvalidCiphertext", "InvalidParameter")):
            return KeyUnwrapError(
                f"CMK {self._reference} could not unwrap the data key ({code}): wrong key for "
                "this object or corrupted wrapped values"
            )
        return KeyServiceError(f"CMK {self._reference}: KMS {action} failed{self._at} ({code})")


def _status(exc: BaseException) -> int | None:
    status = getattr(exc, "statusCode", None) or getattr(exc, "status_code", None)
    data = getattr(exc, "data", None)
    if status is None and isinstance(data, dict):
        status = data.get("statusCode")
    try:
        return int(status) if status is not None else None
    except (TypeError, ValueError):
        return None


def context_json(context: Mapping[str, str]) -> str:
    """An EncryptionContext as the SDK serialises it: compact JSON of string pairs."""
    return json.dumps(dict(context), separators=(",", ":"), sort_keys=True)
