"""A CMK wrapper that counts unwraps, to prove how many key-service calls an operation makes."""

from __future__ import annotations

from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, WrappedDataKey


class CountingKey(Cmk):
    """Counts unwraps of a real CMK (to prove how many key-service calls happen)."""

    def __init__(self, inner: Cmk) -> None:
        self.inner, self.wrap_alg, self.unwraps = inner, inner.wrap_alg, 0

    reference = property(lambda self: self.inner.reference)
    matdesc = property(lambda self: self.inner.matdesc)

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        return self.inner.wrap(data_key)

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        self.unwraps += 1
        return self.inner.unwrap(wrapped)

    def matches(self, wrapped: WrappedDataKey) -> bool:
        return self.inner.matches(wrapped)
