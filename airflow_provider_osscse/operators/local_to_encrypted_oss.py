"""Encrypt local files (one file, a glob or a directory) into OSS under a CMK."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_provider_osscse.lineage import file_dataset, operator_lineage, oss_dataset
from airflow_provider_osscse.operators.local_paths import expand_local_source, key_for_file

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook


class LocalFilesystemToEncryptedOSSOperator(BaseOperator):
    """Envelope-encrypt local files and upload them to OSS.

    :param source_path: a file, a glob (``/data/*.csv``, ``**`` allowed) or a directory (recursive).
    :param dest_key: for a single file, the object key (or a prefix ending in ``/``, which keeps the
        file name); for a glob or directory, the prefix under which relative paths are kept.
    :param cmk: the CMK reference that wraps each object's data key (``vault-transit://...``, ...).
    :param dest_bucket: defaults to the connection's ``schema``.
    :param metadata: extra user metadata (``x-oss-meta-*``) for every object. Never put secrets in it.
    :param matdesc: material description entries written to the objects' ``client-side-encryption-matdesc``
        (templated); ``None`` (default) means the OSS connection's ``matdesc`` extra, else none, which
        is what official SDK readers built without a matdesc expect.
    :param bind_integrity_tag: ``True`` (default) binds each object's integrity tag to its bucket and
        key, so the object swapped or replayed under another name fails verification. ``False``
        writes unbound tags, giving that up; only for objects that other tools copy or move.
    :return: ``UploadResult.to_xcom()`` for a single file; a list of them for a glob or directory.
    """

    template_fields: Sequence[str] = (
        "source_path", "dest_key", "dest_bucket", "cmk", "oss_conn_id", "metadata", "matdesc",
    )
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        source_path: str,
        dest_key: str,
        cmk: str,
        dest_bucket: str | None = None,
        oss_conn_id: str = "oss_default",
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        multipart_threshold: int = 32 * 2**20,
        part_size: int = 8 * 2**20,
        max_workers: int = 4,
        matdesc: Mapping[str, str] | None = None,
        bind_integrity_tag: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.source_path = source_path
        self.dest_key = dest_key
        self.cmk = cmk
        self.dest_bucket = dest_bucket
        self.oss_conn_id = oss_conn_id
        self.metadata = metadata
        self.content_type = content_type
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_workers = max_workers
        self.matdesc = matdesc
        self.bind_integrity_tag = bind_integrity_tag
        self._written: list[dict[str, Any]] = []
        self._read: list[str] = []

    def _hook(self) -> EncryptedOSSHook:
        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        return EncryptedOSSHook(
            self.oss_conn_id,
            cmk=self.cmk,
            multipart_threshold=self.multipart_threshold,
            part_size=self.part_size,
            max_workers=self.max_workers,
            matdesc=self.matdesc,
            bind_integrity_tag=self.bind_integrity_tag,
        )

    def execute(self, context: Context) -> dict[str, Any] | list[dict[str, Any]]:
        if not self.cmk:
            raise ValueError("cmk is required: the CMK reference that wraps the data keys")
        root, files = expand_local_source(self.source_path)
        if not files:
            raise FileNotFoundError(f"no files match {self.source_path!r}")
        hook = self._hook()
        results: list[dict[str, Any]] = []
        for path in files:
            key = key_for_file(path, root, self.dest_key)
            result = hook.upload(
                path, key, self.dest_bucket, metadata=self.metadata, content_type=self.content_type,
                size=os.path.getsize(path),
            )
            self.log.info("Encrypted %s -> %s (%d bytes, CMK %s %s)", path, result.uri, result.size, result.cmk,
                          result.key_version or "")
            results.append(result.to_xcom())
            self._read.append(str(path.resolve()))
        self._written = results
        return results[0] if root is None else results

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(
            inputs=[file_dataset(p) for p in self._read],
            outputs=[oss_dataset(r["bucket"], r["key"]) for r in self._written],
        )
