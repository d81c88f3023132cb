"""Decrypt an OSS object, or every object under a prefix, to the local filesystem."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_osscse.lineage import file_dataset, operator_lineage, oss_dataset
from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields, raise_failures
from airflow_provider_osscse.operators.local_paths import destination_for_key, safe_relative_key

if TYPE_CHECKING:
    from airflow.sdk import Context


class EncryptedOSSToLocalFilesystemOperator(EncryptedOSSBaseOperator):
    """Download and decrypt objects; the integrity policy decides what an untagged object means.

    Safe by default: under ``require`` (the default unless the OSS connection's ``integrity`` extra
    says otherwise) an object without a valid integrity tag, including one altered, swapped from
    another name or stripped of its tag, fails the task and no file appears under its final name.
    Every object read without verification is logged at WARNING and reported in the XCom result.

    :param source_key: an object key, or a prefix ending in ``/`` (every object below it).
    :param dest_path: for one object, the file to write (or an existing directory / a path ending
        in ``/``, which keeps the key's last segment); for a prefix, the directory that receives the
        objects' relative paths. Keys that would leave it (``..``, absolute, backslash, NUL) are
        refused by name before anything is written.
    :param decrypt_cmks: CMK references allowed to unwrap (the object's CMK identity picks among them).
    :param integrity: ``require`` | ``if-present`` | ``off``; ``None`` (default) means the OSS
        connection's ``integrity`` extra, else ``require``. ``if-present`` accepts untagged objects
        (e.g. written by an official SDK) as ``unauthenticated``; ``off`` verifies nothing.
    :param allow_plaintext: pass through objects without encryption headers instead of failing.
    :param overwrite: replace files that already exist (default ``True``, so that a retry or a re-run
        of the task, which Airflow expects to be idempotent, writes the same path again). ``False``
        fails the task, before any object is transferred, if any destination file exists (like
        ``osscse get`` without ``--force``). Either way a file is replaced only by a verified one.

    ``oss_conn_id`` and the transfer tuning (``concurrency``: objects of a prefix downloaded at once): see
    :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator`.

    :return: ``DownloadResult.to_xcom()`` for one object; a list of them for a prefix. Each carries
        ``integrity``: ``verified``, ``unauthenticated`` or ``skipped``.
    """

    template_fields: Sequence[str] = osscse_template_fields("source_key", "dest_path", "source_bucket")
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        source_key: str,
        dest_path: str,
        source_bucket: str | None = None,
        allow_plaintext: bool = False,
        overwrite: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_key = source_key
        self.dest_path = dest_path
        self.source_bucket = source_bucket
        self.allow_plaintext = allow_plaintext
        self.overwrite = overwrite
        self._results: list[dict[str, Any]] = []

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "allow_plaintext": self.allow_plaintext}

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        hook = self.hook
        is_prefix = self.source_key == "" or self.source_key.endswith("/")
        if not is_prefix:
            target = self._single_target(self.source_key)
            self._refuse_existing([target])
            target.parent.mkdir(parents=True, exist_ok=True)
            result = hook.download(self.source_key, target, self.source_bucket).to_xcom()
            self._results = [result]
            self._log_result(result, target)
            return result

        keys = [k for k in hook.list_keys(self.source_key, self.source_bucket) if not k.endswith("/")]
        # Check every key before writing anything: one hostile key refuses the whole prefix.
        targets = [(key, destination_for_key(self.dest_path, key, self.source_key)) for key in keys]
        self._refuse_existing([target for _, target in targets])
        for _, target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
        # Many objects at once (data keys unwrapped per group, bounded threads); every object is
        # tried, and the task fails after the others were written if any could not be.
        results: list[dict[str, Any]] = []
        failures: list[tuple[str, BaseException]] = []
        by_key = dict(targets)
        for outcome in hook.download_many(targets, self.source_bucket, concurrency=self.concurrency):
            if outcome.result is None:
                failures.append((outcome.key, outcome.error or RuntimeError("unknown error")))
                self.log.error("Could not download %s: %s", outcome.key, outcome.error)
                continue
            result = outcome.result.to_xcom()
            self._log_result(result, by_key[outcome.key])
            results.append(result)
        self._results = results
        if failures:
            raise_failures("download", failures, len(targets))
        return results

    def _log_result(self, result: dict[str, Any], target: Path) -> None:
        """INFO for a verified object; WARNING for one whose plaintext is unauthenticated."""
        status = str(getattr(result["integrity"], "value", result["integrity"]))
        result["integrity"] = status  # XCom carries the plain string
        if status == "verified":
            self.log.info("Decrypted %s -> %s (integrity verified)", result["uri"], target)
        else:
            self.log.warning(
                "Decrypted %s -> %s WITHOUT integrity verification (integrity %s): its content is unauthenticated",
                result["uri"],
                target,
                status,
            )

    def _refuse_existing(self, targets: list[Path]) -> None:
        """With ``overwrite=False``: fail before any transfer if a destination file exists."""
        if self.overwrite:
            return
        existing = [str(t) for t in targets if t.exists()]
        if existing:
            shown = ", ".join(existing[:3]) + (f" and {len(existing) - 3} more" if len(existing) > 3 else "")
            raise FileExistsError(
                f"{shown} already exist(s) and overwrite=False; remove them, or pass overwrite=True to replace them"
            )

    def _single_target(self, key: str) -> Path:
        """The file for one object; a directory destination keeps the key's (checked) last segment."""
        dest = Path(self.dest_path)
        if self.dest_path.endswith(("/", os.sep)) or dest.is_dir():
            name = safe_relative_key(key).name
            return destination_for_key(dest, name)
        return dest

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(
            inputs=[oss_dataset(r["bucket"], r["key"]) for r in self._results],
            outputs=[file_dataset(str(Path(r["path"]).resolve())) for r in self._results],
        )
