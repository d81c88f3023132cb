"""Decrypt one object from its metadata and ciphertext, choosing the CMK and checking integrity.

::

    reader = EnvelopeReader(
        headers,
        cmk_or_cmks_or_resolver,
        object_name="data/a.csv",
        binding=ObjectBinding("bucket", "data/a.csv"),
        object_size=size,
    )
    for chunk in reader.decrypt_chunks(ciphertext_chunks):  # whole object: verified FIRST
        ...
    reader.status  # IntegrityStatus.VERIFIED / UNAUTHENTICATED / SKIPPED

    plan = reader.plan_range("bytes=-100", object_size)  # GET plan.http_range
    data = b"".join(reader.decrypt_chunks(ranged_ciphertext, range_plan=plan))

No plaintext byte is released before it is verified: when a tag is checked, :meth:`decrypt_chunks`
first reads the whole ciphertext once (decrypting and MACing, keeping nothing but the ciphertext in
a private spool: memory up to :data:`SPOOL_IN_MEMORY`, then an anonymous temporary file), checks
the tag, and only then decrypts the spool for the caller. The cost is a second AES-CTR pass and the
ciphertext's size in temporary space; callers that can re-read the object themselves (the transport
downloading ranges in parallel) use :meth:`integrity_builder` and :meth:`verify_parallel` instead.

The default integrity policy is ``require``: an object without a tag is refused with a message that
says how to accept it. Reading without verification (``if-present`` on an untagged object, or
``off``) is logged at WARNING every time.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import BinaryIO, NoReturn

from airflow_provider_osscse.envelope.aes_ctr import CtrCipher
from airflow_provider_osscse.envelope.headers import CMK_HEADER, Envelope, parse_envelope
from airflow_provider_osscse.envelope.integrity import (
    UNVERIFIED_READ_RECORD,
    IntegrityBuilder,
    IntegrityPolicy,
    IntegrityStatus,
    IntegrityTag,
    ObjectBinding,
    StreamingTagger,
    rebind_tag,
)
from airflow_provider_osscse.envelope.keywrap import Cmk, DataKey, WrappedDataKey
from airflow_provider_osscse.envelope.ranges import RangePlan, plan_range
from airflow_provider_osscse.envelope.streams import DEFAULT_CHUNK_SIZE, ByteSource, iter_chunks
from airflow_provider_osscse.exceptions import (
    KeyUnwrapError,
    NoMatchingKeyError,
    OSSCSEError,
    Remedy,
    UnauthenticatedObjectError,
)

log = logging.getLogger(__name__)

#: Ciphertext spooled for verify-first reads stays in memory up to this size, then goes to an
#: anonymous temporary file (never plaintext, and unlinked from the start where the OS allows).
SPOOL_IN_MEMORY = 8 * 1024 * 1024

#: How to accept an untagged object; each interface says the setting in its words (``integrity='if-present'``,
#: ``--integrity if-present``). The connection extra is the same everywhere.
ACCEPT_UNTAGGED = Remedy(
    "integrity",
    value="if-present",
    note='to read it anyway, unauthenticated (the OSS connection extra {"integrity": "if-present"} makes '
    "that the deployment's default)",
)


def read_cmk_remedy(wrapped: WrappedDataKey, *, named: bool = False) -> Remedy:
    """Give a CMK that unwraps ``wrapped``: the one its CMK identity header names (``named``: the
    message already says which)."""
    if named or not wrapped.cmk_identity:
        return Remedy("read_cmk", note="naming that CMK" if named else "naming the CMK that wrapped it")
    return Remedy("read_cmk", note=f"naming the CMK that wrapped it ({wrapped.cmk_identity}, header {CMK_HEADER})")


#: A callable choosing the CMK for an object from its wrap-alg and matdesc.
KeyResolver = Callable[[WrappedDataKey], Cmk]
#: The read CMKs: one CMK (a keyring is one), several to choose from in order, or a resolver.
Keys = Cmk | Sequence[Cmk] | KeyResolver


def resolve_key(keys: Keys, wrapped: WrappedDataKey, *, object_name: str) -> Cmk:
    """The CMK for ``wrapped``: the resolver's pick, else the first of the given CMK(s) that matches.

    Dispatches on the argument's shape only (a function, several CMKs, one CMK), never on which
    CMK it is: a keyring is one CMK that does its own choosing.
    """
    if callable(keys):  # a resolver (no CMK is callable)
        return keys(wrapped)
    candidates: Sequence[Cmk] = tuple(keys) if isinstance(keys, Sequence) else (keys,)
    for candidate in candidates:
        if candidate.matches(wrapped):
            return candidate
    if wrapped.cmk_identity:
        named = f"with {wrapped.wrap_alg!r} by CMK {wrapped.cmk_identity!r} (header {CMK_HEADER})"
    else:  # an official SDK's object: no identity, only the wrap-alg and matdesc
        named = f"with {wrapped.wrap_alg!r} and matdesc {dict(wrapped.matdesc)!r}"
    given = ", ".join(c.reference for c in candidates)
    raise NoMatchingKeyError(
        f"it is wrapped {named}, and no configured CMK ({given}) matches it"
        if candidates
        else f"it is wrapped {named}, and no CMK was given to read it",
        object_name=object_name,
        remedy=read_cmk_remedy(wrapped, named=True),
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
        integrity_policy: IntegrityPolicy | str = IntegrityPolicy.REQUIRE,
        allow_legacy: bool = False,
        binding: ObjectBinding | None = None,
        object_size: int | None = None,
        data_key: DataKey | OSSCSEError | None = None,
    ) -> None:
        """``binding``: the bucket and key the object was read from (checked against bound tags).
        ``object_size``: the stored size, checked against the length headers before any is used.
        ``data_key``: the object's data key (or the error unwrapping it gave) when a bulk operation
        already unwrapped many objects' keys in one call (``Cmk.unwrap_many``); every check above
        still runs, only the unwrap call is not made again."""
        self.object_name = object_name
        self.binding = binding
        self.integrity_policy = IntegrityPolicy(integrity_policy)
        self.envelope: Envelope = parse_envelope(metadata, object_name=object_name, allow_legacy=allow_legacy)
        if object_size is not None:
            self.envelope.check_object_size(object_size, object_name=object_name)
        if self.integrity_policy is IntegrityPolicy.REQUIRE and self.envelope.integrity is None:
            raise UnauthenticatedObjectError(
                "it has no integrity tag (written by an official SDK, or the tag was "
                "stripped) and the integrity policy is 'require'",
                object_name=object_name,
                remedy=ACCEPT_UNTAGGED,
            )
        self.cmk = resolve_key(keys, self.envelope.wrapped, object_name=object_name)
        try:
            if isinstance(data_key, OSSCSEError):
                raise data_key
            self._content_key: DataKey = data_key if data_key is not None else self.cmk.unwrap(self.envelope.wrapped)
        except KeyUnwrapError as exc:  # its own words (e.g. "only a public key") and what to give instead
            raise exc.for_object(object_name).with_remedy(read_cmk_remedy(self.envelope.wrapped)) from None
        self.status: IntegrityStatus | None = None

    @property
    def verifies(self) -> bool:
        """Whether a whole read checks a tag (a tag is present and the policy is not ``off``)."""
        return self.envelope.integrity is not None and self.integrity_policy is not IntegrityPolicy.OFF

    def unverified_status(self) -> IntegrityStatus:
        """Record and log (WARNING) a read that will not be verified; returns its status."""
        if self.integrity_policy is IntegrityPolicy.OFF:
            self.status = IntegrityStatus.SKIPPED
            log.warning(
                "object %r: integrity verification is off (integrity='off'); its plaintext is unauthenticated",
                self.object_name,
                extra={UNVERIFIED_READ_RECORD: True},
            )
        else:
            self.status = IntegrityStatus.UNAUTHENTICATED
            log.warning(
                "object %r has no integrity tag; read UNAUTHENTICATED because the integrity policy is 'if-present'",
                self.object_name,
                extra={UNVERIFIED_READ_RECORD: True},
            )
        return self.status

    def unverified_range_status(self) -> IntegrityStatus:
        """Record and log (WARNING) a ranged read decrypted without verifying the object first.

        A range alone cannot be checked against the whole-object tag. An untagged object (or policy
        ``off``) is reported as by :meth:`unverified_status`; a tagged one read in part is ``skipped``.
        """
        if self.envelope.integrity is None or self.integrity_policy is IntegrityPolicy.OFF:
            return self.unverified_status()
        self.status = IntegrityStatus.SKIPPED
        log.warning(
            "object %r: ranged read decrypted WITHOUT verifying the integrity tag (policy %r); "
            "with integrity='require' the whole object is verified before a range is released",
            self.object_name,
            self.integrity_policy.value,
            extra={UNVERIFIED_READ_RECORD: True},
        )
        return self.status

    def rebind(self, destination: ObjectBinding) -> IntegrityTag | None:
        """The object's tag for a copy at ``destination`` (see :func:`~.integrity.rebind_tag`).

        No content is read: a bound tag's binding is checked against :attr:`binding` (where the object
        was read from) and re-computed for ``destination``; unbound and v1 tags are returned unchanged,
        ``None`` when the object has no tag.
        """
        tag = self.envelope.integrity
        if tag is None or not tag.bound:
            return tag
        if self.binding is None:
            raise ValueError("rebinding a bound tag needs the reader's binding (where the object was read from)")
        return rebind_tag(
            self._content_key, tag, source=self.binding, destination=destination, object_name=self.object_name
        )

    def __repr__(self) -> str:
        return f"EnvelopeReader(object_name={self.object_name!r}, cmk={self.cmk.reference!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("EnvelopeReader holds key material and cannot be pickled")

    def plan_range(self, spec: str | tuple[int | None, int | None], object_size: int | None = None) -> RangePlan:
        """Plan a ranged read (see :func:`~airflow_provider_osscse.envelope.ranges.plan_range`)."""
        return plan_range(spec, object_size)

    def cipher(self, offset: int = 0) -> CtrCipher:
        """A decrypting cipher at object ``offset`` (for callers driving their own loop)."""
        return CtrCipher(self._content_key.key, self._content_key.iv, offset)

    def integrity_builder(self) -> IntegrityBuilder | None:
        """For parallel downloads split on the tag's segment size: MAC each segment, then :meth:`verify_parallel`."""
        tag = self.envelope.integrity
        if tag is None:
            return None
        return self._builder_for(tag)

    def _builder_for(self, tag: IntegrityTag) -> IntegrityBuilder:
        return IntegrityBuilder(self._content_key, self.envelope.cek_alg, tag.segment_size, version=tag.version)

    def _required_tag(self) -> IntegrityTag:
        """The object's tag; verifying an object without one is a caller's mistake, reported as such."""
        tag = self.envelope.integrity
        if tag is None:
            raise UnauthenticatedObjectError(
                "the object has no integrity tag to verify (written by an official SDK or with integrity off)",
                object_name=self.object_name,
                remedy=ACCEPT_UNTAGGED,
            )
        return tag

    def verify_parallel(self, builder: IntegrityBuilder, total_length: int) -> IntegrityStatus:
        """Check a builder filled by :meth:`integrity_builder` users; sets and returns :attr:`status`."""
        tag = self._required_tag()
        tag.segment_count(total_length)
        builder.verify(tag, total_length, binding=self.binding, object_name=self.object_name)
        self.status = IntegrityStatus.VERIFIED
        return self.status

    def decrypt_chunks(
        self,
        ciphertext: ByteSource,
        *,
        range_plan: RangePlan | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> Iterator[bytes]:
        """Plaintext of the whole object (verified before the first byte is yielded), or of
        ``range_plan`` given the aligned ciphertext it requested.

        A range alone cannot be verified (the tag covers the whole object): under ``require`` it is
        decrypted only once this reader verified the whole object (:meth:`verify_parallel`, as the
        transport does before fetching the range pinned to the same ETag) and refused otherwise;
        under the other policies it is ``skipped`` (logged, see :meth:`unverified_range_status`).
        Raises :class:`IntegrityError` before yielding anything if the tag does not match.
        """
        if range_plan is not None:
            if self.status is not IntegrityStatus.VERIFIED:
                if self.integrity_policy is IntegrityPolicy.REQUIRE:
                    raise UnauthenticatedObjectError(
                        "a range alone cannot be verified and the integrity policy is 'require' "
                        "(verify the whole object first)",
                        object_name=self.object_name,
                        remedy=Remedy("integrity", value="if-present", note="to read the range unverified"),
                    )
                if self.status is None:
                    self.unverified_range_status()
            return self._decrypt_range(ciphertext, range_plan, chunk_size)
        if not self.verifies:
            self.unverified_status()
            return self._decrypt_stream(ciphertext, chunk_size)
        return self._decrypt_verified(ciphertext, chunk_size)

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

    def _decrypt_stream(self, ciphertext: ByteSource, chunk_size: int) -> Iterator[bytes]:
        cipher = self.cipher(0)
        for chunk in iter_chunks(ciphertext, chunk_size):
            plain = cipher.update(chunk)
            if plain:
                yield plain

    def verify_spooled(self, ciphertext: ByteSource, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> BinaryIO:
        """Pass 1 of a verify-first read: spool the ciphertext while MACing its plaintext, check the tag.

        Returns the spool (rewound; the caller decrypts it with :meth:`cipher` and closes it).
        Raises :class:`IntegrityError` (the spool already closed) if the object was altered.
        """
        builder = self._builder_for(self._required_tag())
        tagger = StreamingTagger(builder)
        cipher = self.cipher(0)
        spool: BinaryIO = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, prefix="osscse-verify-")  # type: ignore[assignment]  # noqa: SIM115
        try:
            for chunk in iter_chunks(ciphertext, chunk_size):
                spool.write(chunk)
                tagger.update(cipher.update(chunk))
            total = tagger.close()
            self.verify_parallel(builder, total)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool

    def _decrypt_verified(self, ciphertext: ByteSource, chunk_size: int) -> Iterator[bytes]:
        spool = self.verify_spooled(ciphertext, chunk_size=chunk_size)
        with spool:
            cipher = self.cipher(0)
            for chunk in iter_chunks(spool, chunk_size):
                yield cipher.update(chunk)


def decrypt_object(
    metadata: Mapping[str, str],
    ciphertext: Iterable[bytes] | ByteSource,
    keys: Keys,
    *,
    object_name: str,
    integrity_policy: IntegrityPolicy | str = IntegrityPolicy.REQUIRE,
    allow_legacy: bool = False,
    binding: ObjectBinding | None = None,
) -> Iterator[bytes]:
    """Shortcut: plaintext chunks of a whole object (verified first, per ``integrity_policy``)."""
    reader = EnvelopeReader(
        metadata,
        keys,
        object_name=object_name,
        integrity_policy=integrity_policy,
        allow_legacy=allow_legacy,
        binding=binding,
    )
    return reader.decrypt_chunks(ciphertext)
