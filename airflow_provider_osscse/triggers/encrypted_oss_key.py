"""Deferrable wait for encrypted OSS objects: polls object metadata only, no keys, no cryptography.

The triggerer runs many triggers in one event loop, so the trigger must not block it. oss2 is
synchronous; the ``alibabacloud_oss_v2.aio`` client exists but is not a runtime dependency of this
provider (it is only in the ``test`` extra) and would be a second OSS client to configure from the
connection. So each poll runs the same HEAD/LIST check the sensor uses in a worker thread
(``asyncio.to_thread``): the loop stays free, and sensor and trigger cannot drift apart.

The check reads headers through ``EncryptedOSSHook.inspect`` (no unwrap, no CMK contact); the
trigger's kwargs are names and expectations only, never secrets (they are stored in the metadata DB).

The expected CMK is compared as an *identity* (``ObjectInfo.cmk``, the object's
``x-oss-meta-osscse-cmk`` header), never re-derived here from a CMK reference: some identities
cannot be derived without reading the key (a Vault KV or RSA file CMK is named by its public key's
fingerprint). :class:`~airflow_provider_osscse.sensors.encrypted_oss_key.EncryptedOSSKeySensor`
resolves its ``expected_cmk`` reference on the worker and hands the trigger the identity.

Events: ``success`` (with the matching objects), ``violation`` (an object is there but breaks the
policy: a retry cannot change it, so the sensor fails the task without retries) and ``error``
(anything else that ended the wait, e.g. access denied or a missing bucket; retryable). Transient
OSS errors (connection refused or reset, timeouts, 5xx, 429) do not end the wait: the trigger backs
off and polls again until the sensor's timeout, which the triggerer enforces by cancelling it.

oss2 logs every non-2xx answer as an INFO ``Exception: {...}`` line; a 404 is the expected answer
while waiting, so each poll runs under :func:`quiet_oss2_logs`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

if TYPE_CHECKING:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
    from airflow_provider_osscse.transport.results import ObjectInfo

_WILDCARD_CHARS = "*?["

#: Longest pause between polls after transient OSS errors (the backoff starts at ``poll_interval``).
MAX_ERROR_BACKOFF_SECONDS = 60.0

_OSS2_LOGGER = logging.getLogger("oss2")
_quiet_lock = threading.Lock()
_quiet_depth = 0
_quiet_saved_level = logging.NOTSET


@contextlib.contextmanager
def quiet_oss2_logs() -> Iterator[None]:
    """Raise the ``oss2`` logger to WARNING for the block, then restore its level.

    oss2 logs each 404 (the expected answer to a HEAD while waiting) as an INFO ``Exception: {...}``
    record with the request's details: one line of noise per poll in the task or triggerer log. The
    CLI quiets the same logger for a whole command (``cli_terminal``); here the scope is one poll.
    The triggerer runs many polls at once in worker threads and a logger level is process-wide, so
    the blocks are counted: the first one in saves and raises the level, the last one out restores
    it. While any poll runs, other oss2 INFO records of the process are dropped too (WARNING and
    above, and this provider's own messages, are not).
    """
    global _quiet_depth, _quiet_saved_level  # noqa: PLW0603 - one process-wide logger level, counted
    with _quiet_lock:
        if _quiet_depth == 0:
            _quiet_saved_level = _OSS2_LOGGER.level
            _OSS2_LOGGER.setLevel(max(_OSS2_LOGGER.getEffectiveLevel(), logging.WARNING))
        _quiet_depth += 1
    try:
        yield
    finally:
        with _quiet_lock:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                _OSS2_LOGGER.setLevel(_quiet_saved_level)


def is_transient_oss_error(error: BaseException) -> bool:
    """Whether polling again could succeed: the error, or one it was raised ``from`` (a translated
    OSS error keeps the original as its cause), is a transient OSS failure (connection refused or
    reset, timeout, 5xx, 429), as the transport's retry policy judges. An error merely raised while
    handling another (``__context__``) is judged by itself."""
    from airflow_provider_osscse.transport.retry import is_transient

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if is_transient(current):
            return True
        seen.add(id(current))
        current = current.__cause__
    return False


def is_cmk_reference(value: str) -> bool:
    """A CMK reference (``vault-kv://conn/...``) as opposed to an identity (``rsa-sha256:...``)."""
    return "://" in value


@dataclass(frozen=True)
class EncryptionExpectation:
    """What a matching object must look like to count (``None`` = not checked).

    ``expected_cmk_identity`` is an identity as objects carry it (``vault-transit:transit/orders``,
    ``kms:<key id>``, ``rsa-sha256:<fingerprint>``), never a reference.
    """

    expected_cmk_identity: str | None = None
    expected_wrap_alg: str | None = None
    require_integrity_tag: bool = True

    def __post_init__(self) -> None:
        if self.expected_cmk_identity is not None and is_cmk_reference(self.expected_cmk_identity):
            raise ValueError(
                f"expected CMK {self.expected_cmk_identity!r} is a CMK reference, not an identity: resolve it "
                f"first (EncryptedOSSKeySensor does, on the worker) and compare with its identity"
            )

    def mismatch(self, info: ObjectInfo) -> str | None:
        """Why ``info`` does not meet the expectation, or ``None`` when it does."""
        if not info.encrypted:
            return f"{info.uri} is not client-side encrypted"
        if self.expected_wrap_alg and info.wrap_alg != self.expected_wrap_alg:
            return f"{info.uri} is wrapped with {info.wrap_alg}, expected {self.expected_wrap_alg}"
        if self.expected_cmk_identity and info.cmk != self.expected_cmk_identity:
            return f"{info.uri} is wrapped by CMK {info.cmk}, expected {self.expected_cmk_identity}"
        if self.require_integrity_tag and not info.integrity_tag:
            return (
                f"{info.uri} has no integrity tag (written by an official SDK, or the tag was stripped); "
                f"pass require_integrity_tag=False to accept untagged objects"
            )
        return None


@dataclass(frozen=True)
class KeyCheck:
    """One poll's outcome: the matching keys that qualify and the ones that do not (with reasons)."""

    matched: list[dict[str, Any]]
    mismatched: list[str]


def check_keys(
    hook: EncryptedOSSHook,
    bucket: str | None,
    bucket_key: str,
    wildcard_match: bool,
    expectation: EncryptionExpectation,
) -> KeyCheck:
    """List what ``bucket_key`` names (a key, a prefix ending in ``/``, or a wildcard) and HEAD each."""
    if wildcard_match:
        literal = bucket_key
        for i, ch in enumerate(bucket_key):
            if ch in _WILDCARD_CHARS:
                literal = bucket_key[:i]
                break
        keys = [k for k in hook.list_keys(literal, bucket) if fnmatch.fnmatchcase(k, bucket_key)]
    elif bucket_key.endswith("/"):
        keys = [k for k in hook.list_keys(bucket_key, bucket) if not k.endswith("/")]
    else:
        keys = [bucket_key] if hook.exists(bucket_key, bucket) else []
    matched: list[dict[str, Any]] = []
    mismatched: list[str] = []
    for key in keys:
        info = hook.inspect(key, bucket)
        reason = expectation.mismatch(info)
        if reason is None:
            matched.append(
                {
                    "uri": info.uri,
                    "key": info.key,
                    "cmk": info.cmk,
                    "key_version": info.key_version,
                    "wrap_alg": info.wrap_alg,
                    "integrity_tag": info.integrity_tag,
                    "integrity_bound": info.integrity_bound,
                }
            )
        else:
            mismatched.append(reason)
    return KeyCheck(matched=matched, mismatched=mismatched)


class EncryptedOSSKeyTrigger(BaseTrigger):
    """Fires when the object(s) exist and are encrypted as expected (``success``), when one is not
    (``violation``, with ``fail_on_mismatch``), or on an error that is not transient (``error``).

    Transient OSS errors are retried with a backoff starting at ``poll_interval`` and doubling up to
    :data:`MAX_ERROR_BACKOFF_SECONDS`, for as long as the trigger runs (until the sensor's timeout).

    :param expected_cmk: the CMK *identity* the objects must name (resolved by the sensor). A CMK
        reference here (a trigger serialized by an earlier version of this provider) is not
        interpreted: the trigger fires an ``error`` event asking for the task to be cleared, so the
        sensor resolves the reference again.
    :param require_integrity_tag: an object without this provider's integrity tag is a mismatch
        (default ``True``).
    """

    def __init__(
        self,
        bucket_key: str,
        bucket_name: str | None = None,
        oss_conn_id: str = "oss_default",
        wildcard_match: bool = False,
        expected_cmk: str | None = None,
        expected_wrap_alg: str | None = None,
        require_integrity_tag: bool = True,
        fail_on_mismatch: bool = True,
        poll_interval: float = 5.0,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow leaves BaseTrigger.__init__ unannotated
        self.bucket_key = bucket_key
        self.bucket_name = bucket_name
        self.oss_conn_id = oss_conn_id
        self.wildcard_match = wildcard_match
        self.expected_cmk = expected_cmk
        self.expected_wrap_alg = expected_wrap_alg
        self.require_integrity_tag = require_integrity_tag
        self.fail_on_mismatch = fail_on_mismatch
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "bucket_key": self.bucket_key,
                "bucket_name": self.bucket_name,
                "oss_conn_id": self.oss_conn_id,
                "wildcard_match": self.wildcard_match,
                "expected_cmk": self.expected_cmk,
                "expected_wrap_alg": self.expected_wrap_alg,
                "require_integrity_tag": self.require_integrity_tag,
                "fail_on_mismatch": self.fail_on_mismatch,
                "poll_interval": self.poll_interval,
            },
        )

    def _poll(self, hook: EncryptedOSSHook) -> KeyCheck:
        expectation = EncryptionExpectation(self.expected_cmk, self.expected_wrap_alg, self.require_integrity_tag)
        with quiet_oss2_logs():
            return check_keys(hook, self.bucket_name, self.bucket_key, self.wildcard_match, expectation)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        if self.expected_cmk is not None and is_cmk_reference(self.expected_cmk):
            yield TriggerEvent(
                {
                    "status": "error",
                    "message": (
                        f"expected_cmk {self.expected_cmk!r} is a CMK reference; the trigger compares CMK identities "
                        f"only (this trigger was deferred by an earlier version of the provider): clear the task so "
                        f"that EncryptedOSSKeySensor resolves the reference to its identity on the worker"
                    ),
                }
            )
            return
        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        # One hook for the whole wait: it looks its connection up on the first successful poll only. A lookup
        # is a call to the triggerer's supervisor, which the poll's thread waits for; a thread waiting for one
        # while the triggerer stops was never answered and kept the trigger runner from exiting until the
        # triggerer killed it (seen on every restart of a triggerer with a sensor deferred: 10 s, then SIGKILL).
        hook = EncryptedOSSHook(self.oss_conn_id)
        failures = 0  # consecutive polls ended by a transient OSS error
        while True:
            try:
                check = await asyncio.to_thread(self._poll, hook)
            except Exception as exc:  # noqa: BLE001 - transient: back off and poll again; else an error event
                if not is_transient_oss_error(exc):
                    yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
                    return
                failures += 1
                # The exponent is bounded so that a days-long outage cannot overflow the float.
                backoff = min(
                    self.poll_interval * 2 ** min(failures - 1, 20), max(self.poll_interval, MAX_ERROR_BACKOFF_SECONDS)
                )
                self.log.warning(
                    "OSS unavailable while waiting for %s (%s, %d in a row); polling again in %.1f s",
                    self.bucket_key,
                    type(exc).__name__,
                    failures,
                    backoff,
                )
                await asyncio.sleep(backoff)
                continue
            failures = 0
            if check.mismatched and self.fail_on_mismatch:
                yield TriggerEvent({"status": "violation", "message": "; ".join(check.mismatched)})
                return
            if check.matched and not check.mismatched:
                yield TriggerEvent({"status": "success", "objects": check.matched})
                return
            self.log.info(
                "Waiting for encrypted objects at %s (%d not as expected)", self.bucket_key, len(check.mismatched)
            )
            await asyncio.sleep(self.poll_interval)
