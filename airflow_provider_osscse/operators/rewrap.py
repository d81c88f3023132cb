"""Rotate the CMK of encrypted objects by rewrapping their data keys; content is not re-encrypted."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException

from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields

if TYPE_CHECKING:
    from airflow.sdk import Context

#: Failures listed in the report (the counts are always complete).
MAX_REPORTED_FAILURES = 50


class EncryptedOSSRewrapOperator(EncryptedOSSBaseOperator):
    """Rewrap the data key of one object or of every object under a prefix.

    Only the wrapped key and IV in the object's metadata change (a server-side copy onto itself),
    so a rotation costs one key-service round trip per object, whatever the object's size. A re-run
    reports objects already on the newest CMK version as ``already-current``; shard big prefixes by
    mapping: ``EncryptedOSSRewrapOperator.partial(...).expand(key=["logs/2024/", "logs/2025/"])``.

    :param key: an object key, or a prefix ending in ``/``.
    :param new_cmk: the CMK to wrap under; ``None`` rewraps under the newest version of the first
        ``decrypt_cmks`` entry (a Vault Transit rotation).
    :param decrypt_cmks: CMK references that may unwrap the current data keys.
    :param dry_run: report ``would-rewrap`` without changing anything.
    :param fail_on_error: fail the task (after pushing the report under XCom key ``rewrap_report``)
        when any object failed.

    ``oss_conn_id`` and ``matdesc`` (written with the new wrapped key): see
    :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator`.

    :return: ``{"prefix", "bucket", "dry_run", "total", "counts": {status: n}, "to_versions",
        "failures": [{"key", "error"}]}``.
    """

    template_fields: Sequence[str] = osscse_template_fields("key", "bucket", "new_cmk")
    ui_color = "#fce4ec"

    def __init__(
        self,
        *,
        key: str,
        bucket: str | None = None,
        new_cmk: str | None = None,
        dry_run: bool = False,
        fail_on_error: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.key = key
        self.bucket = bucket
        self.new_cmk = new_cmk
        # Not ``self.dry_run``: that is BaseOperator's method (render the template fields only).
        self.rewrap_dry_run = dry_run
        self.fail_on_error = fail_on_error

    @property
    def target_cmk(self) -> str | None:
        """``new_cmk``, else the first of ``decrypt_cmks`` (rewrapped onto its newest version)."""
        cmks = self.decrypt_cmk_list
        return self.new_cmk or (cmks[0] if cmks else None)

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "cmk": self.target_cmk}

    def execute(self, context: Context) -> dict[str, Any]:
        target = self.target_cmk
        if not target:
            raise ValueError("give new_cmk, or decrypt_cmks whose first entry is rewrapped onto its newest version")
        hook = self.hook
        bucket = hook.get_bucket(self.bucket).bucket_name
        if self.key == "" or self.key.endswith("/"):
            keys = [k for k in hook.list_keys(self.key, bucket) if not k.endswith("/")]
        else:
            keys = [self.key]

        counts: Counter[str] = Counter()
        to_versions: Counter[str] = Counter()
        failures: list[dict[str, str]] = []
        for key in keys:
            try:
                result = hook.rewrap(key, bucket, new_cmk=target, dry_run=self.rewrap_dry_run)
                status, error, to_version = result.status, result.error, result.to_version
            except Exception as exc:  # noqa: BLE001 - one bad object must not stop the rotation of the others
                status, error, to_version = "failed", f"{type(exc).__name__}: {exc}", None
            counts[status] += 1
            if to_version and status in ("rewrapped", "already-current", "would-rewrap"):
                to_versions[to_version] += 1
            if status == "failed":
                self.log.warning("Rewrap failed for oss://%s/%s: %s", bucket, key, error)
                if len(failures) < MAX_REPORTED_FAILURES:
                    failures.append({"key": key, "error": error or "unknown error"})
        report = {
            "prefix": self.key,
            "bucket": bucket,
            "dry_run": self.rewrap_dry_run,
            "total": len(keys),
            "counts": dict(counts),
            "to_versions": dict(to_versions),
            "failures": failures,
        }
        self.log.info("Rewrap of oss://%s/%s: %s", bucket, self.key, dict(counts))
        if counts["failed"] and self.fail_on_error:
            context["ti"].xcom_push(key="rewrap_report", value=report)
            raise AirflowException(f"{counts['failed']} of {len(keys)} objects failed to rewrap: {failures[:3]}")
        return report
