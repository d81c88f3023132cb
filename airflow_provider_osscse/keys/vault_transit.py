"""A CMK held in Vault Transit: the master key never leaves Vault.

Wrap-alg ``VAULT/TRANSIT`` (this project's own, documented in ``docs/key-custody.md`` so any reader
can add it): the data key and the IV are each sent as ``plaintext=base64(raw)`` to
``<mount>/encrypt/<key>`` in *one* batch call; the header bytes are the UTF-8 ``vault:vN:...``
ciphertext strings. Unwrap is one batch ``<mount>/decrypt/<key>`` call. Rotation is Vault's own
``rewrap`` (the data key is never exposed to us). The base ``new_content_key`` (local random key and
IV, one batch encrypt) is kept rather than ``datakey/plaintext``: that endpoint cannot also wrap the
IV, so it would cost two round trips per object instead of one.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_osscse.envelope.errors import KeyUnwrapError
from airflow_provider_osscse.envelope.keywrap import ContentKey, WrappedContentKey
from airflow_provider_osscse.keys.identified_cmk import IdentifiedCmk
from airflow_provider_osscse.keys.masking import mask_key_bytes
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy
from airflow_provider_osscse.keys.vault_calls import vault_call

if TYPE_CHECKING:
    import hvac

WRAP_ALG = "VAULT/TRANSIT"
_VERSION = re.compile(r"^vault:v(\d+):")


def transit_identity(mount: str, key_name: str) -> str:
    """The matdesc value naming a Transit key, independent of the Airflow connection used to reach it."""
    return f"vault-transit:{mount}/{key_name}"


class VaultTransitKey(IdentifiedCmk):
    """Wraps data keys with ``transit/encrypt`` under a named Transit key.

    ``client`` is an authenticated hvac client (from Airflow's ``VaultHook`` via ``resolve_cmk``, or
    any hvac client in tests). The client holds a token; this object refuses pickling so it cannot
    carry it into XCom or task state.
    """

    wrap_alg = WRAP_ALG

    def __init__(
        self,
        client: hvac.Client,
        *,
        mount: str = "transit",
        key_name: str,
        reference: str | None = None,
        matdesc: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._client = client
        self.mount = mount.strip("/")
        self.key_name = key_name
        self._set_identity(
            reference=reference or f"vault-transit://vault_default/{self.mount}/{key_name}",
            identity=transit_identity(self.mount, key_name), matdesc=matdesc,
        )
        self._retry = retry




    def _call(self, op: str, fn: Any, **kw: Any) -> Any:
        return vault_call(
            fn,
            reference=self._reference,
            path=f"{self.mount}/{op}/{self.key_name}",
            capability="update",
            retry=self._retry,
            **kw,
        )

    def wrap(self, content_key: ContentKey) -> WrappedContentKey:
        batch = [
            {"plaintext": base64.b64encode(content_key.key).decode("ascii")},
            {"plaintext": base64.b64encode(content_key.iv).decode("ascii")},
        ]
        response = self._call(
            "encrypt",
            lambda: self._client.secrets.transit.encrypt_data(
                self.key_name, batch_input=batch, mount_point=self.mount
            ),
        )
        key_ct, iv_ct = self._ciphertexts(response)
        return WrappedContentKey(WRAP_ALG, key_ct, iv_ct, self._matdesc)

    def wrap_ivs(
        self, data_key: bytes, ivs: Sequence[bytes], *, reuse: WrappedContentKey | None = None
    ) -> list[WrappedContentKey]:
        """ONE batch ``encrypt`` call for all ``ivs`` (plus the data key unless ``reuse`` is given).

        Every IV must be sealed under the same key version as the data key (``vault:vN:`` prefixes
        agree); after a rotation they differ and ``[]`` is returned so the caller starts a new data
        key under the new version. Used by the opt-in write cache (``keys.data_key_cache``).
        """
        if reuse is not None and not self.matches(reuse):
            raise ValueError(f"CMK {self._reference}: 'reuse' was not wrapped by this Transit key")
        values = ([] if reuse is not None else [data_key]) + list(ivs)
        batch = [{"plaintext": base64.b64encode(v).decode("ascii")} for v in values]
        response = self._call(
            "encrypt",
            lambda: self._client.secrets.transit.encrypt_data(
                self.key_name, batch_input=batch, mount_point=self.mount
            ),
        )
        results = response["data"]["batch_results"]
        if len(results) != len(values) or any(r.get("error") or not r.get("ciphertext") for r in results):
            raise KeyUnwrapError(f"Vault did not wrap the IVs under CMK {self._reference}")
        ciphertexts = [r["ciphertext"].encode("utf-8") for r in results]
        key_ct = reuse.wrapped_key if reuse is not None else ciphertexts.pop(0)
        version = _VERSION.match(key_ct.decode("ascii", "replace"))
        if version is None or any(
            (m := _VERSION.match(ct.decode("ascii", "replace"))) is None or m.group(1) != version.group(1)
            for ct in ciphertexts
        ):
            return []
        return [WrappedContentKey(WRAP_ALG, key_ct, ct, self._matdesc) for ct in ciphertexts]

    def _ciphertexts(self, response: Mapping[str, Any]) -> tuple[bytes, bytes]:
        results = response["data"]["batch_results"]
        if len(results) != 2 or any(r.get("error") or not r.get("ciphertext") for r in results):
            raise KeyUnwrapError(f"Vault did not wrap the data key under CMK {self._reference}")
        return results[0]["ciphertext"].encode("utf-8"), results[1]["ciphertext"].encode("utf-8")

    def unwrap(self, wrapped: WrappedContentKey) -> ContentKey:
        try:
            batch = [
                {"ciphertext": wrapped.wrapped_key.decode("ascii")},
                {"ciphertext": wrapped.wrapped_iv.decode("ascii")},
            ]
        except UnicodeDecodeError:
            raise KeyUnwrapError(
                f"CMK {self._reference}: wrapped values are not Vault ciphertexts (vault:vN:...)"
            ) from None
        response = self._call(
            "decrypt",
            lambda: self._client.secrets.transit.decrypt_data(
                self.key_name, batch_input=batch, mount_point=self.mount
            ),
            invalid_means_unwrap_failure=True,
        )
        results = response["data"]["batch_results"]
        try:
            if any(r.get("error") for r in results):
                raise ValueError
            key = base64.b64decode(results[0]["plaintext"], validate=True)
            iv = base64.b64decode(results[1]["plaintext"], validate=True)
            mask_key_bytes(key, iv)
            return ContentKey(key=key, iv=iv)
        except (ValueError, KeyError, IndexError):
            pass
        raise KeyUnwrapError(
            f"CMK {self._reference} could not unwrap the data key: wrong key or corrupted values"
        )

    def rewrap(self, wrapped: WrappedContentKey) -> WrappedContentKey:
        """Vault ``rewrap`` to the newest key version: the data key never leaves Vault."""
        batch = [
            {"ciphertext": wrapped.wrapped_key.decode("ascii")},
            {"ciphertext": wrapped.wrapped_iv.decode("ascii")},
        ]
        response = self._call(
            "rewrap",
            lambda: self._client.secrets.transit.rewrap_data(
                self.key_name, ciphertext="", batch_input=batch, mount_point=self.mount
            ),
            invalid_means_unwrap_failure=True,
        )
        key_ct, iv_ct = self._ciphertexts(response)
        return WrappedContentKey(WRAP_ALG, key_ct, iv_ct, {**wrapped.matdesc, **self._matdesc})

    def key_version(self, wrapped: WrappedContentKey) -> str | None:
        match = _VERSION.match(wrapped.wrapped_key.decode("ascii", "replace"))
        return f"v{match.group(1)}" if match else None

    def __reduce__(self) -> Any:
        raise TypeError("VaultTransitKey holds an authenticated Vault client and cannot be pickled")

