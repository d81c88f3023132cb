"""``AlicloudKmsHook``: the ``alicloud_kms`` connection type, its *Test* button, and KMS CMKs from it.

The connection's fields are read, and the client and CMKs built, by
:class:`~airflow_provider_osscse.keys.alicloud_kms_connection.KmsConnectionSettings` in the keys
layer, which ``kms://`` CMK references resolve through as well; this hook adds what Airflow needs
of a hook (the connection type, ``get_conn``, ``test_connection``) and caches one client per hook.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from airflow.sdk import BaseHook

from airflow_provider_osscse.exceptions import InsecureKmsConnectionError
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey
from airflow_provider_osscse.keys.alicloud_kms_connection import KmsConnectionSettings, kms_runtime_options


class AlicloudKmsHook(BaseHook):
    """Connection ``alicloud_kms``: login = AccessKey ID, password = secret; extras ``region``,
    ``endpoint``, ``security_token`` (STS), ``protocol`` (``https``; ``http`` only to a loopback
    endpoint), ``oss2_passphrase`` (read/write objects of oss2's ``AliKMSProvider(passphrase=...)``).
    The client is built lazily, once."""

    conn_name_attr = "kms_conn_id"
    default_conn_name = "kms_default"
    conn_type = "alicloud_kms"
    hook_name = "Alibaba Cloud KMS"

    def __init__(self, kms_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kms_conn_id = kms_conn_id

    @cached_property
    def settings(self) -> KmsConnectionSettings:
        """The connection's fields; raises :class:`InsecureKmsConnectionError` for plain ``http`` off loopback."""
        conn = self.get_connection(self.kms_conn_id)
        return KmsConnectionSettings.from_connection_fields(
            self.kms_conn_id, conn.login, conn.password, conn.extra_dejson
        )

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @cached_property
    def encryption_context(self) -> dict[str, str] | None:
        """The EncryptionContext from extra ``oss2_passphrase`` (registered with the masker), or None."""
        return self.settings.encryption_context()

    @cached_property
    def client(self) -> Any:
        """The Tea KMS client (``alibabacloud_kms20160120.client.Client``)."""
        return self.settings.client()

    def get_conn(self) -> Any:
        return self.client

    def runtime_options(self, *, connect_timeout_ms: int = 5000, read_timeout_ms: int = 10000) -> Any:
        """No SDK auto-retry (our :class:`RetryPolicy` bounds retries) and bounded timeouts."""
        return kms_runtime_options(connect_timeout_ms=connect_timeout_ms, read_timeout_ms=read_timeout_ms)

    def test_connection(self) -> tuple[bool, str]:
        """Sign one cheap read call (ListAliases); reports the error code, never credentials."""
        from alibabacloud_kms20160120 import models

        try:
            self.settings  # noqa: B018 - reading the fields is the first check
        except InsecureKmsConnectionError as exc:
            return False, str(exc)
        try:
            self.client.list_aliases_with_options(models.ListAliasesRequest(page_size=1), self.runtime_options())
        except Exception as exc:  # noqa: BLE001 - report any failure as the test result
            return False, f"KMS at {self.endpoint} failed: {getattr(exc, 'code', None) or type(exc).__name__}"
        return True, f"Connected to Alibaba Cloud KMS at {self.endpoint}"

    def get_key(self, key_id: str, **kwargs: Any) -> AlicloudKmsKey:
        """The CMK ``key_id`` reached through this connection (sharing this hook's client).

        ``kwargs`` go to :meth:`KmsConnectionSettings.cmk` (``reference``, ``matdesc``, ``retry``,
        ``encryption_context``: by default the connection's).
        """
        kwargs.setdefault("encryption_context", self.encryption_context)
        return self.settings.cmk(key_id, client=self.client, **kwargs)
