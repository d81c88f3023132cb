"""``CachingCmk``: a CMK behind a data-key cache (writes) and/or an unwrap cache (reads).

Both caches are off by default (``keys.data_key_cache``, ``keys.unwrap_cache``). The wrapper
delegates everything else to the CMK it wraps, batch methods included (a group of objects still
costs one Transit call behind it), and rewrap goes straight to the wrapped CMK, so Transit
``rewrap`` and KMS ``ReEncrypt`` stay native behind the cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.exceptions import OSSCSEError
from airflow_provider_osscse.keys.data_key_cache import DataKeyCache, DataKeyCacheLimits
from airflow_provider_osscse.keys.unwrap_cache import UnwrapCache, UnwrapCacheLimits


class CachingCmk(Cmk):
    """A CMK whose new data keys come from a :class:`DataKeyCache` and/or whose unwraps go
    through an :class:`UnwrapCache`. Either may be ``None`` (that side is then not cached).

    ``CachingCmk(cmk, UnwrapCache(...))`` (the pre-write-cache form) still means a read cache.
    """

    def __init__(
        self,
        inner: Cmk,
        cache: DataKeyCache | UnwrapCache | None = None,
        *,
        unwrap_cache: UnwrapCache | None = None,
    ) -> None:
        if isinstance(cache, UnwrapCache):
            if unwrap_cache is not None:
                raise TypeError("two unwrap caches given")
            cache, unwrap_cache = None, cache
        self.inner = inner
        self.cache: DataKeyCache | None = cache
        self.unwrap_cache = unwrap_cache
        self.wrap_alg = inner.wrap_alg

    @property
    def reference(self) -> str:
        return self.inner.reference

    @property
    def matdesc(self) -> Mapping[str, str]:
        return self.inner.matdesc

    @property
    def identity(self) -> str | None:
        return self.inner.identity

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        return self.inner.wrap(data_key)

    def wrap_ivs(
        self, key_bytes: bytes, ivs: Sequence[bytes], *, reuse: WrappedDataKey | None = None
    ) -> list[WrappedDataKey]:
        return self.inner.wrap_ivs(key_bytes, ivs, reuse=reuse)

    def new_data_key(self, request: DataKeyRequest | None = None) -> tuple[DataKey, WrappedDataKey]:
        """From the write cache when one is set and the request names the object's size; else from the CMK."""
        if self.cache is None:
            return self.inner.new_data_key(request)
        return self.cache.new_data_key(self.inner, request)

    def new_data_keys(self, requests: Sequence[DataKeyRequest]) -> list[tuple[DataKey, WrappedDataKey]]:
        """Without a write cache: the CMK's own batch (one Transit call per group); with one: each
        object from the cache (which batches its IV wraps itself)."""
        if self.cache is None:
            return self.inner.new_data_keys(requests)
        return [self.cache.new_data_key(self.inner, request) for request in requests]

    def unwrap_many(self, wrapped: Sequence[WrappedDataKey]) -> list[DataKey | OSSCSEError]:
        """Cached data keys from the unwrap cache; the rest in ONE batch of the CMK (then cached)."""
        if self.unwrap_cache is None:
            return self.inner.unwrap_many(wrapped)
        cache, reference = self.unwrap_cache, self.inner.reference
        found: list[DataKey | OSSCSEError | None] = [cache.get(reference, w) for w in wrapped]
        missing = [i for i, data_key in enumerate(found) if data_key is None]
        for index, outcome in zip(missing, self.inner.unwrap_many([wrapped[i] for i in missing]), strict=True):
            if isinstance(outcome, DataKey):
                cache.put(reference, wrapped[index], outcome)
            found[index] = outcome
        return [outcome for outcome in found if outcome is not None]

    def rewrap_many_from(self, wrapped: Sequence[WrappedDataKey], source: Cmk) -> list[WrappedDataKey | OSSCSEError]:
        return self.inner.rewrap_many_from(wrapped, source)

    def latest_version(self) -> str | None:
        return self.inner.latest_version()

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        if self.unwrap_cache is None:
            return self.inner.unwrap(wrapped)
        cached = self.unwrap_cache.get(self.inner.reference, wrapped)
        if cached is not None:
            return cached
        data_key = self.inner.unwrap(wrapped)
        self.unwrap_cache.put(self.inner.reference, wrapped, data_key)
        return data_key

    def rewrap_from(self, wrapped: WrappedDataKey, source: Cmk) -> WrappedDataKey:
        """The inner CMK's rewrap (native where its service has one); nothing of it is cached."""
        return self.inner.rewrap_from(wrapped, source)

    def cmk_for(self, wrapped: WrappedDataKey) -> Cmk:
        return self.inner.cmk_for(wrapped)

    @property
    def rewrap_domain(self) -> object | None:
        return self.inner.rewrap_domain

    def matches(self, wrapped: WrappedDataKey) -> bool:
        return self.inner.matches(wrapped)

    def key_version(self, wrapped: WrappedDataKey) -> str | None:
        return self.inner.key_version(wrapped)

    def __repr__(self) -> str:
        return f"CachingCmk({self.inner!r}, {self.cache!r}, {self.unwrap_cache!r})"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("CachingCmk holds data keys and cannot be pickled")


def with_data_key_cache(
    cmk: Cmk,
    limits: DataKeyCacheLimits | None,
    *,
    unwrap_limits: UnwrapCacheLimits | None = None,
) -> Cmk:
    """``cmk`` itself when both limits are ``None`` (the default: no caching), else a
    :class:`CachingCmk` with its own caches. Call once per resolved CMK and keep the result:
    the cache lives as long as the returned wrapper."""
    if limits is None and unwrap_limits is None:
        return cmk
    return CachingCmk(
        cmk,
        DataKeyCache(limits) if limits is not None else None,
        unwrap_cache=UnwrapCache(unwrap_limits) if unwrap_limits is not None else None,
    )
