"""Fixtures for the end-to-end security tests: one CMK of each kind, the secrets they involve, and
helpers that turn "this secret never appears" into a checkable list of strings.

Why a list of *encodings*: a data key leaks just as surely as ``base64`` in a URL query
(``Plaintext=...%2B...%3D``), as hex in a debug dump or as a Python ``bytes`` repr in a traceback.
``secret_forms`` produces all of those so every assertion checks every form at once.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO
from urllib.parse import quote, quote_plus

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

BUCKET = "security-tests"
KIB = 1024
#: Small multipart settings so the multipart and spool paths run in milliseconds.
PART = 100 * KIB
THRESHOLD = 200 * KIB
TRANSIT_KEY = "osscse-security"
KV_PATH = "osscse/security-rsa"
#: Loggers that might print request details at DEBUG (Airflow's, the SDKs' and their HTTP stacks).
DEBUG_LOGGERS = (
    "",
    "airflow",
    "airflow.task",
    "oss2",
    "hvac",
    "urllib3",
    "requests",
    "alibabacloud",
    "alibabacloud_tea_openapi",
    "Tea",
    "darabonba",
    # the names the KMS SDK's cores, its credential providers and the old core SDK really log under
    "alibabacloud-tea",
    "darabonba-core",
    "credentials",
    "aliyunsdkcore",
    "py.warnings",
    "aiohttp",
    "httpx",
    "httpcore",
    "airflow_provider_osscse",
)


def secret_forms(*secrets: bytes | str) -> list[str]:
    """Every printable form of each secret: as is, hex (both cases), base64 (std, url-safe, unpadded),
    URL-encoded base64 (query strings) and Python's ``bytes`` repr (tracebacks, f-strings)."""
    forms: list[str] = []
    for secret in secrets:
        if isinstance(secret, str):
            forms.extend([secret, quote(secret, safe=""), quote_plus(secret)])
            continue
        b64 = base64.b64encode(secret).decode()
        forms.extend(
            [
                secret.hex(),
                secret.hex().upper(),
                b64,
                b64.rstrip("="),
                quote(b64, safe=""),
                quote_plus(b64),
                base64.urlsafe_b64encode(secret).decode().rstrip("="),
                repr(secret)[2:-1],
            ]
        )
        if secret.isascii() and secret.decode().isprintable():
            forms.append(secret.decode())
    # Short strings would match by accident (and Airflow does not mask < 5 characters either).
    return sorted({f for f in forms if len(f) >= 8})


def pem_body_lines(pem: bytes | str) -> list[str]:
    """The base64 lines of a PEM (without the ``-----BEGIN`` armour, which is not secret)."""
    text = pem.decode() if isinstance(pem, bytes) else pem
    return [line for line in text.strip().splitlines() if line and not line.startswith("-----")]


def leaked(text: str, forms: Iterable[str]) -> list[str]:
    """The forms that occur in ``text`` (empty when nothing leaked); shortened for readable failures."""
    return [f[:24] + "..." for f in forms if f in text]


@dataclass
class SecurityEnv:
    """The services, a CMK reference of each kind and every static secret involved."""

    oss: Any
    kms: Any
    openbao: Any
    vault: Any
    cmks: dict[str, str]
    rsa_pem: bytes
    kv_pem: bytes
    kms_alias: str
    static_secrets: list[str] = field(default_factory=list)

    def static_forms(self) -> list[str]:
        """Vault token, OSS and KMS secrets and every PEM body line, in all their encodings."""
        lines = pem_body_lines(self.rsa_pem) + pem_body_lines(self.kv_pem)
        return secret_forms(*self.static_secrets) + sorted(set(lines))


def _rsa_pem() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _closed_port() -> int:
    """A loopback port nothing listens on (bound then released), for "service unreachable" tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vault_conn(address: str, token: str) -> str:
    host, port = address.removeprefix("http://").rsplit(":", 1)
    return json.dumps(
        {
            "conn_type": "vault",
            "host": host,
            "port": int(port),
            "password": token,
            "schema": "secret",
            "extra": {"auth_type": "token", "use_tls": False, "kv_engine_version": 2},
        }
    )


def _kms_conn(server: Any, login: str, password: str, endpoint: str | None = None) -> str:
    return json.dumps(
        {
            "conn_type": "alicloud_kms",
            "login": login,
            "password": password,
            "extra": {"region": server.region, "endpoint": endpoint or server.endpoint, "protocol": "http"},
        }
    )


@pytest.fixture(scope="session")
def security_env(
    osscse_airflow_connections: dict[str, str],
    osscse_oss_server: Any,
    osscse_kms_server: Any,
    osscse_openbao: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SecurityEnv]:
    """Bucket, Transit key, KV RSA secret, KMS alias and RSA file, plus restricted/unreachable connections.

    Connections added (removed at the end): ``oss_sec`` (the bucket as default), ``vault_enconly`` (a
    token that may only *encrypt* with the Transit key), ``kms_enconly`` (a KMS access key allowed only
    Encrypt/GenerateDataKey), ``vault_down`` / ``kms_down`` (closed loopback ports).
    """
    oss, kms, bao = osscse_oss_server, osscse_kms_server, osscse_openbao
    oss.create_bucket(BUCKET)
    vault = bao.client()
    if "transit/" not in vault.sys.list_mounted_secrets_engines()["data"]:
        vault.sys.enable_secrets_engine("transit", path="transit")
    vault.secrets.transit.create_key(TRANSIT_KEY)
    kv_pem = _rsa_pem()
    public = (
        serialization.load_pem_private_key(kv_pem, None)
        .public_key()
        .public_bytes(  # type: ignore[union-attr]
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    vault.secrets.kv.v2.create_or_update_secret(
        path=KV_PATH, mount_point="secret", secret={"private_key": kv_pem.decode(), "public_key": public.decode()}
    )
    kms_alias = f"alias/security-{uuid.uuid4().hex[:8]}"
    kms.create_key(alias=kms_alias)
    rsa_file = tmp_path_factory.mktemp("security-rsa") / "cmk.pem"
    rsa_pem = _rsa_pem()
    rsa_file.write_bytes(rsa_pem)

    policy = f'path "transit/encrypt/{TRANSIT_KEY}" {{ capabilities = ["update"] }}\n'
    policy += f'path "transit/keys/{TRANSIT_KEY}" {{ capabilities = ["read"] }}\n'  # the key-exists check
    vault.sys.create_or_update_policy(name="osscse-security-enconly", policy=policy)
    enc_token = vault.auth.token.create(policies=["osscse-security-enconly"], ttl="2h")["auth"]["client_token"]
    enc_ak, enc_secret = "LTAI-security-enconly", f"enconly-secret-{uuid.uuid4().hex}"
    # DescribeKey too, so that the read gets as far as Decrypt (a reader resolves the alias first)
    kms.add_credential(enc_ak, enc_secret, allowed_actions={"Encrypt", "GenerateDataKey", "DescribeKey"})

    env = {
        "AIRFLOW_CONN_OSS_SEC": json.dumps(
            {
                "conn_type": "oss",
                "schema": BUCKET,
                "extra": {
                    "auth_type": "AK",
                    "access_key_id": oss.access_key_id,
                    "access_key_secret": oss.access_key_secret,
                    "region": oss.region,
                    "endpoint": oss.endpoint,
                },
            }
        ),
        "AIRFLOW_CONN_VAULT_ENCONLY": _vault_conn(bao.address, enc_token),
        "AIRFLOW_CONN_VAULT_DOWN": _vault_conn(f"http://127.0.0.1:{_closed_port()}", bao.root_token),
        "AIRFLOW_CONN_KMS_ENCONLY": _kms_conn(kms, enc_ak, enc_secret),
        "AIRFLOW_CONN_KMS_DOWN": _kms_conn(
            kms, kms.access_key_id, kms.access_key_secret, endpoint=f"127.0.0.1:{_closed_port()}"
        ),
    }
    os.environ.update(env)
    cmks = {
        "rsa-file": f"rsa-file://{rsa_file}",
        "vault-transit": f"vault-transit://vault_default/transit/{TRANSIT_KEY}",
        "vault-kv": f"vault-kv://vault_default/secret/{KV_PATH}",
        "kms": f"kms://kms_default/{kms_alias}",
    }
    try:
        yield SecurityEnv(
            oss=oss,
            kms=kms,
            openbao=bao,
            vault=vault,
            cmks=cmks,
            rsa_pem=rsa_pem,
            kv_pem=kv_pem,
            kms_alias=kms_alias,
            static_secrets=[bao.root_token, enc_token, oss.access_key_secret, kms.access_key_secret, enc_secret],
        )
    finally:
        for name in env:
            os.environ.pop(name, None)


@pytest.fixture
def make_hook(security_env: SecurityEnv) -> Callable[..., Any]:
    """``make(cmk_kind_or_ref, **kwargs)`` → an ``EncryptedOSSHook`` on ``oss_sec`` with small part sizes."""
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    def make(cmk: str | None = "rsa-file", **kwargs: Any) -> EncryptedOSSHook:
        kwargs.setdefault("multipart_threshold", THRESHOLD)
        kwargs.setdefault("part_size", PART)
        return EncryptedOSSHook("oss_sec", cmk=security_env.cmks.get(cmk, cmk) if cmk else None, **kwargs)

    return make


class _Collect(logging.Handler):
    """Keeps every record's fully formatted text (message, args and traceback)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.texts.append(self.format(record))
        except Exception as exc:  # noqa: BLE001 - a broken record must not hide the others
            self.texts.append(f"<unformattable record {record.name}: {exc!r} {record.msg!r} {record.args!r}>")


@pytest.fixture
def debug_logs(capfd: pytest.CaptureFixture[str]) -> Iterator[Callable[..., str]]:
    """Every logger at DEBUG, collected; returns ``text(new_only=False)``: log records plus fd 1/2 output.

    A handler is put on the root logger and on every existing logger that does not propagate, so a
    library with its own handler (or Airflow's task loggers) is captured too; every existing logger
    with a level of its own (a library that set itself to INFO or CRITICAL) is set to DEBUG; fd
    capture catches structlog or print output that bypasses ``logging``; every warning shown is kept
    too (pytest would keep it for its summary only) and still handed on to pytest.
    """
    handler = _Collect()
    saved: list[tuple[logging.Logger, int, bool]] = []
    targets = {logging.getLogger(name) for name in DEBUG_LOGGERS}
    targets |= {
        lg
        for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger) and (not lg.propagate or lg.level != logging.NOTSET or lg.disabled)
    }
    for lg in targets:
        saved.append((lg, lg.level, lg.disabled))
        lg.setLevel(logging.DEBUG)
        lg.disabled = False
    attached = [logging.getLogger()] + [lg for lg in targets if not lg.propagate]
    for lg in attached:
        lg.addHandler(handler)
    chunks: list[str] = []
    mark = [0, 0]
    shown_before = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        """Every warning shown is kept here too, then handed on (to pytest's own recording)."""
        handler.texts.append(warnings.formatwarning(message, category, filename, lineno, line))
        shown_before(message, category, filename, lineno, file, line)

    warnings.showwarning = show

    def text(new_only: bool = False) -> str:
        """Everything captured so far; ``new_only``: only what came since the previous call."""
        out, err = capfd.readouterr()
        chunks.extend([out, err])
        start = mark if new_only else [0, 0]
        result = "\n".join(handler.texts[start[0] :] + chunks[start[1] :])
        mark[:] = [len(handler.texts), len(chunks)]
        return result

    try:
        yield text
    finally:
        warnings.showwarning = shown_before
        for lg in attached:
            lg.removeHandler(handler)
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled


def object_content_key(security_env: SecurityEnv, key: str, cmk_ref: str) -> tuple[bytes, bytes]:
    """The object's real data key and IV: its stored envelope unwrapped with the CMK (test-side)."""
    from airflow_provider_osscse.envelope.headers import parse_envelope
    from airflow_provider_osscse.keys.reference import resolve_cmk

    stored = security_env.oss.stored_object(BUCKET, key)
    envelope = parse_envelope(stored.metadata, object_name=key)
    data_key = resolve_cmk(cmk_ref).unwrap(envelope.wrapped)
    return data_key.key, data_key.iv


def redact_text(text: str) -> str:
    """What Airflow's secrets masker makes of ``text`` (the registered secrets replaced)."""
    from airflow.sdk._shared.secrets_masker import redact

    return str(redact(text))
