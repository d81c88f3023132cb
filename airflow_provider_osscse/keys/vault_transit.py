"""A CMK held in Vault Transit: the master key never leaves Vault.

Wrap-alg ``VAULT/TRANSIT`` (this project's own, documented in ``docs/key-custody.md`` so any reader
can add it): the data key and the IV are each sent as ``plaintext=base64(raw)`` to
``<mount>/encrypt/<key>`` in *one* batch call; the header bytes are the UTF-8 ``vault:vN:...``
ciphertext strings. Unwrap is one batch ``<mount>/decrypt/<key>`` call. Bulk operations
(``new_data_keys``, ``unwrap_many``, ``rewrap_many``) put up to :data:`TRANSIT_BATCH_OBJECTS`
objects in one call, each object's failure reported as its own. Rotation is Vault's own
``rewrap`` (the data key is never exposed to us). The base ``new_data_key`` (local random key and
IV, one batch encrypt) is kept rather than ``datakey/plaintext``: that endpoint cannot also wrap the
IV, so it would cost two round trips per object instead of one.

Never creating a key: Transit *upserts* on encrypt (a token with ``create`` on
``<mount>/encrypt/<key>``, e.g. root, silently creates a missing key), so a typo in a reference
would fork key custody: objects sealed under a key nobody provisioned or backs up. Before its first
encrypt each instance therefore reads ``<mount>/keys/<key>`` once (capability ``read``; the answer is
key metadata, never key material) and refuses a missing key with :class:`KeyNotFoundError` before
anything is written. Only the positive answer is cached. Decrypt and rewrap never upsert, so readers
and rotators skip the check and need no ``read``. The writer policy in ``docs/key-custody.md`` also
grants only ``update`` (not ``create``) on the encrypt path, so Vault itself refuses to upsert.

Objects carry the identity ``vault-transit:<mount>/<key>`` and the key version ``vN`` of the
``vault:vN:`` prefix (``x-oss-meta-osscse-cmk`` / ``-cmk-version``); the prefix is authoritative.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

# The module-wide name of the one wrap-alg constant (envelope.headers owns the value).
from airflow_provider_osscse.envelope.headers import WRAP_ALG_VAULT_TRANSIT
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.exceptions import (
    KeyPermissionError,
    KeyServiceError,
    KeyUnwrapError,
    OSSCSEError,
)
from airflow_provider_osscse.keys.identified_cmk import IdentifiedCmk
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy
from airflow_provider_osscse.keys.vault_calls import vault_call
from airflow_provider_osscse.keys.vault_transit_batch import TRANSIT_BATCH_OBJECTS, data_key_of, per_object

if TYPE_CHECKING:
    import hvac

_VERSION = re.compile(r"^vault:v(\d+):")
_R = TypeVar("_R")


def transit_identity(mount: str, key_name: str) -> str:
    """The identity (``x-oss-meta-osscse-cmk``) naming a Transit key, independent of the Airflow
    connection used to reach it."""
    return f"vault-transit:{mount}/{key_name}"


def ciphertext_version(ciphertext: bytes) -> str | None:
    """``vN`` of a Transit ciphertext ``vault:vN:...``, or ``None`` when it is not one."""
    match = _VERSION.match(ciphertext.decode("ascii", "replace"))
    return f"v{match.group(1)}" if match else None


def transit_key_version(wrapped: WrappedDataKey) -> str | None:
    """The Transit key version that wrapped the data key: the ``vault:vN:`` prefix of the wrapped key
    (the ciphertext is authoritative), the recorded ``cmk_version`` only when the value is not a
    Transit ciphertext. The one answer, whether a :class:`VaultTransitKey` is at hand or not."""
    return ciphertext_version(wrapped.wrapped_key) or wrapped.cmk_version


def _connection_of(reference: str) -> str:
    """The Airflow connection id a ``vault-transit://<conn>/...`` reference names, for messages."""
    parts = urlsplit(reference)
    return parts.netloc if parts.scheme == "vault-transit" and parts.netloc else "(not named by the reference)"


class VaultTransitKey(IdentifiedCmk):
    """Wraps data keys with ``transit/encrypt`` under a named Transit key.

    ``client`` is an authenticated hvac client (from Airflow's ``VaultHook`` via ``resolve_cmk``, or
    any hvac client in tests). The client holds a token; this object refuses pickling so it cannot
    carry it into XCom or task state.
    """

    wrap_alg = WRAP_ALG_VAULT_TRANSIT

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
            identity=transit_identity(self.mount, key_name),
            matdesc=matdesc,
        )
        self._retry = retry
        self._exists_lock = threading.Lock()
        self._key_checked = threading.Event()  # set once the key was seen; read without the lock
        self._latest: str | None = None  # vN, as the last read of the key said

    def _ensure_key_exists(self) -> None:
        """Read ``<mount>/keys/<key>`` once per instance; refuse a missing key before any encrypt.

        Transit would otherwise create the key on encrypt (for tokens allowed ``create``). Only a
        positive answer is cached, so a key created after a failure is found on the next attempt.
        """
        if self._key_checked.is_set():
            return
        with self._exists_lock:
            if self._key_checked.is_set():
                return
            import hvac.exceptions as hx

            path = f"{self.mount}/keys/{self.key_name}"
            forbidden = object()

            def read() -> Any:
                try:
                    return self._client.secrets.transit.read_key(self.key_name, mount_point=self.mount)
                except hx.Forbidden:
                    return forbidden  # answered below, without chaining hvac's exception

            conn = _connection_of(self._reference)
            response = vault_call(
                read,
                reference=self._reference,
                path=path,
                capability="read",
                retry=self._retry,
                not_found=(
                    f"CMK {self._reference}: Transit key '{self.key_name}' does not exist on mount "
                    f"'{self.mount}' of Vault connection '{conn}' (or the mount does not exist); nothing "
                    f"was encrypted under it. This package never creates keys: create it with "
                    f"`bao write -f {path}` (or `vault write -f {path}`), or correct the key name in "
                    "the CMK reference."
                ),
            )
            if response is forbidden:
                raise KeyPermissionError(
                    f"permission denied for CMK {self._reference}: the Vault token of connection "
                    f"'{conn}' lacks the 'read' capability on '{path}'. Writers need it: the key's "
                    "existence is checked before the first encrypt, because Transit would create a "
                    f'missing key. Add `path "{path}" {{ capabilities = ["read"] }}` to the writer '
                    "policy (docs/key-custody.md, least privilege); nothing was encrypted."
                )
            data = (response or {}).get("data") or {}
            if data.get("supports_encryption") is False:
                raise KeyServiceError(
                    f"CMK {self._reference}: Transit key '{self.key_name}' on mount '{self.mount}' is "
                    f"of type '{data.get('type')}', which cannot encrypt; use an encryption key type "
                    "such as aes256-gcm96"
                )
            self._note_latest(data)
            self._key_checked.set()

    def _note_latest(self, key_data: Mapping[str, Any]) -> None:
        latest = key_data.get("latest_version")
        if isinstance(latest, int) and latest > 0:
            self._latest = f"v{latest}"

    def latest_version(self) -> str | None:
        """``vN`` of the key's newest version: one read of ``<mount>/keys/<key>`` per call."""
        self._key_checked.clear()  # re-read the key (its existence check records the newest version)
        self._ensure_key_exists()
        if self._latest is None:
            raise KeyServiceError(f"CMK {self._reference}: Vault did not say the Transit key's latest version")
        return self._latest

    def _call(self, op: str, fn: Any, **kw: Any) -> Any:
        return vault_call(
            fn,
            reference=self._reference,
            path=f"{self.mount}/{op}/{self.key_name}",
            capability="update",
            retry=self._retry,
            **kw,
        )

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        self._ensure_key_exists()
        batch = [
            {"plaintext": base64.b64encode(data_key.key).decode("ascii")},
            {"plaintext": base64.b64encode(data_key.iv).decode("ascii")},
        ]
        response = self._call(
            "encrypt",
            lambda: self._client.secrets.transit.encrypt_data(self.key_name, batch_input=batch, mount_point=self.mount),
        )
        key_ct, iv_ct = self._ciphertexts(response)
        return self._wrapped(key_ct, iv_ct, ciphertext_version(key_ct))

    def wrap_ivs(
        self, key_bytes: bytes, ivs: Sequence[bytes], *, reuse: WrappedDataKey | None = None
    ) -> list[WrappedDataKey]:
        """ONE batch ``encrypt`` call for all ``ivs`` (plus the data key unless ``reuse`` is given).

        Every IV must be sealed under the same key version as the data key (``vault:vN:`` prefixes
        agree); after a rotation they differ and ``[]`` is returned so the caller starts a new data
        key under the new version. Used by the opt-in write cache (``keys.data_key_cache``).
        """
        if reuse is not None and not self.matches(reuse):
            raise ValueError(f"CMK {self._reference}: 'reuse' was not wrapped by this Transit key")
        self._ensure_key_exists()
        values = ([] if reuse is not None else [key_bytes]) + list(ivs)
        batch = [{"plaintext": base64.b64encode(v).decode("ascii")} for v in values]
        response = self._call(
            "encrypt",
            lambda: self._client.secrets.transit.encrypt_data(self.key_name, batch_input=batch, mount_point=self.mount),
        )
        results = response["data"]["batch_results"]
        if len(results) != len(values) or any(r.get("error") or not r.get("ciphertext") for r in results):
            raise KeyUnwrapError(f"Vault did not wrap the IVs under CMK {self._reference}")
        ciphertexts = [r["ciphertext"].encode("utf-8") for r in results]
        key_ct = reuse.wrapped_key if reuse is not None else ciphertexts.pop(0)
        version = ciphertext_version(key_ct)
        if version is None or any(ciphertext_version(ct) != version for ct in ciphertexts):
            return []
        return [self._wrapped(key_ct, ct, version) for ct in ciphertexts]

    def _ciphertexts(self, response: Mapping[str, Any]) -> tuple[bytes, bytes]:
        results = response["data"]["batch_results"]
        if len(results) != 2 or any(r.get("error") or not r.get("ciphertext") for r in results):
            raise KeyUnwrapError(f"Vault did not wrap the data key under CMK {self._reference}")
        return results[0]["ciphertext"].encode("utf-8"), results[1]["ciphertext"].encode("utf-8")

    def _ciphertext_batch(self, wrapped: WrappedDataKey) -> list[dict[str, str]]:
        """The wrapped data key and IV as one Vault batch (decrypt and rewrap take the same input)."""
        try:
            return [
                {"ciphertext": wrapped.wrapped_key.decode("ascii")},
                {"ciphertext": wrapped.wrapped_iv.decode("ascii")},
            ]
        except UnicodeDecodeError:
            raise KeyUnwrapError(
                f"CMK {self._reference}: wrapped values are not Vault ciphertexts (vault:vN:...)"
            ) from None

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        return _one_result(self.unwrap_many([wrapped]))

    # -- many objects: one batch call per TRANSIT_BATCH_OBJECTS objects ----------------------------
    def _send(self, op: str) -> Callable[[list[dict[str, str]]], list[Mapping[str, Any]]]:
        return lambda items: self._batch(op, items, invalid_means_unwrap_failure=True)

    def _batch(self, op: str, items: list[dict[str, str]], **kw: Any) -> list[Mapping[str, Any]]:
        """One ``batch_input`` call; each item's result (``error`` set for an item that failed).

        ``partial_failure_response_code=200``: without it Vault answers 400 to a batch where some
        items failed, and the per-item results (which the other objects need) are lost.
        """
        body = {"batch_input": items, "partial_failure_response_code": 200}
        response = self._call(
            op,
            lambda: self._client.adapter.post(f"/v1/{self.mount}/{op}/{self.key_name}", json=body),
            **kw,
        )
        results = (response or {}).get("data", {}).get("batch_results") or []
        if len(results) != len(items):
            raise KeyServiceError(
                f"CMK {self._reference}: Vault answered {len(results)} results to a batch of {len(items)} "
                f"on {self.mount}/{op}/{self.key_name}"
            )
        return list(results)

    def new_data_keys(self, requests: Sequence[DataKeyRequest]) -> list[tuple[DataKey, WrappedDataKey]]:
        """Data keys made here, wrapped by ONE ``encrypt`` call per :data:`TRANSIT_BATCH_OBJECTS`."""
        self._ensure_key_exists()
        count = len(requests)
        made: list[tuple[DataKey, WrappedDataKey]] = []
        for start in range(0, count, TRANSIT_BATCH_OBJECTS):
            keys = [DataKey.generate() for _ in range(min(TRANSIT_BATCH_OBJECTS, count - start))]
            items = [{"plaintext": base64.b64encode(v).decode("ascii")} for k in keys for v in (k.key, k.iv)]
            results = self._batch("encrypt", items)
            for index, data_key in enumerate(keys):
                pair = results[2 * index : 2 * index + 2]
                if any(r.get("error") or not r.get("ciphertext") for r in pair):
                    raise KeyServiceError(f"Vault did not wrap the data keys under CMK {self._reference}")
                key_ct, iv_ct = (r["ciphertext"].encode("utf-8") for r in pair)
                made.append((data_key, self._wrapped(key_ct, iv_ct, ciphertext_version(key_ct))))
        return made

    def unwrap_many(self, wrapped: Sequence[WrappedDataKey]) -> list[DataKey | OSSCSEError]:
        """ONE ``decrypt`` call per :data:`TRANSIT_BATCH_OBJECTS` objects; errors stay per object."""
        return per_object(
            wrapped,
            self._send("decrypt"),
            lambda _wrapped, pair: data_key_of(pair, self._reference),
            items_of=self._ciphertext_batch,
            op="decrypt",
            reference=self._reference,
        )

    def rewrap_many_from(self, wrapped: Sequence[WrappedDataKey], source: Cmk) -> list[WrappedDataKey | OSSCSEError]:
        """Vault ``rewrap`` in batches when ``source`` is this Transit key (data keys never leave
        Vault); the objects of any other CMK take the one-object path."""
        native = [self._native_source(w, source) for w in wrapped]
        if not any(native):
            return self._rewrap_by_unwrap(wrapped, source)
        results: list[WrappedDataKey | OSSCSEError | None] = [None] * len(wrapped)
        indexes = [i for i, n in enumerate(native) if n]
        moved = per_object(
            [wrapped[i] for i in indexes],
            self._send("rewrap"),
            self._rewrapped,
            items_of=self._ciphertext_batch,
            op="rewrap",
            reference=self._reference,
        )
        for index, outcome in zip(indexes, moved, strict=True):
            results[index] = outcome
        others = [i for i, n in enumerate(native) if not n]
        for index, outcome in zip(others, self._rewrap_by_unwrap([wrapped[i] for i in others], source), strict=True):
            results[index] = outcome
        return [r for r in results if r is not None]

    def _rewrap_by_unwrap(self, wrapped: Sequence[WrappedDataKey], source: Cmk) -> list[WrappedDataKey | OSSCSEError]:
        """From another CMK: unwrap there (batched if it can), wrap here (one encrypt per object)."""
        outcomes: list[WrappedDataKey | OSSCSEError] = []
        for data_key in source.unwrap_many(wrapped):
            try:
                outcomes.append(data_key if isinstance(data_key, OSSCSEError) else self.wrap(data_key))
            except OSSCSEError as exc:
                outcomes.append(exc)
        return outcomes

    def _native_source(self, wrapped: WrappedDataKey, source: Cmk) -> bool:
        """Whether ``source`` holds ``wrapped`` under this very Transit key (so Vault can rewrap it)."""
        try:
            return source.cmk_for(wrapped).rewrap_domain == self.rewrap_domain
        except OSSCSEError:  # no member for it: the one-object path reports that object's error
            return False

    def _rewrapped(self, wrapped: WrappedDataKey, pair: list[Mapping[str, Any]]) -> WrappedDataKey:
        if not all(isinstance(r.get("ciphertext"), str) and r["ciphertext"] for r in pair):
            raise KeyUnwrapError(f"Vault did not rewrap the data key under CMK {self._reference}")
        key_ct, iv_ct = (r["ciphertext"].encode("utf-8") for r in pair)
        return WrappedDataKey(
            WRAP_ALG_VAULT_TRANSIT,
            key_ct,
            iv_ct,
            wrapped.matdesc,
            cmk_identity=self.identity,
            cmk_version=ciphertext_version(key_ct),
        )

    @property
    def rewrap_domain(self) -> str:
        """This one Transit key: Vault ``rewrap`` moves only a key's own ciphertexts."""
        return self.identity

    def rewrap_from(self, wrapped: WrappedDataKey, source: Cmk) -> WrappedDataKey:
        """Vault ``rewrap`` to the newest key version when ``source`` is this same Transit key
        (whatever keyring or cache holds it): the data key never leaves Vault. From any other CMK:
        unwrap there, wrap here.

        Needs only ``update`` on ``<mount>/rewrap/<key>`` (no decrypt). The result carries this
        key's identity, the new ``vN`` and the object's own user matdesc (not this instance's: the
        object keeps what its official readers were configured with).
        """
        return _one_result(self.rewrap_many_from([wrapped], source))

    def key_version(self, wrapped: WrappedDataKey) -> str | None:
        """``vN`` of the wrapped data key's ``vault:vN:`` prefix (the ciphertext is authoritative);
        the recorded ``cmk_version`` only when the value is not a Transit ciphertext."""
        return transit_key_version(wrapped)

    def __reduce__(self) -> Any:
        raise TypeError("VaultTransitKey holds an authenticated Vault client and cannot be pickled")


def _one_result(outcomes: Sequence[_R | OSSCSEError]) -> _R:
    """The one object's result of a one-object batch, or its error raised."""
    (outcome,) = outcomes
    if isinstance(outcome, OSSCSEError):
        raise outcome
    return outcome
