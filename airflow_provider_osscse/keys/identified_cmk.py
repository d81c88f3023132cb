"""A CMK that names itself by identity (``x-oss-meta-osscse-cmk``), never by connection id.

Vault Transit, Vault KV and KMS keys share this: a reference string for messages and XCom, an
identity that objects carry in this project's own header (official readers ignore it), the user's
own matdesc entries (none by default, so official readers built without a matdesc read the objects)
and matching on wrap-alg and identity, so a keyring picks the right CMK whatever Airflow connection
reaches it.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from airflow_provider_osscse.envelope.keywrap import Cmk, WrappedDataKey


class ConfiguredCmk(Cmk):
    """Base for CMKs built from configuration: the ``reference`` (for messages and XCom) and the
    user's ``matdesc``, kept sorted and read-only so equal configurations write equal headers."""

    def _configure(self, *, reference: str, matdesc: Mapping[str, str] | None) -> None:
        self._reference = reference
        self._matdesc: Mapping[str, str] = MappingProxyType(dict(sorted((matdesc or {}).items())))

    @property
    def reference(self) -> str:
        return self._reference

    @property
    def matdesc(self) -> Mapping[str, str]:
        return self._matdesc


class IdentifiedCmk(ConfiguredCmk):
    """Base for key-service CMKs: ``reference``, ``identity``, ``matdesc`` and identity matching."""

    def _set_identity(
        self,
        *,
        reference: str,
        identity: str,
        matdesc: Mapping[str, str] | None,
        legacy_identities: tuple[str, ...] = (),
    ) -> None:
        """``legacy_identities``: names earlier versions of this package wrote for the same CMK."""
        self._configure(reference=reference, matdesc=matdesc)
        self._identity = identity
        self._accepted_identities = frozenset((identity, *legacy_identities))

    @property
    def identity(self) -> str:
        return self._identity

    def _wrapped(self, wrapped_key: bytes, wrapped_iv: bytes, version: str | None) -> WrappedDataKey:
        """The header values of one object wrapped by this CMK (identity and version included)."""
        return WrappedDataKey(
            self.wrap_alg, wrapped_key, wrapped_iv, self._matdesc, cmk_identity=self._identity, cmk_version=version
        )

    def matches(self, wrapped: WrappedDataKey) -> bool:
        """Same wrap-alg and the same key identity (objects of earlier versions: their identity)."""
        return wrapped.wrap_alg == self.wrap_alg and wrapped.cmk_identity in self._accepted_identities
