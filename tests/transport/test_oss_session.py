"""The oss2 clients' HTTP session reads the environment once: proxies and NO_PROXY as ``requests``
reads them, never a netrc entry (which would replace OSS's signature with Basic credentials).

Against the real local OSS server; a proxy variable naming a closed port proves a request went to
the proxy (it fails to connect there), ``NO_PROXY`` that it went straight to the server.
"""

from __future__ import annotations

import socket
from pathlib import Path

import oss2
import pytest

from airflow_provider_osscse.testing.oss_server import LocalOSSServer
from airflow_provider_osscse.transport.oss_client import OssClientFactory, OssSettings

BUCKET = "oss-session"


@pytest.fixture(scope="module")
def server(osscse_oss_server: LocalOSSServer) -> LocalOSSServer:
    osscse_oss_server.create_bucket(BUCKET)
    oss2.Bucket(
        oss2.AuthV4(osscse_oss_server.access_key_id, osscse_oss_server.access_key_secret),
        osscse_oss_server.endpoint,
        BUCKET,
        region=osscse_oss_server.region,
    ).put_object("hello", b"world")
    return osscse_oss_server


@pytest.fixture
def clean_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _bucket(server: LocalOSSServer) -> oss2.Bucket:
    settings = OssSettings(
        access_key_id=server.access_key_id,
        access_key_secret=server.access_key_secret,
        region=server.region,
        endpoint=server.endpoint,
    )
    return OssClientFactory(settings).bucket(BUCKET)


def test_requests_go_through_the_proxy_the_environment_names(
    server: LocalOSSServer, clean_proxy_environment: pytest.MonkeyPatch
) -> None:
    clean_proxy_environment.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    bucket = _bucket(server)

    with pytest.raises(oss2.exceptions.RequestError, match=r"(?i)proxy"):
        bucket.get_object("hello").read()


def test_no_proxy_sends_the_endpoints_requests_straight_to_it(
    server: LocalOSSServer, clean_proxy_environment: pytest.MonkeyPatch
) -> None:
    clean_proxy_environment.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    clean_proxy_environment.setenv("NO_PROXY", "127.0.0.1,localhost")
    bucket = _bucket(server)

    for _ in range(3):  # the remembered answer serves every later request
        assert bucket.get_object("hello").read() == b"world"


def test_the_environment_is_read_when_the_client_is_made_not_per_request(
    server: LocalOSSServer, clean_proxy_environment: pytest.MonkeyPatch
) -> None:
    bucket = _bucket(server)
    assert bucket.get_object("hello").read() == b"world"

    clean_proxy_environment.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")

    assert bucket.get_object("hello").read() == b"world"  # this client decided already
    with pytest.raises(oss2.exceptions.RequestError):
        _bucket(server).get_object("hello").read()  # a new client reads the environment again


def test_a_netrc_entry_for_the_endpoint_does_not_replace_the_oss_signature(
    server: LocalOSSServer, clean_proxy_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password something\nmachine localhost login a password b\n")
    netrc.chmod(0o600)
    clean_proxy_environment.setenv("NETRC", str(netrc))
    clean_proxy_environment.setenv("HOME", str(tmp_path))

    assert _bucket(server).get_object("hello").read() == b"world"
