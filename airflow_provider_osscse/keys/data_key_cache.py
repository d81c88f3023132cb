"""Optional, bounded, in-memory data-key caches. Both are off by default.

Two caches, both thread-safe, both refusing pickling, both with reprs that show counts only (the
read side lives in ``keys.unwrap_cache``; ``keys.caching_cmk.CachingCmk`` puts either around a CMK):

:class:`DataKeyCache` (writes, "many small objects")
    Reuses one data key, and its wrapped form, for up to ``max_objects`` objects /
    ``max_bytes`` plaintext bytes / ``max_age_seconds``, per (CMK reference, wrap-alg), like the AWS
    Encryption SDK's caching CMM. Every object still gets its own random IV (bytes 8..11 zero):
    AES-CTR with a reused key *and* IV would leak plaintext. IVs are wrapped by the CMK too (the
    format requires it), so they are wrapped ahead in batches of ``iv_batch_size`` through the
    optional :meth:`Cmk.wrap_ivs`: with Vault Transit, K small objects cost about
    ``ceil(K / iv_batch_size)`` ``transit/encrypt`` calls instead of K; with KMS one Encrypt per IV
    remains (only ``GenerateDataKey`` is saved); a CMK without ``wrap_ivs`` is asked to
    :meth:`~Cmk.wrap` per object (the data key is still reused, no call is saved).
    Objects of unknown size are never served from the cache (the byte bound could not hold).

:class:`UnwrapCache` (reads)
    Unwrapped keys by (CMK reference, wrap-alg, SHA-256 of the wrapped values), so re-reading the
    same object (ranged reads, sensors, lookup files) costs no key-service call.

Trade-off (``docs/key-custody.md``, "Data-key caches"): a compromised data key exposes every object
that shared it; a data key lives in process memory up to ``max_age_seconds``; revoking the CMK
takes effect when the entry expires (or, for writes, at the next IV batch). Hence hard, validated
limits, scoping by CMK reference and wrap-alg, and no serialization or logging of key material.

Wiring: ``keys.caching_cmk.with_data_key_cache`` wraps a resolved CMK in one line; writers pass the object's size
in the :class:`DataKeyRequest` of ``cmk.new_data_key(request)``, which every CMK accepts (only this
cache reads it). Rewrap goes straight to the wrapped CMK, so Transit ``rewrap`` and KMS ``ReEncrypt``
stay native behind the cache.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, NoReturn

from airflow_provider_osscse.envelope.keywrap import (
    DATA_KEY_SIZE,
    Cmk,
    DataKey,
    DataKeyRequest,
    WrappedDataKey,
    new_iv,
)

#: Hard ceilings a configuration may not exceed (validated in :class:`DataKeyCacheLimits`).
MAX_AGE_CEILING_SECONDS = 3600.0
MAX_OBJECTS_CEILING = 100_000
MAX_BYTES_CEILING = 4 * 2**30
MAX_IV_BATCH = 1000


# ---------------------------------------------------------------------------------------- writes
@dataclass(frozen=True)
class DataKeyCacheLimits:
    """Bounds on one cached data key (writes). Conservative defaults; validated on construction.

    ``max_age_seconds``: a data key is used for new objects at most this long after it was made.
    ``max_objects``: objects encrypted under one data key. ``max_bytes``: their plaintext bytes.
    ``iv_batch_size``: IVs wrapped per key-service call (capped by the objects the key has left).
    ``max_cmks``: distinct (CMK reference, wrap-alg) entries held (least recently used evicted).
    """

    max_age_seconds: float = 60.0
    max_objects: int = 1000
    max_bytes: int = 64 * 2**20
    iv_batch_size: int = 100
    max_cmks: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.max_age_seconds <= MAX_AGE_CEILING_SECONDS:
            raise ValueError(f"max_age_seconds must be in (0, {MAX_AGE_CEILING_SECONDS:g}]")
        if not 1 <= self.max_objects <= MAX_OBJECTS_CEILING:
            raise ValueError(f"max_objects must be in [1, {MAX_OBJECTS_CEILING}]")
        if not 1 <= self.max_bytes <= MAX_BYTES_CEILING:
            raise ValueError(f"max_bytes must be in [1, {MAX_BYTES_CEILING}]")
        if not 1 <= self.iv_batch_size <= MAX_IV_BATCH:
            raise ValueError(f"iv_batch_size must be in [1, {MAX_IV_BATCH}]")
        if not 1 <= self.max_cmks <= 1000:
            raise ValueError("max_cmks must be in [1, 1000]")

    def overlap_probability_bound(self) -> float:
        """Upper bound on the chance that two objects under one data key share AES-CTR keystream.

        IVs carry 96 random bits (bytes 0..7 and 12..15). Two objects' counter ranges can meet only
        if bytes 0..7 agree (2^-64) and their 32-bit start counters lie within their lengths in
        blocks (<= (L_i + L_j) / 2^32). Summed over pairs: <= (N - 1) * (B/16 + N) / 2^96.
        Defaults (1000 objects, 64 MiB): about 5.3e-20.
        """
        n = self.max_objects
        return (n - 1) * (math.ceil(self.max_bytes / 16) + n) / 2.0**96


@dataclass(eq=False)
class _WriteEntry:
    """One cached data key. ``key`` is secret; the dataclass repr is never used (see DataKeyCache)."""

    def __reduce__(self) -> NoReturn:  # pickle and copy would carry ``key``
        raise TypeError("a data-key cache entry holds a data key and cannot be pickled or copied")

    key: bytes = field(repr=False)
    created: float
    objects: int = 0  # objects reserved (each gets one IV)
    plaintext_bytes: int = 0  # plaintext bytes reserved
    prepared: int = 0  # IVs wrapped so far
    template: WrappedDataKey | None = None  # the wrapped data key + matdesc, for ``reuse``
    pool: deque[tuple[bytes, WrappedDataKey]] = field(default_factory=deque, repr=False)
    retired: bool = False  # no new objects; IVs for objects already reserved may still be wrapped
    dead: bool = False  # dropped (service error, rotation seen): reserved objects must start over
    filling: bool = False  # a batch is being wrapped: threads finding the pool empty wait for it
    batches: bool = True  # False once the CMK wrapped fewer IVs than asked (KMS) or has no wrap_ivs
    wraps_per_object: bool = False  # the CMK has no wrap_ivs: one ``wrap`` per object


class DataKeyCache:
    """Write-side cache: one data key per (CMK reference, wrap-alg), reused within the limits.

    Thread-safe, and no lock is ever held during a key-service call: with real network latency a
    lock held across a call would let the writers under one CMK through one per round trip. The
    bookkeeping is done under one lock, released for the call, and the result installed under it
    again. A CMK that batches gets one call in flight per data key: threads that find the IV pool
    empty meanwhile wait for that call's IVs (no stampede). A CMK that wraps one IV per call (KMS;
    no ``wrap_ivs``) is called by each thread for its own IV, concurrently, once the data key's
    first call has wrapped the key. IVs already in a pool are served without waiting for any call.
    """

    def __init__(self, limits: DataKeyCacheLimits | None = None) -> None:
        self.limits = limits or DataKeyCacheLimits()
        self._entries: OrderedDict[tuple[str, str], _WriteEntry] = OrderedDict()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # an entry's batch arrived or it died
        self.hits = 0  # objects served with an already existing data key
        self.misses = 0  # new data keys made
        self.uncached = 0  # objects passed straight to the CMK (unknown or too large size)
        self.iv_batches = 0  # wrap_ivs / per-object wrap calls made by the cache

    def new_data_key(self, cmk: Cmk, request: DataKeyRequest | None = None) -> tuple[DataKey, WrappedDataKey]:
        """A data key (possibly shared) with a fresh IV, both wrapped, for the object ``request``
        describes; straight from ``cmk`` (given the request) when its size is unknown or too large."""
        plaintext_size = request.plaintext_size if request is not None else None
        if plaintext_size is None or plaintext_size < 0 or plaintext_size > self.limits.max_bytes:
            with self._lock:
                self.uncached += 1
            return cmk.new_data_key(request)
        for _ in range(3):  # a rotation seen mid-batch retires an entry; a new one then succeeds
            entry = self._reserve((cmk.reference, cmk.wrap_alg), plaintext_size)
            taken = self._take_iv(cmk, entry)
            if taken is not None:
                iv, wrapped = taken
                return DataKey(key=entry.key, iv=iv), wrapped
        with self._lock:
            self.uncached += 1
        return cmk.new_data_key(request)

    def _reserve(self, scope: tuple[str, str], size: int) -> _WriteEntry:
        limits = self.limits
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(scope)
            if (
                entry is None
                or entry.retired
                or now - entry.created >= limits.max_age_seconds
                or entry.objects + 1 > limits.max_objects
                or entry.plaintext_bytes + size > limits.max_bytes
            ):
                if entry is not None:
                    self._retire(entry)
                key = os.urandom(DATA_KEY_SIZE)
                entry = _WriteEntry(key=key, created=now)
                self._entries[scope] = entry
                self.misses += 1
                while len(self._entries) > limits.max_cmks:
                    self._retire(self._entries.popitem(last=False)[1])
            else:
                self.hits += 1
            self._entries.move_to_end(scope)
            entry.objects += 1
            entry.plaintext_bytes += size
            return entry

    def _take_iv(self, cmk: Cmk, entry: _WriteEntry) -> tuple[bytes, WrappedDataKey] | None:
        """Pop a wrapped IV, wrapping more first if the pool is empty; None if the entry died.

        The lock is released for the key-service call (see the class docstring)."""
        with self._changed:
            while not entry.pool and not entry.dead and entry.filling:
                self._changed.wait()  # one batch is on its way for this data key
            if entry.pool:
                return entry.pool.popleft()
            if entry.dead:
                return None
            # a retired key only serves the objects already reserved on it
            cap = (entry.objects if entry.retired else self.limits.max_objects) - entry.prepared
            count = max(1, min(self.limits.iv_batch_size, cap)) if entry.batches else 1
            single_flight = entry.batches or entry.template is None  # the first call wraps the key
            entry.filling = single_flight  # no call was in flight (the loop above waited for it)
            template, per_object = entry.template, entry.wraps_per_object
        ivs = [new_iv() for _ in range(count)]
        try:
            wrapped: list[WrappedDataKey] | None = None
            if not per_object:
                try:
                    wrapped = cmk.wrap_ivs(entry.key, ivs, reuse=template)
                except NotImplementedError:
                    per_object = True
            if wrapped is None:  # no batching: one ordinary wrap per object, same data key
                wrapped = [cmk.wrap(DataKey(key=entry.key, iv=ivs[0]))]
        except BaseException:
            with self._changed:
                if single_flight:
                    entry.filling = False
                self._drop(entry)  # wakes the threads waiting for this batch
            raise
        with self._changed:
            if single_flight:
                entry.filling = False
                self._changed.notify_all()
            self.iv_batches += 1
            if not wrapped or len(wrapped) > len(ivs):
                self._drop(entry)
                return None
            if per_object or len(wrapped) < len(ivs):  # a service that cannot batch wraps a leading part
                entry.batches, entry.wraps_per_object = False, per_object
            ivs = ivs[: len(wrapped)]
            if entry.template is None:
                entry.template = wrapped[0]
            entry.prepared += len(ivs)
            entry.pool.extend(zip(ivs, wrapped, strict=True))
            return entry.pool.popleft()

    def _drop(self, entry: _WriteEntry) -> None:
        """Forget ``entry``; threads waiting for its batch start over. Called with the lock held."""
        for scope, held in list(self._entries.items()):
            if held is entry:
                del self._entries[scope]
        entry.retired = entry.dead = True
        self._changed.notify_all()

    @staticmethod
    def _retire(entry: _WriteEntry) -> None:
        """No new objects under this key; IVs already wrapped are still handed to reserved objects."""
        entry.retired = True

    def stats(self) -> dict[str, int]:
        """Counts only (never key material): entries, hits, misses, uncached, iv_batches."""
        with self._lock:
            return {
                "entries": len(self._entries),
                "hits": self.hits,
                "misses": self.misses,
                "uncached": self.uncached,
                "iv_batches": self.iv_batches,
            }

    def clear(self) -> None:
        """Stop using every cached data key (e.g. after revoking a CMK permission)."""
        with self._lock:
            for entry in self._entries.values():
                self._retire(entry)
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"DataKeyCache(entries={s['entries']}, hits={s['hits']}, misses={s['misses']}, "
            f"uncached={s['uncached']}, iv_batches={s['iv_batches']})"
        )

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("DataKeyCache holds data keys and cannot be pickled")
