"""The hook's opt-in data-key cache: many small objects share a data key, each with its own IV."""

from __future__ import annotations

import io
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.keys.data_key_cache import DataKeyCacheLimits

from .conftest import BUCKET

KEY_HEADER = "x-oss-meta-client-side-encryption-key"
START_HEADER = "x-oss-meta-client-side-encryption-start"


def _headers(oss_env: Any, key: str) -> dict[str, str]:
    return oss_env.stored_object(BUCKET, key).metadata


def test_hook_with_data_key_cache_shares_one_data_key_across_small_objects_with_distinct_ivs(
    make_hook: Callable[..., EncryptedOSSHook],
    transit_ref: Callable[[str], str],
    oss_env: Any,
) -> None:
    cmk = transit_ref("hook-dk-cache")
    cached = make_hook(cmk=cmk, data_key_cache=DataKeyCacheLimits(max_objects=5, iv_batch_size=5))
    keys = [f"dk-cache/obj-{i}" for i in range(7)]
    for i, key in enumerate(keys):
        cached.upload(io.BytesIO(f"row {i}".encode()), key)
    wrapped_keys = [_headers(oss_env, k)[KEY_HEADER] for k in keys]
    starts = [_headers(oss_env, k)[START_HEADER] for k in keys]
    assert len(set(wrapped_keys[:5])) == 1, "the first five objects share the cached data key"
    assert wrapped_keys[5] != wrapped_keys[0], "max_objects=5 forces a new data key for the sixth"
    assert len(set(starts)) == len(keys), "every object has its own wrapped IV"
    plain = make_hook(cmk=cmk, integrity="require")  # an ordinary hook, no cache, reads them all
    assert [plain.read(k) for k in keys] == [f"row {i}".encode() for i in range(7)]


def test_hook_without_data_key_cache_gives_every_object_its_own_data_key(
    make_hook: Callable[..., EncryptedOSSHook],
    transit_ref: Callable[[str], str],
    oss_env: Any,
) -> None:
    hook = make_hook(cmk=transit_ref("hook-dk-nocache"))
    for i in range(3):
        hook.upload(io.BytesIO(b"x"), f"dk-nocache/{i}")
    assert len({_headers(oss_env, f"dk-nocache/{i}")[KEY_HEADER] for i in range(3)}) == 3


def _requests_to(address: str, monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every HTTP request this process sends to ``address`` (OpenBao), as ``"METHOD /path"``: the
    calls go through unchanged, only counted (whatever client the hook's Vault connection built)."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()
    send = requests.Session.send

    def counting_send(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any) -> Any:
        if (request.url or "").startswith(address):
            with lock:
                calls[f"{request.method} {urlsplit(request.url).path}"] += 1
        return send(self, request, **kwargs)

    monkeypatch.setattr(requests.Session, "send", counting_send)
    return calls


def test_hook_with_data_key_cache_rewraps_transit_objects_with_vault_rewrap_never_decrypting(
    make_hook: Callable[..., EncryptedOSSHook],
    transit_ref: Any,
    osscse_openbao: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"dk-cache-rotating-{uuid.uuid4().hex[:8]}"  # its own key: this test rotates it
    ref = transit_ref(name)
    cached = make_hook(cmk=ref, data_key_cache=DataKeyCacheLimits(max_objects=5, iv_batch_size=5))
    cached.upload(io.BytesIO(b"row 1"), "dk-cache/rewrap")
    transit_ref.client.secrets.transit.rotate_key(name)
    calls = _requests_to(osscse_openbao.address, monkeypatch)
    result = cached.rewrap("dk-cache/rewrap")
    assert result.status == "rewrapped" and (result.from_version, result.to_version) == ("v1", "v2")
    assert calls[f"POST /v1/transit/rewrap/{name}"] == 1, dict(calls)
    assert not [c for c in calls if "/decrypt/" in c or "/encrypt/" in c], "the data key never left Vault"
    assert make_hook(cmk=ref, integrity="require").read("dk-cache/rewrap") == b"row 1"
