"""What an ``alicloud_kms`` connection says, turned into a Tea KMS client and a KMS CMK.

Why here and not in the hook: a ``kms://<conn_id>/<key>`` CMK reference is resolved in the keys
layer (:func:`~airflow_provider_osscse.keys.reference.resolve_cmk`), which must not import the hooks
layer above it. So the reading of the connection's fields (and the refusal of plain ``http``), the
client and the CMK's construction live here, free of Airflow classes; both
:func:`~airflow_provider_osscse.keys.reference.resolve_cmk` and the Airflow hook
(:class:`~airflow_provider_osscse.hooks.alicloud_kms.AlicloudKmsHook`, the connection type's form and
its *Test* button) build KMS CMKs through :meth:`KmsConnectionSettings.cmk`, so they cannot drift.

Connection fields: login = AccessKey ID, password = secret; extras ``region`` (default
``cn-hangzhou``), ``endpoint`` (default ``kms.<region>.aliyuncs.com``), ``security_token`` (STS),
``protocol`` (``https``; ``http`` only to a loopback endpoint, see :class:`InsecureKmsConnectionError`),
``oss2_passphrase`` (objects of oss2's ``AliKMSProvider(passphrase=...)``, see
:func:`~airflow_provider_osscse.keys.alicloud_kms.oss2_passphrase_context`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_osscse.exceptions import InsecureKmsConnectionError
from airflow_provider_osscse.keys.alicloud_kms import AlicloudKmsKey, is_loopback_endpoint, oss2_passphrase_context
from airflow_provider_osscse.keys.masking import mask_strings
from airflow_provider_osscse.keys.retry import DEFAULT_RETRY, RetryPolicy

#: The region of a connection that names none (the KMS endpoint defaults from it).
DEFAULT_REGION = "cn-hangzhou"
#: ``encryption_context`` default of :meth:`KmsConnectionSettings.cmk`: the connection's (``None`` is none).
FROM_CONNECTION: Any = object()


def kms_runtime_options(*, connect_timeout_ms: int = 5000, read_timeout_ms: int = 10000) -> Any:
    """Tea runtime options: no SDK auto-retry (our :class:`RetryPolicy` bounds retries), bounded timeouts."""
    from darabonba.runtime import RuntimeOptions

    return RuntimeOptions(autoretry=False, connect_timeout=connect_timeout_ms, read_timeout=read_timeout_ms)


@dataclass(frozen=True)
class KmsConnectionSettings:
    """The fields of one ``alicloud_kms`` connection; secrets are kept out of ``repr``."""

    conn_id: str
    access_key_id: str | None
    access_key_secret: str | None = field(repr=False)
    security_token: str | None = field(repr=False)
    region_id: str
    endpoint: str
    protocol: str
    oss2_passphrase: str | None = field(default=None, repr=False)

    @classmethod
    def from_connection_fields(
        cls, conn_id: str, login: str | None, password: str | None, extra: Mapping[str, Any]
    ) -> KmsConnectionSettings:
        """Settings from a connection's login, password and extras; plain ``http`` off loopback is refused."""
        region = str(extra.get("region") or DEFAULT_REGION)
        endpoint = str(extra.get("endpoint") or f"kms.{region}.aliyuncs.com")
        protocol = str(extra.get("protocol") or "https")
        if protocol.lower() == "http" and not is_loopback_endpoint(endpoint):
            raise InsecureKmsConnectionError(
                f"KMS connection {conn_id!r} sets protocol 'http' for endpoint {endpoint}: data "
                "keys would cross the network unencrypted. Set the extra 'protocol' to 'https' (the "
                "default); 'http' is accepted only for a loopback endpoint (127.0.0.1, ::1, localhost), "
                "e.g. the local KMS server"
            )
        passphrase = extra.get("oss2_passphrase")
        return cls(
            conn_id=conn_id,
            access_key_id=login,
            access_key_secret=password,
            security_token=extra.get("security_token") or None,
            region_id=region,
            endpoint=endpoint,
            protocol=protocol,
            oss2_passphrase=str(passphrase) if passphrase else None,
        )

    def encryption_context(self) -> dict[str, str] | None:
        """The EncryptionContext from extra ``oss2_passphrase`` (registered with the masker), or None."""
        if not self.oss2_passphrase:
            return None
        mask_strings([self.oss2_passphrase])
        return oss2_passphrase_context(self.oss2_passphrase)

    def client(self) -> Any:
        """A new Tea KMS client (``alibabacloud_kms20160120.client.Client``); build it once and reuse it."""
        from alibabacloud_kms20160120.client import Client
        from alibabacloud_tea_openapi.utils_models import Config

        return Client(
            Config(
                access_key_id=self.access_key_id,
                access_key_secret=self.access_key_secret,
                security_token=self.security_token,
                region_id=self.region_id,
                endpoint=self.endpoint,
                protocol=self.protocol,
            )
        )

    def cmk(
        self,
        key_id: str,
        *,
        client: Any = None,
        reference: str | None = None,
        matdesc: Mapping[str, str] | None = None,
        retry: RetryPolicy = DEFAULT_RETRY,
        encryption_context: Mapping[str, str] | None = FROM_CONNECTION,
    ) -> AlicloudKmsKey:
        """The CMK ``key_id`` (key id or ``alias/NAME``) reached through this connection.

        ``client``: a client of these settings to share (default: a new one). ``reference``: the CMK
        reference it was named by (default ``kms://<conn_id>/<key_id>``). ``encryption_context``:
        by default the connection's ``oss2_passphrase`` context; ``None`` sends none.
        """
        return AlicloudKmsKey(
            client if client is not None else self.client(),
            key_id=key_id,
            reference=reference or f"kms://{self.conn_id}/{key_id}",
            matdesc=matdesc,
            retry=retry,
            runtime=kms_runtime_options(),
            endpoint=self.endpoint,
            encryption_context=(
                self.encryption_context() if encryption_context is FROM_CONNECTION else encryption_context
            ),
        )
