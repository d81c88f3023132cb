"""An optional, bounded, in-memory cache of *unwrapped* data keys. Off by default.

Why only unwrap: in this format the data key and the IV are wrapped together per object, and
AES-CTR with a reused key and IV leaks the XOR of two plaintexts. Reusing one data key for several
objects on write would therefore need a fresh IV per object, which is itself a key-service call, so
write-side caching saves nothing safely and is not offered. On read, the same object is often
unwrapped again and again (ranged reads by parallel workers, sensors re-reading a manifest, many
tasks reading the same small lookup files); this cache turns those repeats into zero service calls.

Trade-off (documented in ``docs/key-custody.md``): while cached, a data key lives longer in process
memory than one object's operation, and a revoked CMK permission takes effect only when the entry
expires. Hence hard limits on age, entry count and bytes, keys scoped by CMK reference and
wrap-alg, thread safety, and no serialization: the cache refuses pickling and its repr shows only
counts. Entries are keyed by a SHA-256 of the wrapped values, never by anything secret.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_provider_osscse.envelope.keywrap import ContentKey, KeyWrapper, WrappedContentKey

_ENTRY_BYTES = 48  # 32-byte key + 16-byte IV


@dataclass(frozen=True)
class DataKeyCacheLimits:
    """Hard bounds: an entry older than ``max_age_seconds`` is never returned."""

    max_age_seconds: float = 300.0
    max_entries: int = 1000
    max_bytes: int = 1000 * _ENTRY_BYTES

    def __post_init__(self) -> None:
        if self.max_age_seconds <= 0 or self.max_entries < 1 or self.max_bytes < _ENTRY_BYTES:
            raise ValueError("data key cache limits must be positive and hold at least one key")


class DataKeyCache:
    """Thread-safe LRU of ``(CMK reference, wrap-alg, digest of wrapped values) → ContentKey``."""

    def __init__(self, limits: DataKeyCacheLimits | None = None) -> None:
        self.limits = limits or DataKeyCacheLimits()
        self._entries: OrderedDict[tuple[str, str, bytes], tuple[float, ContentKey]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def cache_key(reference: str, wrapped: WrappedContentKey) -> tuple[str, str, bytes]:
        digest = hashlib.sha256(
            len(wrapped.wrapped_key).to_bytes(4, "big") + wrapped.wrapped_key + wrapped.wrapped_iv
        ).digest()
        return reference, wrapped.wrap_alg, digest

    def get(self, reference: str, wrapped: WrappedContentKey) -> ContentKey | None:
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

    def put(self, reference: str, wrapped: WrappedContentKey, content_key: ContentKey) -> None:
        key = self.cache_key(reference, wrapped)
        max_entries = min(self.limits.max_entries, self.limits.max_bytes // _ENTRY_BYTES)
        with self._lock:
            self._entries[key] = (time.monotonic(), content_key)
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
        return f"DataKeyCache(entries={len(self)}, hits={self.hits}, misses={self.misses})"

    def __reduce__(self) -> Any:
        raise TypeError("DataKeyCache holds data keys and cannot be pickled")


class CachingKeyWrapper(KeyWrapper):
    """A CMK whose unwraps go through a :class:`DataKeyCache`; wrapping is never cached."""

    def __init__(self, inner: KeyWrapper, cache: DataKeyCache) -> None:
        self.inner = inner
        self.cache = cache
        self.wrap_alg = inner.wrap_alg

    @property
    def reference(self) -> str:
        return self.inner.reference

    @property
    def matdesc(self) -> Mapping[str, str]:
        return self.inner.matdesc

    def wrap(self, content_key: ContentKey) -> WrappedContentKey:
        return self.inner.wrap(content_key)

    def new_content_key(self) -> tuple[ContentKey, WrappedContentKey]:
        return self.inner.new_content_key()

    def unwrap(self, wrapped: WrappedContentKey) -> ContentKey:
        cached = self.cache.get(self.inner.reference, wrapped)
        if cached is not None:
            return cached
        content_key = self.inner.unwrap(wrapped)
        self.cache.put(self.inner.reference, wrapped, content_key)
        return content_key

    def rewrap(self, wrapped: WrappedContentKey) -> WrappedContentKey:
        return self.inner.rewrap(wrapped)

    def matches(self, wrapped: WrappedContentKey) -> bool:
        return self.inner.matches(wrapped)

    def key_version(self, wrapped: WrappedContentKey) -> str | None:
        return self.inner.key_version(wrapped)

    def __repr__(self) -> str:
        return f"CachingKeyWrapper({self.inner!r}, {self.cache!r})"

    def __reduce__(self) -> Any:
        raise TypeError("CachingKeyWrapper holds data keys and cannot be pickled")
