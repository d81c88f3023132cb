"""Several CMKs behind one :class:`Cmk`: write with one, read objects written under any.

Choosing the CMK for an object (bounded, never "try every key"):

1. **Identity**: members whose :meth:`~Cmk.matches` accepts the object (wrap-alg plus the
   CMK identity this package writes in ``x-oss-meta-osscse-cmk``, or the member's own matdesc
   entries). The core parses the matdesc header, so compact and spaced JSON spellings select the same key.
2. **Fallback by wrap-alg**, only when the object names no CMK identity (objects from the
   official SDKs): members with the same wrap-alg, those sharing the most matdesc entries with the
   object first, at most ``max_fallback_attempts`` of them (the same bound applies to step 1, where
   a member with an empty matdesc matches every object of its wrap-alg). An object that *names* a CMK this keyring
   does not hold is refused at once: trying other keys could only fail, one service call each.

Failures: no candidate → :class:`NoMatchingKeyError`; every candidate failed to unwrap →
:class:`KeyUnwrapError` (the one candidate's own error, e.g. "only a public key", when there was
one; :class:`PublicKeyOnlyError` when no candidate holds a private key). Each says, as a remedy,
which CMK to give instead (the one the object's header names). Service errors (unreachable,
permission) propagate unchanged from the first candidate that raises them, because retrying another
key would hide the real problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, DataKeyRequest, WrappedDataKey
from airflow_provider_osscse.envelope.reader import read_cmk_remedy
from airflow_provider_osscse.exceptions import KeyUnwrapError, NoMatchingKeyError, OSSCSEError, PublicKeyOnlyError

#: Default bound on blind attempts for objects that name no CMK identity.
DEFAULT_MAX_FALLBACK_ATTEMPTS = 3


class Keyring(Cmk):
    """``primary`` wraps new objects; ``primary`` and ``others`` unwrap existing ones."""

    def __init__(
        self,
        primary: Cmk,
        others: Sequence[Cmk] = (),
        *,
        max_fallback_attempts: int = DEFAULT_MAX_FALLBACK_ATTEMPTS,
    ) -> None:
        if max_fallback_attempts < 1:
            raise ValueError("max_fallback_attempts must be >= 1")
        self.primary = primary
        self.members: tuple[Cmk, ...] = (primary, *others)
        self.max_fallback_attempts = max_fallback_attempts
        self.wrap_alg = primary.wrap_alg

    @property
    def reference(self) -> str:
        return self.primary.reference

    @property
    def matdesc(self) -> Mapping[str, str]:
        return self.primary.matdesc

    @property
    def identity(self) -> str | None:
        return self.primary.identity

    def wrap(self, data_key: DataKey) -> WrappedDataKey:
        return self.primary.wrap(data_key)

    def new_data_key(self, request: DataKeyRequest | None = None) -> tuple[DataKey, WrappedDataKey]:
        return self.primary.new_data_key(request)

    def new_data_keys(self, requests: Sequence[DataKeyRequest]) -> list[tuple[DataKey, WrappedDataKey]]:
        return self.primary.new_data_keys(requests)

    def unwrap_many(self, wrapped: Sequence[WrappedDataKey]) -> list[DataKey | OSSCSEError]:
        """Each member unwraps its own objects in one batch; an object its first candidate could not
        unwrap gets the one-object path (the other candidates, and the keyring's own words)."""
        results: list[DataKey | OSSCSEError | None] = [None] * len(wrapped)
        groups: dict[int, tuple[Cmk, list[int]]] = {}
        for index, item in enumerate(wrapped):
            found = self.candidates(item)
            if not found:
                results[index] = self._no_match(item)
                continue
            groups.setdefault(id(found[0]), (found[0], []))[1].append(index)
        for member, indexes in groups.values():
            for index, outcome in zip(indexes, member.unwrap_many([wrapped[i] for i in indexes]), strict=True):
                results[index] = self._unwrap_one(wrapped[index]) if isinstance(outcome, KeyUnwrapError) else outcome
        return [r if r is not None else self._no_match(w) for r, w in zip(results, wrapped, strict=True)]

    def _unwrap_one(self, wrapped: WrappedDataKey) -> DataKey | OSSCSEError:
        try:
            return self.unwrap(wrapped)
        except OSSCSEError as exc:
            return exc

    def rewrap_many_from(self, wrapped: Sequence[WrappedDataKey], source: Cmk) -> list[WrappedDataKey | OSSCSEError]:
        return self.primary.rewrap_many_from(wrapped, source)

    def latest_version(self) -> str | None:
        return self.primary.latest_version()

    def candidates(self, wrapped: WrappedDataKey) -> list[Cmk]:
        """The members to try for ``wrapped``, in order, already bounded (see module docstring)."""
        exact = [m for m in self.members if m.matches(wrapped)]
        if exact:  # bounded too: a member with empty matdesc "matches" every object of its wrap-alg
            return exact[: self.max_fallback_attempts]
        if wrapped.cmk_identity is not None:
            return []
        same_alg = [m for m in self.members if m.wrap_alg == wrapped.wrap_alg]

        def shared(member: Cmk) -> int:
            return sum(1 for k, v in member.matdesc.items() if wrapped.matdesc.get(k) == v)

        same_alg.sort(key=shared, reverse=True)  # stable: configured order breaks ties
        return same_alg[: self.max_fallback_attempts]

    def select(self, wrapped: WrappedDataKey) -> Cmk:
        """The first candidate CMK for ``wrapped`` (:meth:`cmk_for` sees through it to the CMK itself)."""
        found = self.candidates(wrapped)
        if not found:
            raise self._no_match(wrapped)
        return found[0]

    def unwrap(self, wrapped: WrappedDataKey) -> DataKey:
        found = self.candidates(wrapped)
        if not found:
            raise self._no_match(wrapped)
        errors: list[KeyUnwrapError] = []
        for member in found:
            try:
                return member.unwrap(wrapped)
            except KeyUnwrapError as exc:
                errors.append(exc)
        if len(errors) == 1:
            raise errors[0]  # the one candidate's own words (e.g. which key KMS actually used)
        # Each candidate's own words, without its remedy: one remedy for the whole, said once.
        reasons = "; ".join(e.message or type(e).__name__ for e in errors)
        if all(isinstance(e, PublicKeyOnlyError) for e in errors):
            raise PublicKeyOnlyError(
                f"none of {len(found)} candidate CMK(s) could unwrap the data key: none holds a private key ({reasons})"
            )
        raise KeyUnwrapError(
            f"none of {len(found)} candidate CMK(s) could unwrap the data key (wrap-alg {wrapped.wrap_alg}): {reasons}",
            remedy=read_cmk_remedy(wrapped),
        )

    def rewrap_from(self, wrapped: WrappedDataKey, source: Cmk) -> WrappedDataKey:
        """Re-wrap under the primary CMK, which sees through ``source`` (``rewrap`` passes this
        keyring) to the member that wrapped it, so a native move (Transit, KMS) stays native."""
        return self.primary.rewrap_from(wrapped, source)

    def cmk_for(self, wrapped: WrappedDataKey) -> Cmk:
        """The member that would unwrap ``wrapped``, itself unwrapped (see :meth:`select`)."""
        return self.select(wrapped).cmk_for(wrapped)

    @property
    def rewrap_domain(self) -> object | None:
        return self.primary.rewrap_domain

    def matches(self, wrapped: WrappedDataKey) -> bool:
        return bool(self.candidates(wrapped))

    def key_version(self, wrapped: WrappedDataKey) -> str | None:
        found = self.candidates(wrapped)
        return found[0].key_version(wrapped) if found else None

    def _no_match(self, wrapped: WrappedDataKey) -> NoMatchingKeyError:
        named = wrapped.cmk_identity
        what = f"CMK {named!r}" if named else f"wrap-alg {wrapped.wrap_alg!r}"
        return NoMatchingKeyError(
            f"no configured CMK matches the object's {what}; keyring holds: "
            + ", ".join(m.reference for m in self.members),
            remedy=read_cmk_remedy(wrapped, named=named is not None),
        )

    def __repr__(self) -> str:
        return f"Keyring({', '.join(repr(m) for m in self.members)})"
