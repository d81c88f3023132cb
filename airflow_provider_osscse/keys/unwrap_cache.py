"""Optional, bounded, in-memory read-side cache of unwrapped data keys. Off by default.

Unwrapped keys by (CMK reference, wrap-alg, SHA-256 of the wrapped values), so re-reading the same
object (ranged reads, sensors, lookup files) costs no key-service call. Thread-safe; refuses
pickling; its repr shows counts only. Used through ``keys.caching_cmk.CachingCmk``
(trade-offs: ``docs/key-custody.md``, "Data-key caches").
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from airflow_provider_osscse.envelope.keywrap import DataKey, WrappedDataKey

_ENTRY_BYTES = 48  # 32-byte key + 16-byte IV


@dataclass(frozen=True)
class UnwrapCacheLimits:
    """Bounds of the read-side cache: an entry older than ``max_age_seconds`` is never returned."""

    max_age_seconds: float = 300.0
    max_entries: int = 1000
    max_bytes: int = 1000 * _ENTRY_BYTES

    def __post_init__(self) -> None:
        if self.max_age_seconds <= 0 or self.max_entries < 1 or self.max_bytes < _ENTRY_BYTES:
            raise ValueError("unwrap cache limits must be positive and hold at least one key")


class UnwrapCache:
    """Thread-safe LRU of ``(CMK reference, wrap-alg, digest of wrapped values) → DataKey``."""

    def __init__(self, limits: UnwrapCacheLimits | None = None) -> None:
        self.limits = limits or UnwrapCacheLimits()
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[float, DataKey]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def cache_key(reference: str, wrapped: WrappedDataKey) -> tuple[str, str, bytes]:
        digest = hashlib.sha256(
            len(wrapped.wrapped_key).to_bytes(4, "big") + wrapped.wrapped_key + wrapped.wrapped_iv
        ).digest()
        return reference, wrapped.wrap_alg, digest

    def get(self, reference: str, wrapped: WrappedDataKey) -> DataKey | None:
        key = self.cache_key(reference, wrapped)
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or now - entry[0] > self.limits.max_age_seconds:
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, reference: str, wrapped: WrappedDataKey, data_key: DataKey) -> None:
        key = self.cache_key(reference, wrapped)
        max_entries = min(self.limits.max_entries, self.limits.max_bytes // _ENTRY_BYTES)
        with self._lock:
            self._entries[key] = (time.monotonic(), data_key)
            self._entries.move_to_end(key)
            while len(self._entries) > max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        """Drop every cached key (e.g. after revoking a CMK permission)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def __repr__(self) -> str:
        return f"UnwrapCache(entries={len(self)}, hits={self.hits}, misses={self.misses})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("UnwrapCache holds data keys and cannot be pickled")
