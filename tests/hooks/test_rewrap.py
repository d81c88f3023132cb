"""Rewrap changes only the wrapped data key: content, tag, metadata and content type stay."""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, WrappedDataKey
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.keys.reference import resolve_cmk

from .conftest import PART


@pytest.mark.parametrize("size", [0, 1000, 3 * PART + 5])
def test_rewrap_rsa_to_vault_keeps_content_metadata_and_tag(
    make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str, transit_ref: Any, size: int
) -> None:
    vault = transit_ref(f"rsa-to-vault-{size}")
    hook = make_hook(integrity="require")
    data = os.urandom(size)
    key = f"rewrap/rsa-vault/{size}"
    hook.upload(io.BytesIO(data), key, metadata={"owner": "team-a"}, content_type="text/csv")
    result = hook.rewrap(key, new_cmk=vault)
    assert result.status == "rewrapped" and result.from_cmk == rsa_ref and result.to_cmk == vault
    info = hook.inspect(key)
    assert info.wrap_alg == "VAULT/TRANSIT" and info.integrity_tag
    vault_only = make_hook(cmk=vault, integrity="require")
    assert vault_only.read(key) == data
    head = hook.get_bucket().head_object(key)
    assert head.headers["x-oss-meta-owner"] == "team-a" and head.headers["Content-Type"] == "text/csv"
    again = vault_only.rewrap(key)
    assert again.status == "already-current"


def test_rewrap_same_transit_key_moves_to_newest_version(
    make_hook: Callable[..., EncryptedOSSHook], transit_ref: Any
) -> None:
    name = f"rotating-{uuid.uuid4().hex[:8]}"  # its own key: this test rotates it
    ref = transit_ref(name)
    hook = make_hook(cmk=ref)
    data = os.urandom(3 * PART)
    hook.upload(io.BytesIO(data), "rewrap/rotate")
    assert hook.inspect("rewrap/rotate").key_version == "v1"
    transit_ref.client.secrets.transit.rotate_key(name)
    dry = hook.rewrap("rewrap/rotate", dry_run=True)
    assert dry.status == "would-rewrap" and hook.inspect("rewrap/rotate").key_version == "v1"
    result = hook.rewrap("rewrap/rotate")
    assert result.status == "rewrapped" and result.from_version == "v1" and result.to_version == "v2"
    assert hook.inspect("rewrap/rotate").key_version == "v2"
    assert hook.read("rewrap/rotate") == data


class _ChangesObjectDuringWrap(Cmk):
    """A real CMK that, while the key service call is in flight, lets another writer replace the object."""

    def __init__(self, inner: Cmk, on_wrap: Callable[[], None]) -> None:
        self._inner, self._on_wrap = inner, on_wrap
        self.wrap_alg = inner.wrap_alg

    @property
    def reference(self) -> str:
        return self._inner.reference

    @property
    def matdesc(self) -> Any:
        return self._inner.matdesc

    @property
    def identity(self) -> str | None:
        return self._inner.identity

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        self._on_wrap()
        return self._inner.wrap(data_key)

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        return self._inner.unwrap(wrapped)


@pytest.mark.parametrize("size", [0, 3 * PART])
def test_rewrap_fails_cleanly_when_object_changes_meanwhile(
    make_hook: Callable[..., EncryptedOSSHook], other_rsa_ref: str, size: int
) -> None:
    hook = make_hook()
    key = f"rewrap/race/{size}"
    hook.upload(io.BytesIO(os.urandom(size)), key)
    newer = os.urandom(500)
    writer = make_hook()
    inner = resolve_cmk(other_rsa_ref)
    # A race no server can time: the hook takes CMKs only by reference, so the one that lets the object
    # change during the wrap goes into its CMK cache under the target's reference.
    hook._cmk_cache[other_rsa_ref] = _ChangesObjectDuringWrap(inner, lambda: writer.upload(io.BytesIO(newer), key))  # noqa: SLF001
    result = hook.rewrap(key, new_cmk=other_rsa_ref)
    assert result.status == "failed" and "changed" in (result.error or "")
    assert hook.read(key) == newer  # the newer content survived
