"""A CMK that names itself in the matdesc by identity (``osscse-cmk``), never by connection id.

Vault Transit, Vault KV and KMS keys share this: a reference string for messages and XCom, a matdesc
carrying the key's identity plus the user's own entries, and matching on wrap-alg and identity only
(user entries and the recorded version are informational), so a keyring picks the right CMK whatever
Airflow connection reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from airflow_provider_osscse.envelope.keywrap import KeyWrapper, WrappedContentKey
from airflow_provider_osscse.envelope.matdesc import MATDESC_CMK


class IdentifiedCmk(KeyWrapper):
    """Base for key-service CMKs: ``reference``, ``matdesc`` and ``matches`` by ``osscse-cmk`` identity."""

    def _set_identity(self, *, reference: str, identity: str, matdesc: Mapping[str, str] | None) -> None:
        entries = dict(matdesc or {})
        entries[MATDESC_CMK] = identity
        self._reference = reference
        self._matdesc = MappingProxyType(entries)

    @property
    def reference(self) -> str:
        return self._reference

    @property
    def matdesc(self) -> Mapping[str, str]:
        return self._matdesc

    def matches(self, wrapped: WrappedContentKey) -> bool:
        """Same wrap-alg and the same key identity."""
        return wrapped.wrap_alg == self.wrap_alg and wrapped.matdesc.get(MATDESC_CMK) == self._matdesc[MATDESC_CMK]
