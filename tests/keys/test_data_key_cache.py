"""The opt-in data-key caches against the real OpenBao and the local KMS server.

Write side (``DataKeyCache``): one data key reused within limits, a fresh IV per object, IVs wrapped
in batches; key-service calls are counted at the HTTP layer (hvac adapter) and at the KMS client.
Read side (``UnwrapCache``): repeat unwraps of one object cost no call (moved here from
``test_keyring_cache_rotation.py``).
"""

from __future__ import annotations

import base64
import logging
import math
import pickle
import threading
import time
import uuid
from collections import Counter
from typing import Any

import hvac
import pytest
from alibabacloud_kms20160120.client import Client as KmsClient
from alibabacloud_tea_openapi.utils_models import Config
from hvac.adapters import JSONAdapter

from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey
from airflow_provider_osscse.keys.caching_cmk import CachingCmk, with_data_key_cache
from airflow_provider_osscse.keys.data_key_cache import DataKeyCache, DataKeyCacheLimits
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.unwrap_cache import UnwrapCache, UnwrapCacheLimits
from airflow_provider_osscse.keys.vault_kv import VaultKvRsaKey
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from tests.keys.counting_key import CountingKey
from tests.keys.rsa_forms import pem

SMALL = 1024  # bytes per "small object"


def sized_data_key(cmk: Cmk, size: int | None) -> tuple[DataKey, WrappedDataKey]:
    """What a writer asks of any CMK: a data key for an object of ``size`` bytes (a request object)."""
    return cmk.new_data_key(DataKeyRequest(plaintext_size=size))


class CountingAdapter(JSONAdapter):
    """Counts every HTTP request the hvac client sends, by method and path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()
        self._calls_lock = threading.Lock()

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        with self._calls_lock:
            self.calls[f"{method.upper()} {url.split('?')[0].lstrip('/')}"] += 1
        return super().request(method, url, *args, **kwargs)


class CountingKmsClient:
    """Wraps the Tea KMS client; counts ``call_api`` by KMS action (the provider's only entry point)."""

    def __init__(self, client: KmsClient) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()

    def call_api(self, params: Any, request: Any, runtime: Any) -> Any:
        self.calls[params.action] += 1
        return self._client.call_api(params, request, runtime)


@pytest.fixture
def counted_transit(
    osscse_openbao, vault_root: hvac.Client, transit_key: str
) -> tuple[VaultTransitKey, CountingAdapter]:
    client = hvac.Client(url=osscse_openbao.address, token=vault_root.token, adapter=CountingAdapter)
    return VaultTransitKey(client, key_name=transit_key), client.adapter


def _encrypts(adapter: CountingAdapter, key_name: str) -> int:
    return adapter.calls[f"POST v1/transit/encrypt/{key_name}"]


def _secret_forms(*raw: bytes) -> list[str]:
    return [f for r in raw for f in (r.hex(), base64.b64encode(r).decode(), repr(r))]


def _check_objects(results: list[tuple[DataKey, WrappedDataKey]], reader: Cmk) -> None:
    """Every object decrypts through the ordinary provider; IVs distinct with bytes 8..11 zero."""
    ivs = [ck.iv for ck, _ in results]
    assert len(set(ivs)) == len(ivs) and all(iv[8:12] == b"\0\0\0\0" for iv in ivs)
    for index, (data_key, wrapped) in enumerate(results):
        plaintext = f"object {index}".encode() * 10
        ciphertext = CtrCipher(data_key.key, data_key.iv).update(plaintext)
        unwrapped = reader.unwrap(wrapped)
        assert unwrapped == data_key
        assert CtrCipher(unwrapped.key, unwrapped.iv).update(ciphertext) == plaintext


# ------------------------------------------------------------------------------ write: call counts
def test_transit_k_small_objects_cost_at_most_ceil_k_over_pool_calls(
    counted_transit: tuple[VaultTransitKey, CountingAdapter],
    vault_root: hvac.Client,
    transit_key: str,
) -> None:
    transit, adapter = counted_transit
    k, pool = 45, 10
    cmk = with_data_key_cache(transit, DataKeyCacheLimits(iv_batch_size=pool))
    results = [sized_data_key(cmk, SMALL) for _ in range(k)]
    assert _encrypts(adapter, transit_key) == math.ceil(k / pool) == 5
    assert adapter.calls[f"GET v1/transit/keys/{transit_key}"] == 1  # the key-exists check, once
    assert sum(adapter.calls.values()) == 5 + 1  # nothing else (no datakey)
    assert len({ck.key for ck, _ in results}) == 1 and len({w.wrapped_key for _, w in results}) == 1
    assert {w.wrapped_key[:9] for _, w in results} | {w.wrapped_iv[:9] for _, w in results} == {b"vault:v1:"}
    _check_objects(results, VaultTransitKey(vault_root, key_name=transit_key))  # uncached reader
    assert isinstance(cmk, CachingCmk) and cmk.cache is not None
    assert cmk.cache.stats() == {"entries": 1, "hits": k - 1, "misses": 1, "uncached": 0, "iv_batches": 5}


def test_cache_is_off_by_default_a_plain_provider_calls_the_service_every_time(
    counted_transit: tuple[VaultTransitKey, CountingAdapter],
    transit_key: str,
) -> None:
    transit, adapter = counted_transit
    assert with_data_key_cache(transit, None) is transit
    results = [sized_data_key(transit, SMALL) for _ in range(5)]
    results += [CachingCmk(transit).new_data_key(DataKeyRequest(plaintext_size=SMALL)) for _ in range(2)]
    assert _encrypts(adapter, transit_key) == 7
    assert len({ck.key for ck, _ in results}) == 7
    _check_objects(results, transit)


def test_kms_cache_saves_generate_data_key_but_keeps_one_encrypt_per_iv(osscse_kms_server) -> None:
    alias = f"alias/cmk-{uuid.uuid4().hex[:8]}"
    osscse_kms_server.create_key(alias=alias)
    tea = KmsClient(
        Config(
            access_key_id=osscse_kms_server.access_key_id,
            access_key_secret=osscse_kms_server.access_key_secret,
            endpoint=osscse_kms_server.endpoint,
            protocol="http",
            region_id=osscse_kms_server.region,
        )
    )
    counted = CountingKmsClient(tea)
    plain = AlicloudKmsKey(counted, key_id=alias)
    for _ in range(3):
        plain.new_data_key()
    assert counted.calls == {"GenerateDataKey": 3, "Encrypt": 3}  # uncached: two calls per object

    counted.calls.clear()
    cmk = with_data_key_cache(plain, DataKeyCacheLimits(iv_batch_size=50))
    results = [sized_data_key(cmk, SMALL) for _ in range(10)]
    assert counted.calls == {"Encrypt": 11}  # data key once + one per IV; no GenerateDataKey
    assert len({w.wrapped_key for _, w in results}) == 1
    assert {w.cmk_version for _, w in results} != {None}
    _check_objects(results, AlicloudKmsKey(tea, key_id=alias))


@pytest.mark.parametrize("kind", ["rsa", "vault-kv"])
def test_rsa_and_vault_kv_batch_locally_and_stay_readable(kind: str, vault_root: hvac.Client) -> None:
    if kind == "rsa":
        inner: Cmk = LocalRsaKey(private_key_pem=pem(0, "pkcs8"), reference="rsa-0")
    else:
        path = f"cse/rsa-{uuid.uuid4().hex[:8]}"
        vault_root.secrets.kv.v2.create_or_update_secret(path=path, secret={"private_key": pem(0, "pkcs8").decode()})
        inner = VaultKvRsaKey(vault_root, secret_path=path)
    cmk = with_data_key_cache(inner, DataKeyCacheLimits(iv_batch_size=4))
    results = [sized_data_key(cmk, SMALL) for _ in range(9)]
    assert len({w.wrapped_key for _, w in results}) == 1 and cmk.cache.stats()["iv_batches"] == 3  # type: ignore[attr-defined]
    if kind == "vault-kv":
        assert {w.cmk_version for _, w in results} == {"1"}
    _check_objects(results, inner)


def test_a_cmk_without_wrap_ivs_falls_back_to_one_wrap_per_object() -> None:
    rsa = LocalRsaKey(private_key_pem=pem(1, "pkcs8"), reference="rsa-1")
    keyring = Keyring(rsa)  # a Cmk that does not implement wrap_ivs
    cache = DataKeyCache(DataKeyCacheLimits(iv_batch_size=10))
    results = [cache.new_data_key(keyring, DataKeyRequest(plaintext_size=SMALL)) for _ in range(4)]
    assert len({ck.key for ck, _ in results}) == 1 and cache.stats()["iv_batches"] == 4
    _check_objects(results, rsa)


# ----------------------------------------------------------------------------------- write: limits
def _data_keys(results: list[tuple[DataKey, WrappedDataKey]]) -> list[int]:
    """Objects per data key, in order of first use."""
    return list(Counter(ck.key for ck, _ in results).values())


def test_object_byte_and_age_limits_each_force_a_new_data_key(
    counted_transit: tuple[VaultTransitKey, CountingAdapter],
    vault_root: hvac.Client,
    transit_key: str,
) -> None:
    transit, _ = counted_transit
    by_objects = with_data_key_cache(transit, DataKeyCacheLimits(max_objects=3, iv_batch_size=10))
    results = [sized_data_key(by_objects, 10) for _ in range(7)]
    assert _data_keys(results) == [3, 3, 1]

    by_bytes = with_data_key_cache(transit, DataKeyCacheLimits(max_bytes=100))
    sized = [sized_data_key(by_bytes, n) for n in (40, 40, 40, 100, 0)]
    assert _data_keys(sized) == [2, 1, 2]  # 40+40 | 40 (+100 > 100) | 100 + 0
    cache = by_bytes.cache  # type: ignore[attr-defined]
    sized_data_key(by_bytes, 101)  # larger than max_bytes: never cached
    sized_data_key(by_bytes, None)  # unknown size: never cached
    assert cache.stats()["uncached"] == 2

    by_age = with_data_key_cache(transit, DataKeyCacheLimits(max_age_seconds=0.2))
    first = [sized_data_key(by_age, 1) for _ in range(2)]
    time.sleep(0.25)
    later = sized_data_key(by_age, 1)
    assert first[0][0].key == first[1][0].key != later[0].key
    _check_objects(results + sized + first + [later], VaultTransitKey(vault_root, key_name=transit_key))


def test_transit_rotation_retires_the_data_key_at_the_next_batch(
    counted_transit: tuple[VaultTransitKey, CountingAdapter],
    vault_root: hvac.Client,
    transit_key: str,
) -> None:
    transit, _ = counted_transit
    cmk = with_data_key_cache(transit, DataKeyCacheLimits(iv_batch_size=2))
    before = [sized_data_key(cmk, SMALL) for _ in range(2)]
    vault_root.secrets.transit.rotate_key(transit_key)
    after = [sized_data_key(cmk, SMALL) for _ in range(2)]  # batch came back vault:v2: → new key
    assert {w.wrapped_key[:9] for _, w in before} == {b"vault:v1:"}
    assert {w.wrapped_key[:9] for _, w in after} == {w.wrapped_iv[:9] for _, w in after} == {b"vault:v2:"}
    assert before[0][0].key != after[0][0].key
    _check_objects(before + after, VaultTransitKey(vault_root, key_name=transit_key))


def test_limits_are_validated_and_the_overlap_bound_is_tiny() -> None:
    for bad in (
        {"max_age_seconds": 0},
        {"max_age_seconds": 7200},
        {"max_objects": 0},
        {"max_objects": 10**6},
        {"max_bytes": 0},
        {"max_bytes": 2**40},
        {"iv_batch_size": 0},
        {"max_cmks": 0},
    ):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be in"):
            DataKeyCacheLimits(**bad)  # type: ignore[arg-type]
    defaults = DataKeyCacheLimits()
    assert (defaults.max_age_seconds, defaults.max_objects, defaults.max_bytes) == (60.0, 1000, 64 * 2**20)
    assert defaults.overlap_probability_bound() < 1e-19
    assert DataKeyCacheLimits(max_objects=100_000, max_bytes=4 * 2**30).overlap_probability_bound() < 2**-50


# ------------------------------------------------------------------------- write: threads, hygiene
def test_eight_threads_get_distinct_ivs_and_correct_counts(
    counted_transit: tuple[VaultTransitKey, CountingAdapter],
    vault_root: hvac.Client,
    transit_key: str,
) -> None:
    transit, adapter = counted_transit
    limits = DataKeyCacheLimits(max_objects=25, iv_batch_size=10)
    cmk = with_data_key_cache(transit, limits)
    results: list[tuple[DataKey, WrappedDataKey]] = []
    lock, start = threading.Lock(), threading.Barrier(8)

    def write() -> None:
        start.wait()
        for _ in range(12):
            item = sized_data_key(cmk, SMALL)
            with lock:
                results.append(item)

    threads = [threading.Thread(target=write) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 96 and len({ck.iv for ck, _ in results}) == 96
    per_key = _data_keys(results)
    assert sum(per_key) == 96 and max(per_key) <= 25 and len(per_key) >= math.ceil(96 / 25)
    stats = cmk.cache.stats()  # type: ignore[attr-defined]
    assert stats["hits"] + stats["misses"] == 96 and stats["misses"] == len(per_key)
    # every batch but the last of each data key wraps 10 IVs, all of them used
    assert _encrypts(adapter, transit_key) == stats["iv_batches"] <= sum(math.ceil(n / 10) for n in per_key)
    _check_objects(results, VaultTransitKey(vault_root, key_name=transit_key))


def test_caches_refuse_pickling_and_show_no_secret(
    counted_transit: tuple[VaultTransitKey, CountingAdapter],
    caplog: pytest.LogCaptureFixture,
) -> None:
    transit, _ = counted_transit
    cmk = with_data_key_cache(transit, DataKeyCacheLimits(), unwrap_limits=UnwrapCacheLimits())
    with caplog.at_level(logging.DEBUG):
        results = [sized_data_key(cmk, SMALL) for _ in range(3)]
        cmk.unwrap(results[0][1])
    assert isinstance(cmk, CachingCmk)
    for holder in (cmk, cmk.cache, cmk.unwrap_cache, DataKeyCache(), UnwrapCache()):
        with pytest.raises(TypeError, match="cannot be pickled"):
            pickle.dumps(holder)
    text = repr(cmk) + str(cmk) + repr(cmk.cache) + str(cmk.unwrap_cache) + caplog.text
    assert repr(cmk.cache).startswith("DataKeyCache(entries=1, hits=2, misses=1")
    forms = _secret_forms(*(b for ck, _ in results for b in (ck.key, ck.iv)))
    assert [f for f in forms if f in text] == []


# ------------------------------------------------------------------- read side (moved, renamed)
def test_unwrap_cache_serves_repeat_unwraps_without_a_service_call(vault_root: hvac.Client, transit_key: str) -> None:
    inner = CountingKey(VaultTransitKey(vault_root, key_name=transit_key))
    cache = UnwrapCache(UnwrapCacheLimits(max_age_seconds=60, max_entries=2))
    cmk = CachingCmk(inner, unwrap_cache=cache)
    data_keys = [DataKey.generate() for _ in range(3)]
    wrapped = [cmk.wrap(k) for k in data_keys]
    for _ in range(3):
        assert cmk.unwrap(wrapped[0]) == data_keys[0]
    assert inner.unwraps == 1 and cache.hits == 2
    cmk.unwrap(wrapped[1]), cmk.unwrap(wrapped[2])
    assert len(cache) == 2  # entry bound evicts the least recently used
    cmk.unwrap(wrapped[0])
    assert inner.unwraps == 4
    assert "DataKey" not in repr(cache) and repr(cache).startswith("UnwrapCache(entries=2")
    with pytest.raises(TypeError):
        pickle.dumps(cache)
    legacy = CachingCmk(inner, UnwrapCache())  # the pre-write-cache positional form: still reads
    assert legacy.unwrap_cache is not None and legacy.cache is None


def test_unwrap_cache_expires_entries_by_age_and_is_thread_safe() -> None:
    cache = UnwrapCache(UnwrapCacheLimits(max_age_seconds=0.05, max_entries=50))
    wrapped = [WrappedDataKey("X", bytes([i]), b"iv", {}) for i in range(40)]

    def fill() -> None:
        for w in wrapped:
            cache.put("ref", w, DataKey.generate())
            cache.get("ref", w)

    threads = [threading.Thread(target=fill) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(cache) == 40 and cache.get("ref", wrapped[0]) is not None
    assert cache.get("other-cmk", wrapped[0]) is None  # scoped by CMK reference
    time.sleep(0.06)
    assert cache.get("ref", wrapped[0]) is None
