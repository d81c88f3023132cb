"""Wait for OSS objects that exist *and* are client-side encrypted the way the pipeline expects."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from airflow_provider_osscse.triggers.encrypted_oss_key import (
    EncryptedOSSKeyTrigger,
    EncryptionExpectation,
    check_keys,
    is_cmk_reference,
    is_transient_oss_error,
    quiet_oss2_logs,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class EncryptedOSSKeySensor(BaseSensorOperator):
    """Succeeds when a key, every object under a prefix, or every wildcard match is encrypted as expected.

    A plaintext object (or one under another CMK / wrap-alg, or without integrity tag when
    ``require_integrity_tag``, the default) is a policy violation, not a "not yet": with
    ``fail_on_mismatch`` (default) the task fails at once without retries; otherwise the sensor keeps
    waiting. The sensor reads headers only: it does not verify the tag (a download does), it checks
    that the object carries one, so an object whose tag was stripped is refused here already.

    Works with ``mode="poke"``, ``mode="reschedule"`` and ``deferrable=True`` (one poke, then the
    :class:`EncryptedOSSKeyTrigger`, which only reads object metadata). Deferred, a policy violation
    also fails at once without retries, and transient OSS errors (connection refused, 5xx), at the
    first poke as during the wait, are retried with backoff inside the trigger until ``timeout``.
    oss2's per-poll 404 INFO line is kept out of the task log
    (:func:`~airflow_provider_osscse.triggers.encrypted_oss_key.quiet_oss2_logs`).

    :param bucket_key: an object key, a prefix ending in ``/``, or a pattern with ``wildcard_match``.
    :param expected_cmk: the CMK the objects must name: a reference (``vault-kv://conn/secret/etl``,
        resolved on the worker to the key's identity, which for Vault KV and RSA files means reading
        the public key) or an identity as objects carry it (``vault-transit:transit/orders``,
        ``kms:<key id>``, ``rsa-sha256:<fingerprint>``), compared with ``ObjectInfo.cmk``. The
        trigger only ever receives the identity.
    :param expected_wrap_alg: e.g. ``VAULT/TRANSIT`` or ``RSA/NONE/PKCS1Padding``.
    :param require_integrity_tag: an object without this provider's integrity tag (written by an
        official SDK, or stripped) is a mismatch; default ``True``. ``False`` accepts such objects.
    :return: (deferrable and poke alike) a list of ``{uri, key, cmk, key_version, wrap_alg,
        integrity_tag, integrity_bound}`` for the matching objects, pushed as XCom.
    """

    template_fields: Sequence[str] = ("bucket_key", "bucket_name", "oss_conn_id", "expected_cmk", "expected_wrap_alg")
    ui_color = "#fffde7"

    def __init__(
        self,
        *,
        bucket_key: str,
        bucket_name: str | None = None,
        oss_conn_id: str = "oss_default",
        wildcard_match: bool = False,
        expected_cmk: str | None = None,
        expected_wrap_alg: str | None = None,
        require_integrity_tag: bool = True,
        fail_on_mismatch: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bucket_key = bucket_key
        self.bucket_name = bucket_name
        self.oss_conn_id = oss_conn_id
        self.wildcard_match = wildcard_match
        self.expected_cmk = expected_cmk
        self.expected_wrap_alg = expected_wrap_alg
        self.require_integrity_tag = require_integrity_tag
        self.fail_on_mismatch = fail_on_mismatch
        self.deferrable = deferrable
        self._matched: list[dict[str, Any]] = []
        self._expected_identity: tuple[str, str] | None = None  # (reference, identity) once resolved

    def expected_cmk_identity(self) -> str | None:
        """``expected_cmk`` as an identity: a reference is resolved once (per rendered value) on the
        worker, through the same CMK resolution the hook uses; an identity is taken as it is."""
        if not self.expected_cmk:
            return None
        if not is_cmk_reference(self.expected_cmk):
            return self.expected_cmk
        if self._expected_identity is None or self._expected_identity[0] != self.expected_cmk:
            from airflow_provider_osscse.exceptions import CmkReferenceError
            from airflow_provider_osscse.keys.reference import resolve_cmk

            identity = resolve_cmk(self.expected_cmk).identity
            if not identity:
                raise CmkReferenceError(
                    f"expected_cmk {self.expected_cmk!r} names a CMK without an identity; give the identity "
                    f"the objects carry in x-oss-meta-osscse-cmk instead"
                )
            self._expected_identity = (self.expected_cmk, identity)
        return self._expected_identity[1]

    def poke(self, context: Context) -> bool:
        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        expectation = EncryptionExpectation(
            self.expected_cmk_identity(), self.expected_wrap_alg, self.require_integrity_tag
        )
        with quiet_oss2_logs():  # a 404 is the expected answer while waiting, not an INFO "Exception: {...}"
            check = check_keys(
                EncryptedOSSHook(self.oss_conn_id), self.bucket_name, self.bucket_key, self.wildcard_match, expectation
            )
        if check.mismatched:
            message = "; ".join(check.mismatched)
            if self.fail_on_mismatch:
                raise AirflowFailException(message)
            self.log.warning("Not as expected yet: %s", message)
            return False
        self._matched = check.matched
        return bool(check.matched)

    def execute(self, context: Context) -> list[dict[str, Any]] | None:  # noqa: RET503 - defer() never returns
        if not self.deferrable:
            super().execute(context)
            return self._matched
        try:
            if self.poke(context):
                return self._matched
        except Exception as exc:
            # OSS unreachable at the first poke: the trigger rides that out like any later blip (backoff until
            # the timeout) instead of this try failing before the wait has begun.
            if not is_transient_oss_error(exc):
                raise
            self.log.warning(
                "OSS unavailable at the first check of %s (%s); deferring: the trigger polls again with backoff",
                self.bucket_key,
                type(exc).__name__,
            )
        self.defer(
            trigger=EncryptedOSSKeyTrigger(
                bucket_key=self.bucket_key,
                bucket_name=self.bucket_name,
                oss_conn_id=self.oss_conn_id,
                wildcard_match=self.wildcard_match,
                expected_cmk=self.expected_cmk_identity(),
                expected_wrap_alg=self.expected_wrap_alg,
                require_integrity_tag=self.require_integrity_tag,
                fail_on_mismatch=self.fail_on_mismatch,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )  # defer() raises TaskDeferred: the task resumes in execute_complete

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Resume after the trigger: ``violation`` fails the task without retries (as poke mode does: a
        retry cannot change the object), ``error`` raises a retryable error, ``success`` returns the XCom."""
        status = event.get("status")
        if status == "success":
            return list(event.get("objects", []))
        message = f"EncryptedOSSKeySensor: {event.get('message', 'trigger failed')}"
        if status == "violation":
            raise AirflowFailException(message)
        raise AirflowException(message)
