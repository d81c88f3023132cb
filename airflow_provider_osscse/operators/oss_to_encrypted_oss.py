"""Encrypt objects that already sit in OSS in plaintext, streamed through the worker."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import oss2

from airflow_provider_osscse.exceptions import AlreadyEncryptedError, ObjectVerificationError
from airflow_provider_osscse.lineage import operator_lineage, oss_dataset
from airflow_provider_osscse.operators.base import EncryptedOSSBaseOperator, osscse_template_fields
from airflow_provider_osscse.transport.oss_errors import OssSite, translate_oss_error

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

_READ_CHUNK = 1024 * 1024


class OSSToEncryptedOSSOperator(EncryptedOSSBaseOperator):
    """Copy plaintext OSS objects to client-side-encrypted ones (same or another bucket/connection).

    The plaintext is streamed (never written to disk) and hashed on the way; with ``verify`` the new
    object is read back, decrypted and compared by SHA-256. ``delete_source`` removes the plaintext
    only after that comparison succeeded, and never when source and destination are the same object.

    :param source_key: an object key, or a prefix ending in ``/``.
    :param dest_key: the destination key, or for a prefix the destination prefix; default: the same.
    :param source_bucket / dest_bucket: default to the respective connection's ``schema``.
    :param source_oss_conn_id / dest_oss_conn_id: the destination defaults to the source connection.
    :param skip_encrypted: objects that already carry encryption headers are skipped (``False``:
        they fail the task, since re-encrypting ciphertext would hide its real key).
    :param verify: read each copy back under integrity policy ``require`` (its tag must verify, and
        with ``bind_integrity_tag`` name this bucket and key) and compare the plaintext's SHA-256
        with what was read.
    :param metadata: extra user metadata (``x-oss-meta-*``) for every object. Never put secrets in it.

    ``matdesc``, ``bind_integrity_tag``, ``multipart_threshold``, ``part_size`` and ``max_workers``:
    see :class:`~airflow_provider_osscse.operators.base.EncryptedOSSBaseOperator`. Its
    ``oss_conn_id`` is ``source_oss_conn_id`` here (the destination hook uses ``dest_oss_conn_id``,
    defaulting to it), and the read-back always runs under ``require``.

    :return: a list of ``UploadResult.to_xcom()`` dicts with ``source_uri``, ``verified``,
        ``read_back_integrity`` (``verified``, or ``None`` without ``verify``) and ``source_deleted``
        added (one per object; a single-item list for one key).
    """

    template_fields: Sequence[str] = osscse_template_fields(
        "source_key", "dest_key", "source_bucket", "dest_bucket", "cmk", "source_oss_conn_id", "dest_oss_conn_id"
    )
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        source_key: str,
        cmk: str,
        dest_key: str | None = None,
        source_bucket: str | None = None,
        dest_bucket: str | None = None,
        source_oss_conn_id: str = "oss_default",
        dest_oss_conn_id: str | None = None,
        verify: bool = True,
        delete_source: bool = False,
        skip_encrypted: bool = True,
        metadata: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(oss_conn_id=source_oss_conn_id, **kwargs)
        self.source_key = source_key
        self.cmk = cmk
        self.dest_key = dest_key
        self.source_bucket = source_bucket
        self.dest_bucket = dest_bucket
        self.source_oss_conn_id = source_oss_conn_id
        self.dest_oss_conn_id = dest_oss_conn_id
        self.verify = verify
        self.delete_source = delete_source
        self.skip_encrypted = skip_encrypted
        self.metadata = metadata
        self._pairs: list[tuple[str, str, str, str]] = []

    @property
    def _hook_parameters(self) -> dict[str, Any]:
        """The destination: writes under ``cmk``; the read-back proves the copy with its tag whatever the
        connection's default policy."""
        return {
            **super()._hook_parameters,
            "oss_conn_id": self.dest_oss_conn_id or self.source_oss_conn_id,
            "cmk": self.cmk,
            "decrypt_cmks": [self.cmk, *self.decrypt_cmk_list],
            "integrity": "require",
        }

    @cached_property
    def source_hook(self) -> EncryptedOSSHook:
        """The source connection's hook; reads the plaintext objects as they are."""
        from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

        return EncryptedOSSHook(self.source_oss_conn_id, allow_plaintext=True)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        if self.delete_source and not self.verify:
            raise ValueError(
                "delete_source=True needs verify=True: the plaintext is only removed once the copy is proven"
            )
        source, dest = self.source_hook, self.hook
        source_bucket = source.get_bucket(self.source_bucket).bucket_name
        dest_bucket = dest.get_bucket(self.dest_bucket).bucket_name

        if self.source_key == "" or self.source_key.endswith("/"):
            dest_prefix = self.source_key if self.dest_key is None else self.dest_key
            pairs = [
                (k, dest_prefix + k[len(self.source_key) :])
                for k in source.list_keys(self.source_key, source_bucket)
                if not k.endswith("/")
            ]
        else:
            pairs = [(self.source_key, self.dest_key or self.source_key)]

        results = []
        for source_key, dest_key in pairs:
            result = self._encrypt_one(source, dest, source_bucket, source_key, dest_bucket, dest_key)
            if result is not None:
                results.append(result)
                self._pairs.append((source_bucket, source_key, dest_bucket, dest_key))
        return results

    def _encrypt_one(
        self,
        source: EncryptedOSSHook,
        dest: EncryptedOSSHook,
        source_bucket: str,
        source_key: str,
        dest_bucket: str,
        dest_key: str,
    ) -> dict[str, Any] | None:
        info = source.inspect(source_key, source_bucket)
        if info.encrypted:
            if self.skip_encrypted:
                self.log.info("Skipping %s: already client-side encrypted", info.uri)
                return None
            raise AlreadyEncryptedError(f"{info.uri} is already encrypted; refusing to encrypt ciphertext again")
        try:
            raw = source.get_bucket(source_bucket).get_object(source_key)
        except oss2.exceptions.OssError as exc:  # one line naming bucket, key and fix, not oss2's dict
            site = OssSite("GetObject", bucket=source_bucket, key=source_key, connection=self.source_oss_conn_id)
            raise (translate_oss_error(exc, site) or exc) from exc
        digest = hashlib.sha256()

        def chunks() -> Iterator[bytes]:
            while chunk := raw.read(_READ_CHUNK):
                digest.update(chunk)
                yield chunk

        result = dest.upload(chunks(), dest_key, dest_bucket, metadata=self.metadata, size=info.ciphertext_size)
        out = result.to_xcom() | {
            "source_uri": info.uri,
            "verified": False,
            "read_back_integrity": None,
            "source_deleted": False,
        }
        if self.verify:
            check = hashlib.sha256()
            with dest.stream(dest_key, dest_bucket) as stream:
                for chunk in stream:
                    check.update(chunk)
                status = stream.integrity
            if check.digest() != digest.digest():
                raise ObjectVerificationError(f"{result.uri} does not decrypt to the bytes of {info.uri}; source kept")
            out["read_back_integrity"] = str(getattr(status, "value", status)) if status is not None else None
            out["verified"] = True
        same_object = (source.oss_conn_id, source_bucket, source_key) == (dest.oss_conn_id, dest_bucket, dest_key)
        if self.delete_source and not same_object:
            source.delete(source_key, source_bucket)
            out["source_deleted"] = True
        self.log.info(
            "Encrypted %s -> %s (verified=%s, source deleted=%s)",
            info.uri,
            result.uri,
            out["verified"],
            out["source_deleted"],
        )
        return out

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        return operator_lineage(
            inputs=[oss_dataset(b, k) for b, k, _, _ in self._pairs],
            outputs=[oss_dataset(b, k) for _, _, b, k in self._pairs],
        )
