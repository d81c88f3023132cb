"""`LocalKMSServer`: the local Alibaba Cloud KMS, started in-process on a loopback port.

Nothing real can be reached from tests, and no KMS emulator exists, so this server is how the KMS code
path runs through the real SDKs (Tea ``alibabacloud-kms20160120``, ``aliyun-python-sdk-kms`` and
oss2's ``AliKMSProvider``): it verifies their signatures and keeps real AES-256-GCM key material.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType

from airflow_provider_osscse.testing.kms_server.api import KMSApi
from airflow_provider_osscse.testing.kms_server.credentials import CredentialRegistry
from airflow_provider_osscse.testing.kms_server.handler import KMSHTTPServer
from airflow_provider_osscse.testing.kms_server.keystore import KeyStore
from airflow_provider_osscse.testing.serving import ServingThread


class LocalKMSServer:
    """A KMS endpoint for one region and one account, with one initial credential.

    ``endpoint`` is ``host:port`` without scheme, which is what the SDKs take (with ``protocol="http"``).
    ``reencrypt_names_source=False`` answers ``ReEncrypt`` in the published API reference's shape
    (``KeyId``/``KeyVersionId`` of the key that decrypted the original, no ``SourceKeyId``); see
    :mod:`.api`. ``latency_seconds`` delays every answer (after the request is read), so a bench can
    measure against a key service in another region; tests count calls instead of timing them.
    """

    def __init__(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        region: str = "cn-hangzhou",
        host: str = "127.0.0.1",
        port: int = 0,
        security_token: str | None = None,
        reencrypt_names_source: bool = True,
        latency_seconds: float = 0.0,
    ) -> None:
        if not 0 <= latency_seconds <= 10:
            raise ValueError("latency_seconds must be in [0, 10]")
        self._latency_seconds = latency_seconds
        self._access_key_id = access_key_id
        self._reencrypt_names_source = reencrypt_names_source
        self._access_key_secret = access_key_secret
        self._region = region
        self._host = host
        self._requested_port = port
        self._keystore = KeyStore(region)
        self._credentials = CredentialRegistry()
        self._credentials.add(access_key_id, access_key_secret, security_token=security_token)
        self._httpd: KMSHTTPServer | None = None
        self._serving: ServingThread | None = None

    def __repr__(self) -> str:
        state = self.url if self._httpd is not None else "stopped"
        return f"LocalKMSServer({state}, access_key_id={self._access_key_id!r}, region={self._region!r})"

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> LocalKMSServer:
        """Bind and serve on a daemon thread; the socket listens before this returns."""
        if self._httpd is not None:
            return self
        api = KMSApi(self._keystore, reencrypt_names_source=self._reencrypt_names_source)
        self._httpd = KMSHTTPServer(
            (self._host, self._requested_port), api, self._credentials, latency_seconds=self._latency_seconds
        )
        self._serving = ServingThread(self._httpd, "osscse-local-kms")
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        serving, self._serving, self._httpd = self._serving, None, None
        if serving is not None:
            serving.stop()

    def __enter__(self) -> LocalKMSServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- addressing ----------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("LocalKMSServer is not started")
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"{self._host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def access_key_id(self) -> str:
        return self._access_key_id

    @property
    def access_key_secret(self) -> str:
        return self._access_key_secret

    @property
    def region(self) -> str:
        return self._region

    # -- key and credential management ---------------------------------------------------------
    def create_key(self, *, alias: str | None = None, description: str = "") -> str:
        """Create an enabled AES-256 key (optionally with ``alias/NAME``); returns its key id."""
        return self._keystore.create_key(description=description, alias=alias).key_id

    def create_alias(self, alias: str, key_id: str) -> None:
        self._keystore.create_alias(alias, key_id)

    def rotate_key(self, key_or_alias: str) -> str:
        """Add a new primary key version (new blobs use it, old blobs still decrypt); returns its id."""
        return self._keystore.rotate(key_or_alias).version_id

    def disable_key(self, key_or_alias: str) -> None:
        self._keystore.set_enabled(key_or_alias, False)

    def enable_key(self, key_or_alias: str) -> None:
        self._keystore.set_enabled(key_or_alias, True)

    def add_credential(
        self,
        access_key_id: str,
        access_key_secret: str,
        *,
        allowed_actions: Iterable[str] | None = None,
        security_token: str | None = None,
    ) -> None:
        """Accept another access key, optionally limited to ``allowed_actions`` (e.g. ``{"Decrypt"}``)."""
        self._credentials.add(
            access_key_id, access_key_secret, allowed_actions=allowed_actions, security_token=security_token
        )
