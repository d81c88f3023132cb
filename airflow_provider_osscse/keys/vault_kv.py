"""An RSA key pair kept in a Vault KV v2 secret (fields ``private_key``, ``public_key``).

The wrap-alg is the official ``RSA/NONE/PKCS1Padding`` (wrapping is delegated to
:class:`~airflow_provider_osscse.keys.local_rsa.LocalRsaKey`), so every official SDK holding the
same key can read the objects. The PEM is read into task memory only, once per secret version per
provider instance, and registered with Airflow's masker. A secret with only ``public_key`` gives an
encrypt-only CMK (writers need not be able to read).

Versions: objects record the KV version that wrapped them (matdesc ``osscse-cmk-version``), so after
the key pair is rotated in Vault (a new secret version), old objects unwrap with the version they
name. A version pruned by ``max_versions`` or destroyed → :class:`KeyNotFoundError` saying so.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_osscse.envelope.matdesc import MATDESC_CMK_VERSION
from airflow_provider_osscse.envelope.errors import KeyNotFoundError
from airflow_provider_osscse.envelope.keywrap import ContentKey, KeyWrapper, WrappedContentKey
from airflow_provider_osscse.keys.identified_cmk import IdentifiedCmk
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy
from airflow_provider_osscse.keys.rsa_pem import normalize_rsa_pem
from airflow_provider_osscse.keys.vault_calls import vault_call

if TYPE_CHECKING:
    import hvac

WRAP_ALG = "RSA/NONE/PKCS1Padding"
#: At most this many secret versions are held in memory by one provider instance.
MAX_LOADED_VERSIONS = 4


def kv_identity(mount: str, secret_path: str) -> str:
    """matdesc value naming the secret (not the connection used to reach it)."""
    return f"vault-kv:{mount}/{secret_path}"


class VaultKvRsaKey(IdentifiedCmk):
    """RSA CMK loaded from ``<mount>/data/<secret_path>`` (optionally a pinned ``version``)."""

    wrap_alg = WRAP_ALG

    def __init__(
        self,
        client: hvac.Client,
        *,
        mount: str = "secret",
        secret_path: str,
        version: int | None = None,
        reference: str | None = None,
        matdesc: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self._client = client
        self.mount = mount.strip("/")
        self.secret_path = secret_path.strip("/")
        self.version = version
        suffix = f"?version={version}" if version else ""
        self._set_identity(
            reference=reference or f"vault-kv://vault_default/{self.mount}/{self.secret_path}{suffix}",
            identity=kv_identity(self.mount, self.secret_path),
            matdesc={k: v for k, v in (matdesc or {}).items() if k != MATDESC_CMK_VERSION},  # per object
        )
        self._retry = retry
        self._lock = threading.Lock()
        self._loaded: dict[int | None, tuple[int, KeyWrapper]] = {}



    def _load(self, version: int | None) -> tuple[int, KeyWrapper]:
        """(actual version, LocalRsaKey) for ``version`` (None: the configured or latest one)."""
        with self._lock:
            if version in self._loaded:
                return self._loaded[version]
        path = f"{self.mount}/data/{self.secret_path}"
        wanted = f"version {version} of " if version else ""
        response = vault_call(
            lambda: self._client.secrets.kv.v2.read_secret_version(
                path=self.secret_path, version=version, mount_point=self.mount,
                raise_on_deleted_version=True,
            ),
            reference=self._reference,
            path=path,
            capability="read",
            retry=self._retry,
            not_found=(
                f"CMK {self._reference}: {wanted}secret '{path}' not found "
                + ("(pruned by max_versions, deleted or destroyed?)" if version else "")
            ),
        )
        data = response["data"]["data"] or {}
        actual = int(response["data"]["metadata"]["version"])
        private = data.get("private_key")
        public = data.get("public_key")
        if not private and not public:
            raise KeyNotFoundError(
                f"CMK {self._reference}: secret '{path}' (version {actual}) has neither "
                "'private_key' nor 'public_key'"
            )
        try:
            pair = normalize_rsa_pem(
                private.encode("ascii") if private else None,
                public.encode("ascii") if public else None,
                source=f"CMK {self._reference} (version {actual})",
            )
        except ValueError as exc:
            raise KeyNotFoundError(str(exc)) from None
        from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

        entries = {**self._matdesc, MATDESC_CMK_VERSION: str(actual)}
        rsa_key = LocalRsaKey(
            private_key_pem=pair.private_pem, public_key_pem=pair.public_pem,
            reference=self._reference, matdesc=entries,
        )
        with self._lock:
            if len(self._loaded) >= MAX_LOADED_VERSIONS:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[version] = self._loaded[actual] = (actual, rsa_key)
        return actual, rsa_key

    def loaded_version(self) -> int:
        """The KV version this CMK wraps with (reads the secret on first use)."""
        return self._load(self.version)[0]

    def wrap(self, content_key: ContentKey) -> WrappedContentKey:
        actual, rsa_key = self._load(self.version)
        wrapped = rsa_key.wrap(content_key)
        return WrappedContentKey(
            WRAP_ALG, wrapped.wrapped_key, wrapped.wrapped_iv, {**self._matdesc, MATDESC_CMK_VERSION: str(actual)}
        )

    def wrap_ivs(
        self, data_key: bytes, ivs: Sequence[bytes], *, reuse: WrappedContentKey | None = None
    ) -> list[WrappedContentKey]:
        """Local RSA encryptions with the loaded key pair; ``[]`` if ``reuse`` names another KV version."""
        actual, rsa_key = self._load(self.version)
        entries = {**self._matdesc, MATDESC_CMK_VERSION: str(actual)}
        if reuse is not None and (not self.matches(reuse) or reuse.matdesc.get(MATDESC_CMK_VERSION) != str(actual)):
            return []
        return [
            WrappedContentKey(WRAP_ALG, w.wrapped_key, w.wrapped_iv, entries)
            for w in rsa_key.wrap_ivs(data_key, ivs, reuse=reuse)
        ]

    def unwrap(self, wrapped: WrappedContentKey) -> ContentKey:
        recorded = wrapped.matdesc.get(MATDESC_CMK_VERSION)
        version = int(recorded) if recorded and recorded.isdigit() and self.matches(wrapped) else self.version
        _, rsa_key = self._load(version)
        plain = WrappedContentKey(WRAP_ALG, wrapped.wrapped_key, wrapped.wrapped_iv, rsa_key.matdesc)
        return rsa_key.unwrap(plain)


    def key_version(self, wrapped: WrappedContentKey) -> str | None:
        return wrapped.matdesc.get(MATDESC_CMK_VERSION)

    def __reduce__(self) -> Any:
        raise TypeError("VaultKvRsaKey holds an RSA private key and cannot be pickled")
