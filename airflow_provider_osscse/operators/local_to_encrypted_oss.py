"""Encrypt local files (one file, a glob or a directory) into OSS under a CMK."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_osscse.lineage import file_dataset, operator_lineage, oss_dataset
from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields, raise_failures
from airflow_provider_osscse.operators.local_paths import expand_local_source, key_for_file

if TYPE_CHECKING:
    from airflow.sdk import Context


class LocalFilesystemToEncryptedOSSOperator(EncryptedOSSBaseOperator):
    """Envelope-encrypt local files and upload them to OSS.

    :param source_path: a file, a glob (``/data/*.csv``, ``**`` allowed) or a directory (recursive).
    :param dest_key: for a single file, the object key (or a prefix ending in ``/``, which keeps the
        file name); for a glob or directory, the prefix under which relative paths are kept.
    :param cmk: the CMK reference that wraps each object's data key (``vault-transit://...``, ...).
    :param dest_bucket: defaults to the connection's ``schema``.
    :param metadata: extra user metadata (``x-oss-meta-*``) for every object. Never put secrets in it.
    :param content_type: the objects' ``Content-Type``.

    ``oss_conn_id``, ``matdesc``, ``bind_integrity_tag``, ``multipart_threshold``, ``part_size``,
    ``max_workers`` and ``concurrency`` (files of a folder or glob uploaded at once): see
    :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator`.

    :return: ``UploadResult.to_xcom()`` for a single file; a list of them for a glob or directory.
    """

    template_fields: Sequence[str] = osscse_template_fields("source_path", "dest_key", "dest_bucket", "cmk", "metadata")
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        source_path: str,
        dest_key: str,
        cmk: str,
        dest_bucket: str | None = None,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_path = source_path
        self.dest_key = dest_key
        self.cmk = cmk
        self.dest_bucket = dest_bucket
        self.metadata = metadata
        self.content_type = content_type
        self._written: list[dict[str, Any]] = []
        self._read: list[str] = []

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        return {**super()._hook_parameters, "cmk": self.cmk}

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        if not self.cmk:
            raise ValueError("cmk is required: the CMK reference that wraps the data keys")
        root, files = expand_local_source(self.source_path)
        if not files:
            raise FileNotFoundError(f"no files match {self.source_path!r}")
        if root is None:  # one file
            path = files[0]
            result = self.hook.upload(
                path,
                key_for_file(path, root, self.dest_key),
                self.dest_bucket,
                metadata=self.metadata,
                content_type=self.content_type,
                size=os.path.getsize(path),
            )
            self._log_upload(path, result.uri, result.size, result.cmk, result.key_version)
            self._written, self._read = [result.to_xcom()], [str(path.resolve())]
            return self._written[0]
        # A folder or glob: many objects at once (data keys per group, bounded threads); every file is
        # tried, and the task fails after the others were uploaded if any could not be.
        by_key = {key_for_file(path, root, self.dest_key): path for path in files}
        outcomes = self.hook.upload_many(
            ((path, key) for key, path in by_key.items()),
            self.dest_bucket,
            metadata=self.metadata,
            content_type=self.content_type,
            concurrency=self.concurrency,
        )
        results: list[dict[str, Any]] = []
        failures: list[tuple[str, BaseException]] = []
        for outcome in outcomes:
            path = by_key[outcome.key]
            if outcome.result is None:
                failures.append((str(path), outcome.error or RuntimeError("unknown error")))
                self.log.error("Could not encrypt %s -> %s: %s", path, outcome.key, outcome.error)
                continue
            result = outcome.result
            self._log_upload(path, result.uri, result.size, result.cmk, result.key_version)
            results.append(result.to_xcom())
            self._read.append(str(path.resolve()))
        self._written = results
        if failures:
            raise_failures("upload", failures, len(by_key))
        return results

    def _log_upload(self, path: Any, uri: str, size: int, cmk: str, version: str | None) -> None:
        self.log.info("Encrypted %s -> %s (%d bytes, CMK %s %s)", path, uri, size, cmk, version or "")

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(
            inputs=[file_dataset(p) for p in self._read],
            outputs=[oss_dataset(r["bucket"], r["key"]) for r in self._written],
        )
