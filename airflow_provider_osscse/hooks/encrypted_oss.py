"""``EncryptedOSSHook``: client-side encrypted object I/O on an Airflow ``oss`` connection.

The hook holds configuration only; the oss2 client is built on first use and reused (with its
connection pool) for every call, and CMKs are resolved from their reference strings lazily too, so
constructing the hook in a DAG file costs nothing and touches no network.

Defaults keep the product's two promises: objects are readable by the official SDKs (the matdesc is
exactly the one the user configured, none by default) and tampering never passes (integrity
``require``: untagged objects are refused, no plaintext is released before the tag verified, and
every tag is bound to the object's bucket and key). See docs/hook.md.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any, BinaryIO

import oss2
from airflow.sdk import BaseHook

from airflow_provider_osscse.envelope.integrity import IntegrityPolicy
from airflow_provider_osscse.envelope.keywrap import Cmk
from airflow_provider_osscse.envelope.matdesc import dump_matdesc
from airflow_provider_osscse.exceptions import CmkReferenceError
from airflow_provider_osscse.keys.data_key_cache import DataKeyCacheLimits
from airflow_provider_osscse.keys.keyring import Keyring
from airflow_provider_osscse.transport.encrypted_objects import (
    EncryptedObjects,
    TransferConfig,
)
from airflow_provider_osscse.transport.oss_client import OssClientFactory, OssSettings
from airflow_provider_osscse.transport.progress import ProgressCallback
from airflow_provider_osscse.transport.results import (
    DownloadResult,
    ObjectInfo,
    PlaintextBytes,
    PlaintextStream,
    RewrapResult,
    UploadResult,
)


class EncryptedOSSHook(BaseHook):
    """Upload, download, read, inspect, copy, list and rewrap client-side encrypted OSS objects.

    :param oss_conn_id: an Airflow ``oss`` (alibaba provider) or ``oss_cse`` connection: same fields,
        plus optional extras ``security_token`` and ``signature_version``.
    :param cmk: reference of the CMK that wraps new objects (and is tried first on reads).
    :param decrypt_cmks: further CMK references accepted when reading (e.g. the pre-rotation key).
    :param integrity: ``require`` | ``if-present`` | ``off`` (see docs/hook.md). ``None`` (default):
        the OSS connection's extra ``integrity`` (the deployment's default) if set, else ``require``.
    :param matdesc: the material description written into new objects (``client-side-encryption-matdesc``,
        compact JSON), for official readers that select their key by it. ``None`` (default): the OSS
        connection's extra ``matdesc`` (a JSON object) if set, else none, as the official SDKs write.
        Only the write CMK carries it; reads never require it.
    :param bind_integrity_tag: bind every written tag to the object's bucket and key (default), so an
        object swapped or replayed under another name does not verify. ``False`` writes tags that
        verify under any name (e.g. for objects copied by tools other than this hook); a WARNING is
        logged once per hook.
    :param allow_plaintext: read objects without encryption headers as they are instead of raising.
    :param data_key_cache: opt-in write-side cache
        (:class:`~airflow_provider_osscse.keys.data_key_cache.DataKeyCacheLimits`) reusing one data key
        for a bounded number of small objects, with their IVs wrapped in batches; off by default (see
        docs/key-custody.md for the trade-off).
    """

    conn_name_attr = "oss_conn_id"
    default_conn_name = "oss_default"
    #: Declared by this provider (with the UI form); connections of the alibaba provider's ``oss``
    #: type carry the same fields and work unchanged. ``oss`` itself is not redeclared, because
    #: Airflow warns about a connection type registered by two providers.
    conn_type = "oss_cse"
    hook_name = "Alibaba Cloud OSS (client-side encrypted)"

    def __init__(
        self,
        oss_conn_id: str = default_conn_name,
        *,
        cmk: str | None = None,
        decrypt_cmks: Sequence[str] = (),
        integrity: str | IntegrityPolicy | None = None,
        matdesc: Mapping[str, str] | None = None,
        bind_integrity_tag: bool = True,
        allow_plaintext: bool = False,
        multipart_threshold: int = 32 * 2**20,
        part_size: int = 8 * 2**20,
        max_workers: int = 4,
        progress_callback: ProgressCallback | None = None,
        data_key_cache: DataKeyCacheLimits | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.oss_conn_id = oss_conn_id
        self.cmk = cmk
        self.decrypt_cmks = tuple(decrypt_cmks)
        #: The policy given to the constructor; ``None``: the connection's default (see :attr:`integrity_policy`).
        self.integrity: IntegrityPolicy | None = IntegrityPolicy(integrity) if integrity is not None else None
        if matdesc is not None:
            dump_matdesc(matdesc)  # str -> str only, checked before any network use
        #: The matdesc given to the constructor; ``None``: the connection's default (see :attr:`write_matdesc`).
        self.matdesc: dict[str, str] | None = dict(matdesc) if matdesc is not None else None
        self.bind_integrity_tag = bind_integrity_tag
        self._unbound_warned = False
        self.allow_plaintext = allow_plaintext
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.max_workers = max_workers
        self.progress_callback = progress_callback
        self.data_key_cache = data_key_cache
        self._cmk_cache: dict[str, Cmk] = {}
        self._cmk_lock = threading.Lock()

    # ------------------------------------------------------------------ clients
    @cached_property
    def _settings(self) -> OssSettings:
        conn = self.get_connection(self.oss_conn_id)
        return OssSettings.from_connection_fields(conn.schema, conn.extra_dejson)

    @cached_property
    def _clients(self) -> OssClientFactory:
        return OssClientFactory(self._settings, pool_size=max(10, 2 * self.max_workers))

    @property
    def integrity_policy(self) -> IntegrityPolicy:
        """The read policy in force: the hook's ``integrity``, else the connection extra, else ``require``."""
        if self.integrity is not None:
            return self.integrity
        return self._settings.integrity or IntegrityPolicy.REQUIRE

    @property
    def write_matdesc(self) -> dict[str, str]:
        """The matdesc written into new objects: the hook's ``matdesc``, else the connection extra, else none."""
        if self.matdesc is not None:
            return dict(self.matdesc)
        return dict(self._settings.matdesc or {})

    @cached_property
    def _objects(self) -> EncryptedObjects:
        config = TransferConfig(
            multipart_threshold=self.multipart_threshold,
            part_size=self.part_size,
            max_workers=self.max_workers,
            integrity=self.integrity_policy,
            allow_plaintext=self.allow_plaintext,
            bind_integrity_tag=self.bind_integrity_tag,
        )
        return EncryptedObjects(self._clients.bucket, config, logger=self.log, progress_callback=self.progress_callback)

    def get_conn(self) -> OssClientFactory:
        """The (cached) client factory: ``.service()`` and ``.bucket(name)`` give oss2 objects."""
        return self._clients

    def get_bucket(self, bucket: str | None = None) -> oss2.Bucket:
        """The oss2 ``Bucket`` (cached); ``None`` means the connection's default bucket (schema)."""
        return self._clients.bucket(bucket)

    def test_connection(self) -> tuple[bool, str]:
        """List one object of the default bucket, or the buckets when there is no default."""
        try:
            if self._settings.default_bucket:
                self.get_bucket().list_objects_v2(max_keys=1)
                return True, f"bucket {self._settings.default_bucket!r} is reachable"
            self._clients.service().list_buckets(max_keys=1)
            return True, "OSS is reachable"
        except Exception as exc:  # noqa: BLE001 - reported to the UI, not raised
            return False, f"{type(exc).__name__}: {_one_line(exc)}"

    # ------------------------------------------------------------------ CMKs
    def _resolve(self, reference: str, matdesc: Mapping[str, str] | None = None) -> Cmk:
        """The CMK named by ``reference`` (cached per hook); ``matdesc`` only for the CMK that writes."""
        cache_key = reference if not matdesc else f"{reference}\x00{dump_matdesc(matdesc)}"
        with self._cmk_lock:
            wrapper = self._cmk_cache.get(cache_key)
            if wrapper is None:
                from airflow_provider_osscse.keys.data_key_cache import (
                    with_data_key_cache,
                )
                from airflow_provider_osscse.keys.reference import resolve_cmk

                wrapper = with_data_key_cache(resolve_cmk(reference, matdesc=matdesc or None), self.data_key_cache)
                self._cmk_cache[cache_key] = wrapper
            return wrapper

    def _write_key(self, reference: str | None = None) -> Cmk:
        """The CMK wrapping new data keys, carrying the configured matdesc (and nothing else)."""
        reference = reference or self.cmk
        if not reference:
            raise CmkReferenceError("uploading needs a CMK: pass cmk='<reference>' to EncryptedOSSHook")
        return self._resolve(reference, self.write_matdesc)

    def _warn_if_unbound(self) -> None:
        """Once per hook: unbound tags are an explicit, weaker choice."""
        if not self.bind_integrity_tag and not self._unbound_warned:
            self._unbound_warned = True
            self.log.warning(
                "bind_integrity_tag=False: integrity tags written by this hook are NOT bound to the "
                "object's bucket and key, so an object swapped or replayed under another name "
                "still verifies"
            )

    def _read_keys(self, primary: str | None = None) -> Keyring | None:
        """The CMKs accepted on reads (no matdesc needed: objects name their CMK); ``primary`` (a
        rewrap's target) first and resolved as the write CMK, since it wraps."""
        refs = [r for r in (primary, self.cmk, *self.decrypt_cmks) if r]
        refs = list(dict.fromkeys(refs))
        if not refs:
            return None
        first = self._write_key(refs[0]) if primary else self._resolve(refs[0])
        return Keyring(first, [self._resolve(r) for r in refs[1:]])

    # ------------------------------------------------------------------ operations
    def upload(
        self,
        source: str | os.PathLike[str] | BinaryIO | Iterable[bytes],
        key: str,
        bucket: str | None = None,
        *,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
        size: int | None = None,
    ) -> UploadResult:
        """Encrypt and upload; one PUT below ``multipart_threshold``, a parallel multipart above."""
        self._warn_if_unbound()
        return self._objects.put(
            key, source, self._write_key(), bucket=bucket, metadata=metadata, content_type=content_type, size=size
        )

    def download(self, key: str, destination: str | os.PathLike[str], bucket: str | None = None) -> DownloadResult:
        """Decrypt to ``destination`` atomically (verified first; nothing written on failure)."""
        return self._objects.download(key, destination, self._read_keys(), bucket=bucket)

    def read(self, key: str, bucket: str | None = None, *, byte_range: str | None = None) -> PlaintextBytes:
        """The plaintext, or a range ``a-b`` / ``a-`` / ``-n`` of it, as ``bytes`` that also carry
        ``uri``, ``integrity`` (``verified`` | ``unauthenticated`` | ``skipped``), ``cmk`` and
        ``key_version``. Under ``require`` a range is returned only after the whole object verified."""
        return self._objects.read(key, self._read_keys(), bucket=bucket, byte_range=byte_range)

    def stream(self, key: str, bucket: str | None = None, *, byte_range: str | None = None) -> PlaintextStream:
        """Plaintext chunks, with ``uri``, ``integrity``, ``cmk`` and ``key_version`` attributes.

        When the tag is verified (always under ``require``), no chunk is released before the whole
        object verified: an altered object raises ``IntegrityError`` on the first ``next()``.
        """
        return self._objects.stream(key, self._read_keys(), bucket=bucket, byte_range=byte_range)

    def inspect(self, key: str, bucket: str | None = None) -> ObjectInfo:
        """The envelope as the headers describe it; nothing is unwrapped or decrypted."""
        return self._objects.inspect(key, bucket=bucket)

    def copy(
        self, source_key: str, dest_key: str, source_bucket: str | None = None, dest_bucket: str | None = None
    ) -> str:
        """Server-side copy that stays valid at its new name; returns the new ETag.

        An object whose tag is bound to its name gets the tag re-bound to ``dest_key`` (the data key
        is unwrapped with the hook's read CMKs; no content is read); other objects are copied as they are.
        """
        return self._objects.copy(
            source_key, dest_key, source_bucket=source_bucket, dest_bucket=dest_bucket, keys=self._read_keys
        )

    def exists(self, key: str, bucket: str | None = None) -> bool:
        return self._objects.exists(key, bucket=bucket)

    def list_keys(self, prefix: str = "", bucket: str | None = None) -> Iterator[str]:
        return self._objects.list_keys(prefix, bucket=bucket)

    def delete(self, key: str, bucket: str | None = None) -> None:
        self._objects.delete(key, bucket=bucket)

    def rewrap(
        self, key: str, bucket: str | None = None, *, new_cmk: str | None = None, dry_run: bool = False
    ) -> RewrapResult:
        """Re-wrap the data key under ``new_cmk`` (default: the hook's ``cmk``, newest version)."""
        target = new_cmk or self.cmk
        if not target:
            raise CmkReferenceError("rewrap needs a target CMK: new_cmk= or the hook's cmk=")
        keys = self._read_keys(target)
        if keys is None:  # unreachable: target is a non-empty reference, so the keyring has it
            raise CmkReferenceError("rewrap needs a target CMK: new_cmk= or the hook's cmk=")
        return self._objects.rewrap(key, keys, bucket=bucket, dry_run=dry_run)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


__all__ = ["EncryptedOSSHook"]
