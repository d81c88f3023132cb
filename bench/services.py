"""Local services for the many-object benchmark, each its own process, each counting what it served.

Why counted at the servers: a request counted in the client misses what another process (``osscse``)
sends and trusts the client's own idea of what it did. So:

- the local OSS and KMS servers run as their own processes (``python bench/services.py serve oss|kms
  ...``: their ordinary command lines, with a counter wrapped around the request handler) and
  answer ``GET /__bench__/counts`` with the requests served so far, by operation (OSS) or action
  (KMS). The KMS server's sockets get ``TCP_NODELAY`` here as well (issue 14: without it every
  KMS call waits ~45 ms on loopback; setting it again where the server already does is harmless);
- OpenBao (``testing.openbao.OpenBaoServer(audit_log=...)``) writes a file audit log, so Vault calls
  are counted from it, one ``response`` entry per call, by operation and path, in a window of offsets;
- :class:`LatencyProxy` puts a fixed delay in front of any of them (a key service in another region).

Nothing here is imported by the package or its tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from transfer_throughput import ACCESS_KEY_ID, ACCESS_KEY_SECRET, BUCKET, REGION

COUNTS_PATH = "/__bench__/counts"


# --------------------------------------------------------------------------- counting servers
def _oss_operation(handler: Any) -> str:
    """The OSS operation of one request, from its method, query and headers (not its key)."""
    method, path = str(handler.command), str(handler.path)
    raw_path, _, raw_query = path.partition("?")
    query = {name for name, _ in parse_qsl(raw_query, keep_blank_values=True)}
    has_key = bool(raw_path.lstrip("/").partition("/")[2])  # path style: /bucket/key (loopback endpoint)
    copy = handler.headers.get("x-oss-copy-source") is not None
    if method == "HEAD":
        return "HeadObject"
    if method == "GET":
        return "GetObject" if has_key and "uploadId" not in query else "List"
    if method == "PUT":
        if "partNumber" in query:
            return "UploadPartCopy" if copy else "UploadPart"
        return "CopyObject" if copy else "PutObject"
    if method == "POST":
        if "uploads" in query:
            return "InitiateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "DeleteMultipleObjects" if "delete" in query else "Post"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    return method


def _kms_action(handler: Any) -> str:
    """The KMS action (``x-acs-action`` header, else the ``Action`` query parameter); nothing else is read."""
    action = handler.headers.get("x-acs-action")
    if action:
        return str(action)
    for name, value in parse_qsl(handler.path.partition("?")[2]):
        if name == "Action":
            return str(value)
    return "?"


def _serve(kind: str, argv: list[str]) -> int:
    """Run the package's server command line with a request counter around its handler."""
    if kind == "oss":
        from airflow_provider_osscse.testing.oss_server import __main__ as command
        from airflow_provider_osscse.testing.oss_server.handler import OSSRequestHandler

        handler_class: Any = OSSRequestHandler
        classify = _oss_operation
    else:
        from airflow_provider_osscse.testing.kms_server import __main__ as command  # type: ignore[no-redef]
        from airflow_provider_osscse.testing.kms_server.handler import KMSRequestHandler

        handler_class = KMSRequestHandler
        classify = _kms_action
        original_setup = handler_class.setup

        def setup(self: Any) -> None:
            original_setup(self)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        handler_class.setup = setup

    counts: Counter[str] = Counter()
    lock = threading.Lock()
    original_handle = handler_class._handle  # noqa: SLF001 - the servers' one entry point per request

    def handle(self: Any) -> None:
        if self.command == "GET" and self.path == COUNTS_PATH:
            with lock:
                body = json.dumps(dict(counts)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        operation = classify(self)
        with lock:
            counts[operation] += 1
        original_handle(self)

    handler_class._handle = handle  # noqa: SLF001
    return int(command.main(argv))


class CountedServer:
    """A local OSS (``kind="oss"``) or KMS server in its own process, stopped by its PID."""

    def __init__(self, kind: str, *extra: str) -> None:
        argv = [sys.executable, __file__, "serve", kind, "--access-key-id", ACCESS_KEY_ID]
        argv += ["--access-key-secret", ACCESS_KEY_SECRET, "--region", REGION, *extra]
        self.kind = kind
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.url = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        if not self.url.startswith("http"):
            self.stop()
            raise SystemExit(f"local {kind} server did not start (printed {self.url!r})")
        self.host_port = self.url.split("://", 1)[1]

    def counts(self) -> Counter[str]:
        return fetch_counts(self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def fetch_counts(url: str) -> Counter[str]:
    """Requests served so far by a :class:`CountedServer` at ``url`` (callable from any process)."""
    with urllib.request.urlopen(url + COUNTS_PATH, timeout=10) as response:  # noqa: S310 - loopback
        return Counter(json.loads(response.read()))


# --------------------------------------------------------------------------- OpenBao's audit log
def audit_offset(audit_log: str) -> int:
    """Where the audit log ends now (the start of the next window for :func:`vault_calls`)."""
    try:
        return os.path.getsize(audit_log)
    except OSError:
        return 0


def vault_calls(audit_log: str, start: int, end: int | None = None) -> Counter[str]:
    """Vault calls answered between two offsets of the audit log: ``"<operation> <path>"`` -> count,
    with Transit paths cut to the endpoint (``update transit/encrypt``). One response entry per call."""
    calls: Counter[str] = Counter()
    with open(audit_log, "rb") as handle:
        handle.seek(start)
        data = handle.read() if end is None else handle.read(end - start)
    for line in data.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line still being written (end=None)
        if entry.get("type") != "response":
            continue
        request = entry.get("request") or {}
        path = str(request.get("path", "?"))
        parts = path.split("/")
        if len(parts) >= 3 and parts[0] == "transit":
            path = "/".join(parts[:2])
        calls[f"{request.get('operation', '?')} {path}"] += 1
    return calls


# --------------------------------------------------------------------------- clients, keys and connections
def spawn(argv: list[str], env: dict[str, str], label: str) -> tuple[float, int, str, str | None]:
    """Run to exit: wall seconds, peak RSS (KiB, ``wait4``: ``communicate`` would reap the child and
    lose it), stdout, and stderr's tail if it failed (else ``None``). Progress goes to stderr."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        failed = os.waitstatus_to_exitcode(status) != 0
        error = err.read().decode()[-3000:] if failed else None
        print(f"  {seconds:6.1f} s  {label}{'  FAILED:' if failed else ''}", file=sys.stderr)
        if error:
            print(error, file=sys.stderr)
        return seconds, usage.ru_maxrss, out.read().decode(), error


def write_rsa_key(path: str) -> None:
    """A 2048-bit RSA CMK in a PEM file (the hook's ``rsa-file://`` and CryptoBucket's RsaProvider)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    Path(path).write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def connections(oss_url: str, bao: Any, kms_host_port: str, *, suffix: str = "DEFAULT") -> dict[str, str]:
    """``AIRFLOW_CONN_<ID>`` JSON variables as a deployment sets them (docs/connections.md): ``oss_default``,
    ``vault_<suffix>`` and ``kms_<suffix>``; ``bao`` has ``address`` and ``root_token``."""
    from airflow_provider_osscse.testing.openbao import airflow_connection_json

    oss_extra = {"access_key_id": ACCESS_KEY_ID, "access_key_secret": ACCESS_KEY_SECRET, "region": REGION}
    kms_extra = {"region": REGION, "endpoint": kms_host_port, "protocol": "http"}
    return {
        "AIRFLOW_CONN_OSS_DEFAULT": json.dumps(
            {"conn_type": "oss_cse", "schema": BUCKET, "extra": {**oss_extra, "endpoint": oss_url}}
        ),
        f"AIRFLOW_CONN_VAULT_{suffix}": airflow_connection_json(bao),
        f"AIRFLOW_CONN_KMS_{suffix}": json.dumps(
            {"conn_type": "alicloud_kms", "login": ACCESS_KEY_ID, "password": ACCESS_KEY_SECRET, "extra": kms_extra}
        ),
    }


# --------------------------------------------------------------------------- latency
class LatencyProxy:
    """A threaded TCP relay that delivers every byte sent to ``target`` ``delay`` seconds late.

    Each chunk from the client is stamped when it arrives and sent on at stamp + delay, so a request
    (however many chunks) is delayed once, by ``delay``, and requests on other connections are
    delayed in parallel, as by a network path rather than a busy server. Answers pass straight back.
    """

    def __init__(self, target: str, delay: float) -> None:
        host, port = target.rsplit(":", 1)
        self.target, self.delay = (host, int(port)), delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host_port = f"127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True, name="latency-proxy").start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            lane: queue.Queue[tuple[float, bytes]] = queue.Queue()
            threading.Thread(target=self._read, args=(client, lane), daemon=True).start()
            threading.Thread(target=self._write_late, args=(lane, upstream), daemon=True).start()
            threading.Thread(target=self._relay, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _read(src: socket.socket, lane: queue.Queue[tuple[float, bytes]]) -> None:
        try:
            while data := src.recv(65536):
                lane.put((time.monotonic(), data))
        except OSError:
            pass
        lane.put((time.monotonic(), b""))

    def _write_late(self, lane: queue.Queue[tuple[float, bytes]], dst: socket.socket) -> None:
        try:
            while True:
                stamp, data = lane.get()
                wait = stamp + self.delay - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        _close(dst)

    @staticmethod
    def _relay(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        _close(dst)
        _close(src)

    def stop(self) -> None:
        self.listener.close()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve" and sys.argv[2] in ("oss", "kms"):
        sys.exit(_serve(sys.argv[2], sys.argv[3:]))
    sys.exit("usage: services.py serve oss|kms <server options>  (started by bench/many_objects.py)")
