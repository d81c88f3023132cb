"""Secrets stay out of every log, at DEBUG, for every logger, through every CMK kind.

Each test runs a real upload (multipart from an iterator, so the spool path too), download, read and
rewrap against the local OSS and KMS servers and OpenBao, with root, airflow, oss2, hvac, urllib3 and
the Alibaba Tea SDK all at DEBUG. Only afterwards does the test unwrap the object's envelope itself to
learn the real data key and IV, and then looks for them (and the static secrets) in everything logged.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .conftest import PART, SecurityEnv, leaked, object_content_key, redact_text, secret_forms

KINDS = ["rsa-file", "vault-transit", "vault-kv", "kms"]
#: Each kind is rewrapped onto another (unwrap + wrap in memory, or KMS/Vault native where possible).
#: KMS is kept out of the targets here: rewrapping *onto* KMS has its own test below.
REWRAP_TO = {"rsa-file": "vault-transit", "vault-transit": "vault-kv", "vault-kv": "rsa-file", "kms": "rsa-file"}


def _round_trip(make_hook: Callable[..., Any], kind: str, key: str, tmp_path: Path, target_kind: str) -> bytes:
    """Upload (multipart, from an iterator), download, read and rewrap ``key`` from ``kind`` to ``target_kind``."""
    hook = make_hook(kind)
    data = os.urandom(3 * PART + 7)
    hook.upload(iter([data[i : i + 50_000] for i in range(0, len(data), 50_000)]), key)
    hook.download(key, tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    assert hook.read(key) == data
    target = make_hook(target_kind, decrypt_cmks=[hook.cmk])
    assert target.rewrap(key).status == "rewrapped"
    assert target.read(key) == data
    return data


@pytest.mark.parametrize("kind", KINDS)
def test_debug_logs_of_every_library_never_show_data_key_iv_tokens_pems_or_secrets(
    kind: str,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    debug_logs: Callable[..., str],
    tmp_path: Path,
) -> None:
    key = f"logs/{kind}.bin"
    _round_trip(make_hook, kind, key, tmp_path, REWRAP_TO[kind])
    logged = debug_logs()
    assert "GET /" in logged or "PUT /" in logged or "urllib3" in logged, "capture saw no HTTP debug lines"
    data_key, iv = object_content_key(security_env, key, security_env.cmks[REWRAP_TO[kind]])
    assert leaked(logged, secret_forms(data_key, iv)) == []
    assert leaked(logged, security_env.static_forms()) == []


def test_rewrapping_onto_kms_keeps_the_data_key_out_of_debug_logs(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    debug_logs: Callable[..., str],
    tmp_path: Path,
) -> None:
    """Rewrap RSA → KMS is unwrap-then-``Encrypt``: the raw data key goes to KMS in that request."""
    key = "logs/rsa-to-kms.bin"
    _round_trip(make_hook, "rsa-file", key, tmp_path, "kms")
    logged = debug_logs()
    data_key, iv = object_content_key(security_env, key, security_env.cmks["kms"])
    assert leaked(logged, secret_forms(data_key, iv)) == []
    assert leaked(logged, security_env.static_forms()) == []


@pytest.mark.parametrize("kind", ["rsa-file", "vault-kv"])
def test_airflow_masker_redacts_the_pem_lines_of_every_private_key_the_provider_loaded(
    kind: str,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    """A private PEM the provider loaded is long-lived: a careless log line carrying it (or one of its
    lines) comes out of ``redact()`` without it. Per-object data keys are kept out of logs by
    construction instead (see the test below and ``test_debug_logging_leaks.py``)."""
    key = f"masking/{kind}.bin"
    hook = make_hook(kind)
    hook.upload(iter([b"masked", b" content"]), key)
    assert hook.read(key) == b"masked content"
    text = {"rsa-file": security_env.rsa_pem, "vault-kv": security_env.kv_pem}[kind].decode()
    assert leaked(redact_text(text), [line for line in text.splitlines() if not line.startswith("-----")]) == []


def test_airflow_masker_redacts_the_connection_secrets_once_the_connections_were_used(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    """The OSS secret, the Vault token and the KMS secret live in connections; Airflow masks a
    connection's password and secret-named extras when it is fetched."""
    for kind in ("vault-transit", "kms"):
        hook = make_hook(kind)
        hook.upload(iter([b"x" * 10]), f"masking/conn-{kind}")
    for secret in (
        security_env.oss.access_key_secret,
        security_env.openbao.root_token,
        security_env.kms.access_key_secret,
    ):
        assert secret not in redact_text(f"debug: credential {secret} used")


def test_data_keys_are_not_registered_with_the_masker_so_its_cost_does_not_grow_with_objects() -> None:
    """Registering per-object data keys made every registration recompile a regex of all of them
    (issue 13: downloads 70x slower); hygiene for data keys is by construction, so the masker's set
    of patterns stays the same however many objects a process has touched. Tokens stay masked."""
    import os as _os

    import airflow.sdk  # noqa: F401 - the masker is active only where Airflow is
    from airflow.sdk._shared.secrets_masker import _secrets_masker

    from airflow_provider_osscse.keys import masking
    from airflow_provider_osscse.keys.local_rsa import LocalRsaKey

    cmk = LocalRsaKey.generate(reference="rsa-masking-cost")
    before = len(_secrets_masker().patterns)
    for _ in range(50):
        data_key, wrapped = cmk.new_data_key()
        assert cmk.unwrap(wrapped) == data_key
    assert len(_secrets_masker().patterns) == before
    token = "hvs." + _os.urandom(12).hex()
    masking.mask_strings([token])
    assert token not in redact_text(f"token {token}")
