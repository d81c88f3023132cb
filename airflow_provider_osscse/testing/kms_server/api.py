"""The KMS actions (2016-01-20 API) over a :class:`KeyStore`: parameters in, response dict out.

Parameter names and response fields are those of the Tea SDK models
(``alibabacloud_kms20160120.models``) and ``aliyun-python-sdk-kms``. Binary values travel as the
SDKs send them: ``Encrypt``'s ``Plaintext`` is text (the SDKs and oss2 send base64 text) and the blob
wraps exactly those UTF-8 bytes; ``GenerateDataKey`` seals the base64 text of the data key, so
``Decrypt`` of its blob returns the same ``Plaintext`` string GenerateDataKey did.

Which key answered is always named, because clients pin on it: ``Decrypt`` answers ``KeyId``,
``KeyVersionId`` and ``Plaintext``; ``ReEncrypt`` answers ``CiphertextBlob``, ``KeyId`` and
``KeyVersionId`` of the destination plus ``SourceKeyId`` and ``SourceKeyVersionId`` of the key that
decrypted the original blob. The published API reference (and every SDK model generated from it)
lists only ``CiphertextBlob``, ``KeyId`` and ``KeyVersionId`` for ``ReEncrypt``, describing the two
ids as those of the key that *decrypted the original ciphertext*; ``reencrypt_names_source=False``
answers exactly that shape, so clients can be tested against both readings.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Mapping

from airflow_provider_osscse.testing.kms_server.errors import (
    KMSServiceError,
    invalid_parameter,
    missing_parameter,
)
from airflow_provider_osscse.testing.kms_server.keystore import KeyStore, SealResult

API_VERSION = "2016-01-20"
MAX_PLAINTEXT_BYTES = 6144
KEY_SPEC_BYTES = {"AES_256": 32, "AES_128": 16}

Params = Mapping[str, str]
Response = dict[str, object]


def _required(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise missing_parameter(name)
    return value


def _context(params: Params, name: str = "EncryptionContext") -> dict[str, str]:
    """Parse a JSON-object EncryptionContext; absent or empty means no context."""
    raw = params.get(name)
    if raw is None or raw.strip() == "":
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise invalid_parameter(name, "it must be a JSON object of strings.") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise invalid_parameter(name, "it must be a JSON object of strings.")
    return value


def _data_key_length(params: Params) -> int:
    """``NumberOfBytes`` (1-1024) wins when given; else ``KeySpec`` (AES_256 default, AES_128)."""
    number = params.get("NumberOfBytes")
    if number:
        try:
            length = int(number)
        except ValueError:
            raise invalid_parameter("NumberOfBytes", "it must be an integer.") from None
        if not 1 <= length <= 1024:
            raise invalid_parameter("NumberOfBytes", "it must be between 1 and 1024.")
        return length
    spec = params.get("KeySpec") or "AES_256"
    if spec not in KEY_SPEC_BYTES:
        raise invalid_parameter("KeySpec", "use AES_256 or AES_128.")
    return KEY_SPEC_BYTES[spec]


def _sealed_response(sealed: SealResult) -> Response:
    return {"KeyId": sealed.key_id, "KeyVersionId": sealed.key_version_id, "CiphertextBlob": sealed.ciphertext_blob}


class KMSApi:
    """Dispatches an action name to its implementation."""

    def __init__(self, keystore: KeyStore, *, reencrypt_names_source: bool = True) -> None:
        self._keys = keystore
        self._reencrypt_names_source = reencrypt_names_source
        self._actions: dict[str, Callable[[Params], Response]] = {
            "GenerateDataKey": self.generate_data_key,
            "GenerateDataKeyWithoutPlaintext": self.generate_data_key_without_plaintext,
            "Encrypt": self.encrypt,
            "Decrypt": self.decrypt,
            "ReEncrypt": self.re_encrypt,
            "DescribeKey": self.describe_key,
            "CreateKey": self.create_key,
            "CreateAlias": self.create_alias,
            "ListAliases": self.list_aliases,
            "CreateKeyVersion": self.create_key_version,
            "EnableKey": self.enable_key,
            "DisableKey": self.disable_key,
        }

    @property
    def actions(self) -> frozenset[str]:
        return frozenset(self._actions)

    def call(self, action: str, params: Params) -> Response:
        handler = self._actions.get(action)
        if handler is None:
            raise KMSServiceError(404, "InvalidAction.NotFound", f"Specified api is not found: {action}")
        return handler(params)

    def _seal_data_key(self, params: Params) -> tuple[str, Response]:
        data_key_b64 = base64.b64encode(secrets.token_bytes(_data_key_length(params))).decode("ascii")
        key_id = _required(params, "KeyId")
        sealed = self._keys.encrypt(key_id, data_key_b64.encode("ascii"), _context(params))
        return data_key_b64, _sealed_response(sealed)

    def generate_data_key(self, params: Params) -> Response:
        data_key_b64, response = self._seal_data_key(params)
        return {**response, "Plaintext": data_key_b64}

    def generate_data_key_without_plaintext(self, params: Params) -> Response:
        return self._seal_data_key(params)[1]

    def encrypt(self, params: Params) -> Response:
        plaintext = _required(params, "Plaintext").encode("utf-8")
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise invalid_parameter("Plaintext", f"it must be at most {MAX_PLAINTEXT_BYTES} bytes.")
        sealed = self._keys.encrypt(_required(params, "KeyId"), plaintext, _context(params))
        return _sealed_response(sealed)

    def decrypt(self, params: Params) -> Response:
        opened = self._keys.decrypt(_required(params, "CiphertextBlob"), _context(params))
        return {
            "KeyId": opened.key_id,
            "KeyVersionId": opened.key_version_id,
            "Plaintext": opened.plaintext.decode("utf-8", errors="replace"),
        }

    def re_encrypt(self, params: Params) -> Response:
        """Decrypt with the source context, encrypt under ``DestinationKeyId`` with its context.

        Names both keys (see the module docstring); in the published shape only the source key.
        """
        opened = self._keys.decrypt(_required(params, "CiphertextBlob"), _context(params, "SourceEncryptionContext"))
        sealed = self._keys.encrypt(
            _required(params, "DestinationKeyId"),
            opened.plaintext,
            _context(params, "DestinationEncryptionContext"),
        )
        if not self._reencrypt_names_source:
            return {
                "KeyId": opened.key_id,
                "KeyVersionId": opened.key_version_id,
                "CiphertextBlob": sealed.ciphertext_blob,
            }
        return {
            **_sealed_response(sealed),
            "SourceKeyId": opened.key_id,
            "SourceKeyVersionId": opened.key_version_id,
        }

    def describe_key(self, params: Params) -> Response:
        return {"KeyMetadata": self._keys.describe(_required(params, "KeyId"))}

    def create_key(self, params: Params) -> Response:
        spec = params.get("KeySpec") or "Aliyun_AES_256"
        if spec != "Aliyun_AES_256":
            raise invalid_parameter("KeySpec", "only Aliyun_AES_256 is supported by the local server.")
        key = self._keys.create_key(description=params.get("Description") or "")
        return {"KeyMetadata": self._keys.describe(key.key_id)}

    def create_alias(self, params: Params) -> Response:
        self._keys.create_alias(_required(params, "AliasName"), _required(params, "KeyId"))
        return {}

    def list_aliases(self, params: Params) -> Response:
        try:
            page_number = max(int(params.get("PageNumber") or 1), 1)
            page_size = min(max(int(params.get("PageSize") or 10), 1), 100)
        except ValueError:
            raise invalid_parameter("PageNumber/PageSize", "they must be integers.") from None
        aliases = self._keys.list_aliases()
        page = aliases[(page_number - 1) * page_size : page_number * page_size]
        return {
            "Aliases": {"Alias": page},
            "TotalCount": len(aliases),
            "PageNumber": page_number,
            "PageSize": page_size,
        }

    def create_key_version(self, params: Params) -> Response:
        key_id = _required(params, "KeyId")
        version = self._keys.rotate(key_id)
        metadata = self._keys.describe(key_id)
        return {
            "KeyVersion": {
                "KeyId": metadata["KeyId"],
                "KeyVersionId": version.version_id,
                "CreationDate": version.created,
            }
        }

    def enable_key(self, params: Params) -> Response:
        self._keys.set_enabled(_required(params, "KeyId"), True)
        return {}

    def disable_key(self, params: Params) -> Response:
        self._keys.set_enabled(_required(params, "KeyId"), False)
        return {}
