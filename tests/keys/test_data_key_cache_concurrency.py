"""The write cache never holds a lock across a key-service call (issue 14).

Observed: ``DataKeyCache`` wrapped IVs under a per-entry lock, so every thread writing under one CMK
waited for the call in progress. With a key service that wraps one IV per call (KMS: one
``Encrypt`` per IV) or a CMK without ``wrap_ivs`` (one ``wrap`` per object), 8 threads made their 8
calls one after another: cached writes ran at one object per round trip, whatever the threads.

Proved without timing: a real CMK (the local KMS server, a local RSA key, OpenBao's Transit) is
wrapped in :class:`GatedCmk`, whose calls stop at a gate inside the call. A barrier of 8 parties
only opens if 8 calls are in flight at once; an event holds one call while the test checks what
other threads can still do. Timeouts only bound a failing run.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import hvac
import pytest
from alibabacloud_kms20160120.client import Client as KmsClient
from alibabacloud_tea_openapi.utils_models import Config

from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey
from airflow_provider_osscse.keys.data_key_cache import DataKeyCache, DataKeyCacheLimits
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.keys.local_rsa import LocalRsaKey
from airflow_provider_osscse.keys.vault_transit import VaultTransitKey
from airflow_provider_osscse.testing.kms_server import LocalKMSServer
from tests.keys.rsa_forms import pem

_T = TypeVar("_T")
SMALL = DataKeyRequest(plaintext_size=1024)
THREADS = 8
FAILING_RUN_TIMEOUT = 10.0  # seconds; reached only when the cache serialises its callers


class GatedCmk(Cmk):
    """A real CMK whose ``wrap`` / ``wrap_ivs`` calls pass ``gate`` (when set) before returning, so
    a test decides how long a key-service call lasts. Counts calls (thread-safe)."""

    def __init__(self, inner: Cmk) -> None:
        self.inner, self.wrap_alg = inner, inner.wrap_alg
        self.gate: Callable[[], object] | None = None
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def reference(self) -> str:
        return self.inner.reference

    @property
    def matdesc(self) -> Mapping[str, str]:
        return self.inner.matdesc

    def _call(self, name: str, call: Callable[[], _T]) -> _T:
        result = call()  # NotImplementedError (no wrap_ivs) passes before the gate: no service call
        with self._lock:
            self.calls[name] += 1
        if self.gate is not None:
            self.gate()
        return result

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        return self._call("wrap", lambda: self.inner.wrap(data_key))

    def wrap_ivs(
        self, key_bytes: bytes, ivs: Sequence[bytes], *, reuse: WrappedDataKey | None = None
    ) -> list[WrappedDataKey]:
        return self._call("wrap_ivs", lambda: self.inner.wrap_ivs(key_bytes, ivs, reuse=reuse))

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        return self.inner.unwrap(wrapped)

    def matches(self, wrapped: WrappedDataKey) -> bool:
        return self.inner.matches(wrapped)


class CountingKmsClient:
    """The Tea KMS client, counting ``call_api`` by KMS action (thread-safe)."""

    def __init__(self, client: KmsClient) -> None:
        self._client = client
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def call_api(self, params: Any, request: Any, runtime: Any) -> Any:
        with self._lock:
            self.calls[params.action] += 1
        return self._client.call_api(params, request, runtime)


def write_concurrently(cache: DataKeyCache, cmk: Cmk, count: int) -> list[tuple[DataKey, WrappedDataKey]]:
    """``count`` threads each write one object under ``cmk``; raises the first thread's error."""
    results: list[tuple[DataKey, WrappedDataKey]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def write() -> None:
        try:
            item = cache.new_data_key(cmk, SMALL)
        except BaseException as error:  # noqa: BLE001 - reported to the test below
            with lock:
                errors.append(error)
            return
        with lock:
            results.append(item)

    threads = [threading.Thread(target=write) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=3 * FAILING_RUN_TIMEOUT)
    if errors:
        raise errors[0]
    assert len(results) == count
    return results


def check_objects(results: list[tuple[DataKey, WrappedDataKey]], reader: Cmk) -> None:
    """Distinct IVs; every object decrypts through the plain (uncached) CMK."""
    assert len({data_key.iv for data_key, _ in results}) == len(results)
    for index, (data_key, wrapped) in enumerate(results):
        plaintext = f"object {index}".encode()
        ciphertext = CtrCipher(data_key.key, data_key.iv).update(plaintext)
        unwrapped = reader.unwrap(wrapped)
        assert CtrCipher(unwrapped.key, unwrapped.iv).update(ciphertext) == plaintext


@pytest.fixture
def kms_cmk(osscse_kms_server: LocalKMSServer) -> tuple[AlicloudKmsKey, CountingKmsClient]:
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
    return AlicloudKmsKey(counted, key_id=alias), counted


def test_kms_one_iv_per_call_eight_threads_have_their_eight_calls_in_flight_at_once(
    kms_cmk: tuple[AlicloudKmsKey, CountingKmsClient],
) -> None:
    kms, counted = kms_cmk
    cmk = GatedCmk(kms)
    cache = DataKeyCache(DataKeyCacheLimits(iv_batch_size=50))
    first = cache.new_data_key(cmk, SMALL)  # warm: the data key is wrapped once, KMS wraps one IV per call
    counted.calls.clear()
    cmk.gate = threading.Barrier(THREADS, timeout=FAILING_RUN_TIMEOUT).wait  # opens only for 8 at once
    results = write_concurrently(cache, cmk, THREADS)
    assert counted.calls == {"Encrypt": THREADS}  # one per IV; the data key's wrapping is reused
    assert {data_key.key for data_key, _ in results} == {first[0].key}
    assert cache.stats() == {"entries": 1, "hits": THREADS, "misses": 1, "uncached": 0, "iv_batches": 1 + THREADS}
    check_objects([first, *results], kms)


def test_a_cmk_without_wrap_ivs_wraps_for_eight_threads_at_once() -> None:
    rsa = LocalRsaKey(private_key_pem=pem(1, "pkcs8"), reference="rsa-1")
    cmk = GatedCmk(Keyring(rsa))  # a Keyring does not batch: one ``wrap`` per object
    cache = DataKeyCache(DataKeyCacheLimits(iv_batch_size=10))
    first = cache.new_data_key(cmk, SMALL)
    cmk.gate = threading.Barrier(THREADS, timeout=FAILING_RUN_TIMEOUT).wait
    results = write_concurrently(cache, cmk, THREADS)
    assert cmk.calls["wrap"] == 1 + THREADS
    assert {data_key.key for data_key, _ in results} == {first[0].key}
    check_objects([first, *results], rsa)


@pytest.mark.parametrize("state", ["cold", "exhausted"])
def test_a_batching_cmk_makes_one_call_for_eight_waiting_threads_and_other_scopes_are_not_blocked(
    state: str, vault_root: hvac.Client, transit_key: str
) -> None:
    transit = GatedCmk(VaultTransitKey(vault_root, key_name=transit_key))
    other = LocalRsaKey(private_key_pem=pem(0, "pkcs8"), reference="rsa-0")
    cache = DataKeyCache(DataKeyCacheLimits(iv_batch_size=THREADS))
    cache.new_data_key(other, SMALL)  # another scope, warm: 7 IVs left in its pool
    earlier: list[tuple[DataKey, WrappedDataKey]] = []
    if state == "exhausted":
        earlier = [cache.new_data_key(transit, SMALL) for _ in range(THREADS)]  # its pool is now empty
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        inside.set()
        assert release.wait(timeout=3 * FAILING_RUN_TIMEOUT)

    transit.gate = hold
    before = transit.calls["wrap_ivs"]
    results: list[tuple[DataKey, WrappedDataKey]] = []
    writers = threading.Thread(target=lambda: results.extend(write_concurrently(cache, transit, THREADS)))
    writers.start()
    try:
        assert inside.wait(timeout=FAILING_RUN_TIMEOUT)  # one thread is inside the Transit call
        # while it is held: the other scope's writes (pool hits) and the stats go through
        hits: list[tuple[DataKey, WrappedDataKey]] = []
        other_writer = threading.Thread(target=lambda: hits.extend(cache.new_data_key(other, SMALL) for _ in range(3)))
        other_writer.start()
        other_writer.join(timeout=FAILING_RUN_TIMEOUT)
        assert not other_writer.is_alive() and len(hits) == 3
        assert cache.stats()["hits"] >= 3
        assert not release.is_set() and transit.calls["wrap_ivs"] == before + 1
    finally:
        release.set()
        writers.join(timeout=3 * FAILING_RUN_TIMEOUT)
    assert transit.calls["wrap_ivs"] == before + 1  # the 7 others waited for that one call
    keys = {data_key.key for data_key, _ in results}
    assert len(results) == THREADS and len(keys) == 1
    check_objects(earlier + results, VaultTransitKey(vault_root, key_name=transit_key))
    check_objects(hits, other)
