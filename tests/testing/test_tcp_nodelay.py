"""The local servers switch Nagle's algorithm off on every connection they accept.

Observed (issue 14): the local KMS server left ``TCP_NODELAY`` unset, so each answer's body (a second
small write after the headers) waited for the client's delayed ACK: ~46 ms per KMS call on loopback,
10.8 objects/s instead of 214, which distorted every KMS figure in tests, the demo and the benches.
The local OSS server set it in its handler; both now take it from ``testing.serving``.

The servers are built but not served: the test accepts one connection itself through the server's
own ``get_request`` (what ``serve_forever`` calls) and reads the option on the accepted socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from socketserver import TCPServer

import pytest

from airflow_provider_osscse.testing.kms_server.api import KMSApi
from airflow_provider_osscse.testing.kms_server.credentials import CredentialRegistry
from airflow_provider_osscse.testing.kms_server.handler import KMSHTTPServer
from airflow_provider_osscse.testing.kms_server.keystore import KeyStore
from airflow_provider_osscse.testing.oss_server.faults import FaultPlan
from airflow_provider_osscse.testing.oss_server.handler import OSSHTTPServer
from airflow_provider_osscse.testing.oss_server.signature import Credentials
from airflow_provider_osscse.testing.oss_server.storage import ObjectStore

LOOPBACK = ("127.0.0.1", 0)


def kms_http_server() -> TCPServer:
    return KMSHTTPServer(LOOPBACK, KMSApi(KeyStore("cn-hangzhou")), CredentialRegistry())


def oss_http_server() -> TCPServer:
    return OSSHTTPServer(LOOPBACK, ObjectStore(None), Credentials("id", "secret"), "cn-hangzhou", FaultPlan())


@pytest.mark.parametrize("make_server", [kms_http_server, oss_http_server], ids=["kms", "oss"])
def test_the_accepted_connection_has_tcp_nodelay_set(make_server: Callable[[], TCPServer]) -> None:
    httpd = make_server()
    try:
        with socket.create_connection(("127.0.0.1", int(httpd.server_address[1])), timeout=5):
            accepted, _ = httpd.get_request()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        httpd.server_close()
