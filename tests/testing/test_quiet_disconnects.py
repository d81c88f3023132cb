"""The local servers treat a client hanging up mid-request as normal, not as an error to print.

Observed: CI logs carried ``Exception occurred during processing of request ... Connection reset by
peer`` tracebacks from the local OSS server whenever a client dropped a kept-alive connection.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any
from urllib.parse import urlsplit

import pytest


def reset_mid_request(endpoint: str) -> None:
    """Send half a request, then close with RST (SO_LINGER 0), as a killed client does."""
    url = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")  # the KMS endpoint is host:port
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 80)) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.3)  # the server's thread reads, meets the reset, and reports (or not)


@pytest.mark.services  # the server fixture is taken by name (getfixturevalue), out of the guard's sight
@pytest.mark.parametrize("server", ["osscse_oss_server", "osscse_kms_server"])
def test_a_client_reset_prints_no_traceback(server: str, request: pytest.FixtureRequest, capfd: Any) -> None:
    endpoint = request.getfixturevalue(server).endpoint
    capfd.readouterr()
    reset_mid_request(endpoint)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Connection reset" not in err, err
