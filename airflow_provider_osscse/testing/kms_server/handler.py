"""HTTP front of the local KMS server: parse, authenticate, authorize, dispatch, answer in JSON.

Request parameters come from the query string (where all the KMS SDKs put them) and, when present, an
``application/x-www-form-urlencoded`` body. Every answer is JSON; errors are
``{RequestId, HostId, Code, Message}`` with the error's HTTP status, which both SDK families parse.
Request lines are never logged: their query strings carry plaintexts and data keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from airflow_provider_osscse.testing.kms_server.api import API_VERSION, KMSApi
from airflow_provider_osscse.testing.kms_server.credentials import CredentialRegistry
from airflow_provider_osscse.testing.kms_server.errors import KMSServiceError
from airflow_provider_osscse.testing.kms_server.signature import (
    RPC_SIGNATURE_METHOD,
    acs3_signature,
    acs3_string_to_sign,
    parse_acs3_authorization,
    rpc_signature,
    rpc_string_to_sign,
    signature_mismatch,
    signatures_match,
)
from airflow_provider_osscse.testing.serving import NoDelayMixin, QuietDisconnectsMixin

log = logging.getLogger(__name__)


class KMSHTTPServer(QuietDisconnectsMixin, NoDelayMixin, ThreadingHTTPServer):
    """A threading HTTP server carrying the KMS state the handler needs."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], api: KMSApi, credentials: CredentialRegistry, *, latency_seconds: float = 0.0
    ) -> None:
        super().__init__(address, KMSRequestHandler)
        self.api = api
        self.credentials = credentials
        self.latency_seconds = latency_seconds


class KMSRequestHandler(BaseHTTPRequestHandler):
    """One request: authenticate with either signature style, then run the action."""

    server: KMSHTTPServer
    protocol_version = "HTTP/1.1"
    server_version = "osscse-local-kms"

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        """Silenced: the default logs the request line, whose query string carries secrets."""

    def _handle(self) -> None:
        request_id = str(uuid.uuid4()).upper()
        action = "?"
        try:
            body = self._read_body()
            if self.server.latency_seconds > 0:
                time.sleep(self.server.latency_seconds)  # a remote region's round trip (benches)
            action, response = self._dispatch(body)
            response["RequestId"] = request_id
            self._send(200, response, request_id)
            log.debug("KMS %s -> 200", action)
        except KMSServiceError as error:
            log.debug("KMS %s -> %s %s", action, error.status, error.code)
            self._send(
                error.status,
                {
                    "RequestId": request_id,
                    "HostId": self.headers.get("Host") or "",
                    "Code": error.code,
                    "Message": error.message,
                },
                request_id,
            )

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self, body: bytes) -> tuple[str, dict[str, object]]:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        form: dict[str, str] = {}
        if body and "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        params = {**query, **form}

        authorization = self.headers.get("Authorization") or ""
        if authorization.startswith("ACS3-"):
            auth = parse_acs3_authorization(authorization)
            action = self.headers.get("x-acs-action") or ""
            version = self.headers.get("x-acs-version") or ""
            credential = self.server.credentials.get(auth.access_key_id)
            headers = {name.lower(): self.headers.get_all(name) or [] for name in self.headers}
            string_to_sign = acs3_string_to_sign(
                method=self.command,
                path=url.path,
                query=query,
                headers=headers,
                signed_headers=auth.signed_headers,
                payload_sha256_hex=hashlib.sha256(body).hexdigest(),
            )
            expected = acs3_signature(credential.access_key_secret, string_to_sign)
            if not signatures_match(expected, auth.signature):
                raise signature_mismatch(string_to_sign)
            credential.check_security_token(self.headers.get("x-acs-security-token"))
        elif "Signature" in params:
            if params.get("SignatureMethod", RPC_SIGNATURE_METHOD) != RPC_SIGNATURE_METHOD:
                raise KMSServiceError(
                    400, "IncompleteSignature", f"Unsupported SignatureMethod; use {RPC_SIGNATURE_METHOD}."
                )
            action = params.get("Action") or ""
            version = params.get("Version") or ""
            credential = self.server.credentials.get(params.get("AccessKeyId") or "")
            string_to_sign = rpc_string_to_sign(self.command, params)
            expected = rpc_signature(credential.access_key_secret, string_to_sign)
            if not signatures_match(expected, params["Signature"]):
                raise signature_mismatch(string_to_sign)
            credential.check_security_token(params.get("SecurityToken"))
        else:
            raise KMSServiceError(
                400,
                "IncompleteSignature",
                "The request is not signed (no ACS3 Authorization header, no Signature parameter).",
            )

        if version and version != API_VERSION:
            raise KMSServiceError(400, "InvalidVersion", f"Specified parameter Version is not valid: {version}")
        if action not in self.server.api.actions:
            raise KMSServiceError(404, "InvalidAction.NotFound", f"Specified api is not found: {action!r}")
        credential.check_action(action)
        return action, self.server.api.call(action, params)

    def _send(self, status: int, payload: dict[str, object], request_id: str) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-acs-request-id", request_id)
        self.end_headers()
        self.wfile.write(data)
