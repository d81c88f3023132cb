"""An RSA key pair kept in a Vault KV v2 secret (fields ``private_key``, ``public_key``).

The wrap-alg is the official ``RSA/NONE/PKCS1Padding`` (wrapping is delegated to
:class:`~airflow_provider_osscse.keys.local_rsa.LocalRsaKey`), so every official SDK holding the
same key can read the objects. The PEM is read into task memory only, once per secret version per
provider instance, and registered with Airflow's masker.

Identity: the public key's fingerprint (``rsa-sha256:...``), not the secret's path. So a writer given
a secret holding only ``public_key`` (it need not be able to read anything) and a reader given the
key-pair secret name the same CMK, and a local ``rsa-file://`` copy of the pair matches too.

Versions: objects record the KV version of the secret that wrapped them
(``x-oss-meta-osscse-cmk-version``). After the key pair is rotated in Vault (a new secret version),
a reader looks for the object's key by fingerprint among that recorded version and the secret's
latest (or pinned) version. A version pruned by ``max_versions`` or destroyed is reported as such.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_osscse.envelope.headers import WRAP_ALG_RSA_PKCS1
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, WrappedDataKey
from airflow_provider_osscse.exceptions import InvalidKeyMaterialError, KeyNotFoundError, NoMatchingKeyError
from airflow_provider_osscse.keys.identified_cmk import ConfiguredCmk
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy
from airflow_provider_osscse.keys.rsa_pem import normalize_rsa_pem
from airflow_provider_osscse.keys.vault_calls import vault_call

if TYPE_CHECKING:
    import hvac

#: At most this many secret versions are held in memory by one provider instance.
MAX_LOADED_VERSIONS = 4


def legacy_kv_identity(mount: str, secret_path: str) -> str:
    """The identity earlier versions wrote (the secret's path); still accepted when reading."""
    return f"vault-kv:{mount}/{secret_path}"


class VaultKvRsaKey(ConfiguredCmk):
    """RSA CMK loaded from ``<mount>/data/<secret_path>`` (optionally a pinned ``version``)."""

    wrap_alg = WRAP_ALG_RSA_PKCS1

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
        allow_weak_key_for_unwrap: bool = False,
    ) -> None:
        """``allow_weak_key_for_unwrap``: the dangerous opt-in to read with a key pair under 2048 bits."""
        self._client = client
        self._allow_weak = allow_weak_key_for_unwrap
        self.mount = mount.strip("/")
        self.secret_path = secret_path.strip("/")
        self.version = version
        suffix = f"?version={version}" if version else ""
        self._configure(
            reference=reference or f"vault-kv://vault_default/{self.mount}/{self.secret_path}{suffix}",
            matdesc=matdesc,
        )
        self._legacy_identity = legacy_kv_identity(self.mount, self.secret_path)
        self._retry = retry
        self._lock = threading.Lock()
        self._loaded: dict[int | None, tuple[int, Cmk]] = {}

    def _load(self, version: int | None) -> tuple[int, Cmk]:
        """(actual version, LocalRsaKey) for ``version`` (None: the configured or latest one)."""
        with self._lock:
            if version in self._loaded:
                return self._loaded[version]
        path = f"{self.mount}/data/{self.secret_path}"
        wanted = f"version {version} of " if version else ""
        response = vault_call(
            lambda: self._client.secrets.kv.v2.read_secret_version(
                path=self.secret_path,
                version=version,
                mount_point=self.mount,
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
                f"CMK {self._reference}: secret '{path}' (version {actual}) has neither 'private_key' nor 'public_key'"
            )
        pair = normalize_rsa_pem(
            private.encode("ascii") if private else None,
            public.encode("ascii") if public else None,
            source=f"CMK {self._reference} (version {actual})",
        )
        from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

        rsa_key = LocalRsaKey(
            keys=pair.keys,  # already parsed and validated: not a second time
            reference=self._reference,
            matdesc=self._matdesc,
            allow_weak_key_for_unwrap=self._allow_weak,
        )
        with self._lock:
            if len(self._loaded) >= MAX_LOADED_VERSIONS:
                self._loaded.pop(next(iter(self._loaded)))
            self._loaded[version] = self._loaded[actual] = (actual, rsa_key)
        return actual, rsa_key

    @property
    def identity(self) -> str:
        """The fingerprint of the configured (or latest) version's public key; reads the secret once."""
        return self._load(self.version)[1].identity  # type: ignore[return-value]

    def loaded_version(self) -> int:
        """The KV version this CMK wraps with (reads the secret on first use)."""
        return self._load(self.version)[0]

    def _versioned(self, actual: int, wrapped: WrappedDataKey) -> WrappedDataKey:
        return WrappedDataKey(
            WRAP_ALG_RSA_PKCS1,
            wrapped.wrapped_key,
            wrapped.wrapped_iv,
            self._matdesc,
            cmk_identity=wrapped.cmk_identity,
            cmk_version=str(actual),
        )

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        actual, rsa_key = self._load(self.version)
        return self._versioned(actual, rsa_key.wrap(data_key))

    def wrap_ivs(
        self, key_bytes: bytes, ivs: Sequence[bytes], *, reuse: WrappedDataKey | None = None
    ) -> list[WrappedDataKey]:
        """Local RSA encryptions with the loaded key pair; ``[]`` if ``reuse`` names another KV version."""
        actual, rsa_key = self._load(self.version)
        if reuse is not None and (not rsa_key.matches(reuse) or reuse.cmk_version != str(actual)):
            return []
        return [self._versioned(actual, w) for w in rsa_key.wrap_ivs(key_bytes, ivs, reuse=reuse)]

    def _key_for(self, wrapped: WrappedDataKey) -> Cmk | None:
        """The loaded version whose key wrapped ``wrapped``: the recorded version, then the current one."""
        if wrapped.wrap_alg != WRAP_ALG_RSA_PKCS1:
            return None
        recorded = wrapped.cmk_version
        versions: list[int | None] = [int(recorded)] if recorded and recorded.isdigit() else []
        versions.append(self.version)
        for version in dict.fromkeys(versions):
            try:
                _, rsa_key = self._load(version)
            except (KeyNotFoundError, InvalidKeyMaterialError):
                if version == self.version:
                    raise
                continue
            if wrapped.cmk_identity == self._legacy_identity or rsa_key.matches(wrapped):
                return rsa_key
        return None

    def matches(self, wrapped: WrappedDataKey) -> bool:
        """By the public key's fingerprint (or the secret path earlier versions wrote); objects of the
        official SDKs (no identity) by the configured matdesc."""
        if wrapped.cmk_identity is None:
            return super().matches(wrapped)
        return self._key_for(wrapped) is not None

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        rsa_key = self._key_for(wrapped)
        if rsa_key is None:
            raise NoMatchingKeyError(
                f"CMK {self._reference}: neither version {wrapped.cmk_version or '?'} nor the current version "
                f"of secret '{self.mount}/{self.secret_path}' holds the key {wrapped.cmk_identity!r} the object names"
            )
        return rsa_key.unwrap(wrapped)

    def __reduce__(self) -> Any:
        raise TypeError("VaultKvRsaKey holds an RSA private key and cannot be pickled")
