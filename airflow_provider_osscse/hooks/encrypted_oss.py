"""``EncryptedOSSHook``: client-side encrypted object I/O on an Airflow ``oss`` connection.

What it does lives in :mod:`~airflow_provider_osscse.hooks.encrypted_oss_operations` (shared with the
``osscse`` command line, which runs without importing Airflow); this module makes it an Airflow
hook: connection type, ``BaseHook.get_connection`` (secrets backends, environment variables,
metadata DB) and the task logger.

Defaults keep the product's two promises: objects are readable by the official SDKs (the matdesc is
exactly the one the user configured, none by default) and tampering never passes (integrity
``require``: untagged objects are refused, no plaintext is released before the tag verified, and
every tag is bound to the object's bucket and key). See docs/hook.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from airflow_provider_osscse.hooks.encrypted_oss_operations import EncryptedOSSOperations

if TYPE_CHECKING:
    from airflow_provider_osscse.airflow_connections import ConnectionFields
    from airflow_provider_osscse.transport.progress import TransferLogger


class EncryptedOSSHook(EncryptedOSSOperations, BaseHook):
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

    def _connection(self, conn_id: str) -> ConnectionFields:
        conn: ConnectionFields = self.get_connection(conn_id)
        return conn

    @property
    def _logger(self) -> TransferLogger:
        return self.log


__all__ = ["EncryptedOSSHook"]
