"""Decrypt one object from its metadata and ciphertext, choosing the CMK and checking integrity.

::

    reader = EnvelopeReader(headers, cmk_or_cmks_or_resolver, object_name="data/a.csv")
    for chunk in reader.decrypt_chunks(ciphertext_chunks):   # whole object: tag verified
        ...
    reader.status   # IntegrityStatus.VERIFIED / UNAUTHENTICATED / SKIPPED

    plan = reader.plan_range("bytes=-100", object_size)     # GET plan.http_range
    data = b"".join(reader.decrypt_chunks(ranged_ciphertext, range_plan=plan))

On a whole-object read the last decrypted chunk is withheld until the tag has been checked, so a
tampered object never yields its complete plaintext; earlier chunks are released unverified, so a
consumer writing to disk must commit (rename) only when the iterator finishes without error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Union

from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.errors import (
    KeyUnwrapError,
    NoMatchingKeyError,
    UnauthenticatedObjectError,
)
from airflow_provider_osscse.envelope.headers import Envelope, parse_envelope
from airflow_provider_osscse.envelope.integrity import (
    IntegrityBuilder,
    IntegrityPolicy,
    IntegrityStatus,
    StreamingTagger,
)
from airflow_provider_osscse.envelope.keywrap import ContentKey, KeyWrapper, WrappedContentKey
from airflow_provider_osscse.envelope.ranges import RangePlan, plan_range
from airflow_provider_osscse.envelope.streams import DEFAULT_CHUNK_SIZE, ByteSource, iter_chunks

#: A callable choosing the CMK for an object from its wrap-alg and matdesc.
KeyResolver = Callable[[WrappedContentKey], KeyWrapper]
Keys = Union[KeyWrapper, Sequence[KeyWrapper], KeyResolver]


def resolve_key(keys: Keys, wrapped: WrappedContentKey, *, object_name: str) -> KeyWrapper:
    """The CMK for ``wrapped``: a single CMK that matches, the first matching one, or the resolver's pick."""
    if isinstance(keys, KeyWrapper):
        candidates: Sequence[KeyWrapper] = [keys]
    elif callable(keys):
        return keys(wrapped)
    else:
        candidates = list(keys)
    for candidate in candidates:
        if candidate.matches(wrapped):
            return candidate
    names = ", ".join(c.reference for c in candidates) or "none"
    raise NoMatchingKeyError(
        f"object {object_name!r}: no configured CMK ({names}) matches wrap-alg {wrapped.wrap_alg!r} "
        f"and matdesc {dict(wrapped.matdesc)!r}"
    )


class EnvelopeReader:
    """One object's decryption state: parsed envelope, unwrapped data key, integrity policy.

    The data key is unwrapped once here (one key-service round trip per object).
    """

    def __init__(
        self,
        metadata: Mapping[str, str],
        keys: Keys,
        *,
        object_name: str,
        integrity_policy: IntegrityPolicy | str = IntegrityPolicy.IF_PRESENT,
        allow_legacy: bool = False,
    ) -> None:
        self.object_name = object_name
        self.integrity_policy = IntegrityPolicy(integrity_policy)
        self.envelope: Envelope = parse_envelope(metadata, object_name=object_name, allow_legacy=allow_legacy)
        if self.integrity_policy is IntegrityPolicy.REQUIRE and self.envelope.integrity is None:
            raise UnauthenticatedObjectError(
                f"object {object_name!r} has no integrity tag (written by an official SDK or stripped) "
                f"and the integrity policy is 'require'"
            )
        self.key_wrapper = resolve_key(keys, self.envelope.wrapped, object_name=object_name)
        try:
            self._content_key: ContentKey = self.key_wrapper.unwrap(self.envelope.wrapped)
        except KeyUnwrapError as exc:
            raise KeyUnwrapError(f"object {object_name!r}: {exc}") from None
        self.status: IntegrityStatus | None = None

    def __repr__(self) -> str:
        return f"EnvelopeReader(object_name={self.object_name!r}, cmk={self.key_wrapper.reference!r})"

    def __reduce__(self):  # noqa: D105
        raise TypeError("EnvelopeReader holds key material and cannot be pickled")

    def plan_range(self, spec: str | tuple[int | None, int | None], object_size: int | None = None) -> RangePlan:
        """Plan a ranged read (see :func:`~airflow_provider_osscse.envelope.ranges.plan_range`)."""
        return plan_range(spec, object_size)

    def cipher(self, offset: int = 0) -> CtrCipher:
        """A decrypting cipher at object ``offset`` (for callers driving their own loop)."""
        return CtrCipher(self._content_key.key, self._content_key.iv, offset)

    def integrity_builder(self) -> IntegrityBuilder | None:
        """For parallel downloads split on the tag's segment size: MAC each segment, then :meth:`verify_parallel`."""
        if self.envelope.integrity is None:
            return None
        return IntegrityBuilder(self._content_key, self.envelope.cek_alg, self.envelope.integrity.segment_size)

    def verify_parallel(self, builder: IntegrityBuilder, total_length: int) -> IntegrityStatus:
        """Check a builder filled by :meth:`integrity_builder` users; sets and returns :attr:`status`."""
        assert self.envelope.integrity is not None
        builder.verify(self.envelope.integrity, total_length, object_name=self.object_name)
        self.status = IntegrityStatus.VERIFIED
        return self.status

    def decrypt_chunks(
        self,
        ciphertext: ByteSource,
        *,
        range_plan: RangePlan | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Plaintext of the whole object, or of ``range_plan`` given the aligned ciphertext it requested.

        Ranged reads cannot be verified: status ``skipped`` (and refused under ``require``).
        Raises :class:`IntegrityError` at the end of a whole read whose tag does not match.
        """
        if range_plan is not None:
            if self.integrity_policy is IntegrityPolicy.REQUIRE:
                raise UnauthenticatedObjectError(
                    f"object {self.object_name!r}: a ranged read cannot be verified and the integrity "
                    f"policy is 'require'; read the whole object or use 'if-present'"
                )
            self.status = IntegrityStatus.SKIPPED
            return self._decrypt_range(ciphertext, range_plan, chunk_size)
        return self._decrypt_whole(ciphertext, chunk_size)

    def _decrypt_range(self, ciphertext: ByteSource, plan: RangePlan, chunk_size: int) -> Iterator[bytes]:
        cipher = self.cipher(plan.counter_offset)
        discard, remaining = plan.discard, plan.length
        for chunk in iter_chunks(ciphertext, chunk_size):
            plain = cipher.update(chunk)
            if discard:
                dropped = min(discard, len(plain))
                plain, discard = plain[dropped:], discard - dropped
            if remaining is not None:
                plain = plain[:remaining]
                remaining -= len(plain)
            if plain:
                yield plain
            if remaining == 0:
                return

    def _decrypt_whole(self, ciphertext: ByteSource, chunk_size: int) -> Iterator[bytes]:
        tag = self.envelope.integrity
        verify = tag is not None and self.integrity_policy is not IntegrityPolicy.OFF
        tagger = StreamingTagger(self.integrity_builder()) if verify else None  # type: ignore[arg-type]
        cipher = self.cipher(0)
        held: bytes | None = None
        for chunk in iter_chunks(ciphertext, chunk_size):
            plain = cipher.update(chunk)
            if tagger is not None:
                tagger.update(plain)
            if held:
                yield held
            held = plain
        if tagger is not None:
            total = tagger.close()
            tagger.builder.verify(tag, total, object_name=self.object_name)  # type: ignore[arg-type]
            self.status = IntegrityStatus.VERIFIED
        elif self.integrity_policy is IntegrityPolicy.OFF:
            self.status = IntegrityStatus.SKIPPED
        else:
            self.status = IntegrityStatus.UNAUTHENTICATED
        if held:
            yield held


def decrypt_object(
    metadata: Mapping[str, str],
    ciphertext: Iterable[bytes] | ByteSource,
    keys: Keys,
    *,
    object_name: str,
    integrity_policy: IntegrityPolicy | str = IntegrityPolicy.IF_PRESENT,
    allow_legacy: bool = False,
) -> Iterator[bytes]:
    """Shortcut: plaintext chunks of a whole object (tag verified per ``integrity_policy``)."""
    reader = EnvelopeReader(metadata, keys, object_name=object_name, integrity_policy=integrity_policy,
                            allow_legacy=allow_legacy)
    return reader.decrypt_chunks(ciphertext)
