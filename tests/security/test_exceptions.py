"""Every error path names the problem, and neither it nor anything chained to it carries a secret.

The object's real data key and IV are learnt first (test-side unwrap), then the failure is provoked
through the real hook against the real services: a wrong CMK, corrupted wrapped values (the hvac
batch-decrypt case where the *other* item's plaintext sits in Vault's error body), a tampered
ciphertext, a token or access key without decrypt permission, an unreachable Vault or KMS, and bad
references. The full formatted exception (``traceback.format_exception``: every chained
``__cause__`` / ``__context__`` message) plus ``str``/``repr`` of each link is searched.
"""

from __future__ import annotations

import base64
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.exceptions import (
    CmkReferenceError,
    IntegrityError,
    KeyNotFoundError,
    KeyPermissionError,
    KeyServiceUnavailableError,
    KeyUnwrapError,
    NoMatchingKeyError,
    OSSCSEError,
)

from .conftest import BUCKET, TRANSIT_KEY, SecurityEnv, leaked, object_content_key, secret_forms


def exception_texts(exc: BaseException) -> str:
    """The formatted traceback (all chained messages) plus ``str`` and ``repr`` of every link."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        link = todo.pop()
        if link is None or id(link) in seen:
            continue
        seen.add(id(link))
        parts += [str(link), repr(link), repr(getattr(link, "args", ()))]
        todo += [link.__cause__, link.__context__]
    return "\n".join(parts)


def _uploaded(make_hook: Callable[..., Any], security_env: SecurityEnv, kind: str, key: str) -> list[str]:
    """Upload a small object under ``kind``; the secret forms (its data key and IV, static secrets)."""
    make_hook(kind).upload(iter([b"confidential rows\n" * 20]), key)
    data_key, iv = object_content_key(security_env, key, security_env.cmks[kind])
    return secret_forms(data_key, iv) + security_env.static_forms()


def _corrupt_header(security_env: SecurityEnv, key: str, header: str) -> None:
    """Replace one wrapped value (``-key`` or ``-start``) by a plausible but wrong one."""
    stored = security_env.oss.stored_object(BUCKET, key)
    name = f"x-oss-meta-client-side-encryption-{header}"
    raw = bytearray(base64.b64decode(stored.metadata[name]))
    if raw.startswith(b"vault:v"):  # keep it a Vault ciphertext so Vault itself must refuse it
        body = bytearray(base64.b64decode(raw.split(b":", 2)[2]))
        body[-1] ^= 0x01
        raw = bytearray(raw.rsplit(b":", 1)[0] + b":" + base64.b64encode(bytes(body)))
    else:
        raw[len(raw) // 2] ^= 0x01
    metadata = {**stored.metadata, name: base64.b64encode(bytes(raw)).decode()}
    security_env.oss.overwrite_stored(BUCKET, key, metadata=metadata)


def _failure(fn: Callable[[], Any], expected: type[BaseException] | tuple[type[BaseException], ...]) -> BaseException:
    with pytest.raises(expected) as info:
        fn()
    return info.value


@pytest.mark.parametrize("kind", ["rsa-file", "vault-transit", "vault-kv", "kms"])
@pytest.mark.parametrize("header", ["key", "start"])
def test_corrupted_wrapped_key_or_iv_fails_to_unwrap_without_quoting_either(
    kind: str,
    header: str,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    tmp_path: Path,
) -> None:
    """Corrupting only one of the two wrapped values means the service unwraps the *other* one
    successfully: its plaintext must not travel in the error (hvac embeds Vault's whole body)."""
    key = f"errors/corrupt-{kind}-{header}"
    forms = _uploaded(make_hook, security_env, kind, key)
    _corrupt_header(security_env, key, header)
    hook = make_hook(kind)
    exc = _failure(lambda: hook.download(key, tmp_path / "out"), (KeyUnwrapError, IntegrityError))
    text = exception_texts(exc)
    assert leaked(text, forms) == []
    assert key in str(exc) or security_env.cmks[kind] in str(exc) or "CMK" in str(exc)
    assert list(tmp_path.iterdir()) == []


def test_wrong_cmk_is_refused_by_name_without_secrets(
    security_env: SecurityEnv, make_hook: Callable[..., Any], tmp_path: Path
) -> None:
    key = "errors/wrong-cmk"
    forms = _uploaded(make_hook, security_env, "rsa-file", key)
    exc = _failure(lambda: make_hook("vault-kv").read(key), NoMatchingKeyError)
    assert "rsa-sha256:" in str(exc) and leaked(exception_texts(exc), forms) == []


def test_tampered_ciphertext_raises_integrity_error_without_secrets(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    key = "errors/tampered"
    forms = _uploaded(make_hook, security_env, "vault-transit", key)
    stored = bytearray(security_env.oss.stored_object(BUCKET, key).data)
    stored[5] ^= 0x80
    security_env.oss.overwrite_stored(BUCKET, key, bytes(stored))
    exc = _failure(lambda: make_hook("vault-transit").read(key), IntegrityError)
    assert key in str(exc) and leaked(exception_texts(exc), forms) == []


@pytest.mark.parametrize(
    ("kind", "reference"),
    [
        ("vault-transit", f"vault-transit://vault_enconly/transit/{TRANSIT_KEY}"),
        ("kms", "kms://kms_enconly/{alias}"),
    ],
)
def test_permission_denied_names_the_missing_capability_without_secrets(
    kind: str,
    reference: str,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    """An encrypt-only credential can write but reading fails clearly (names what it lacks)."""
    reference = reference.format(alias=security_env.kms_alias)
    key = f"errors/denied-{kind}"
    forms = _uploaded(make_hook, security_env, kind, key)
    make_hook(reference).upload(iter([b"writers need not read"]), f"{key}-written-by-enconly")
    exc = _failure(lambda: make_hook(reference).read(key), KeyPermissionError)
    assert ("decrypt" in str(exc).lower() or "Decrypt" in str(exc)) and reference in str(exc)
    assert leaked(exception_texts(exc), forms) == []


@pytest.mark.parametrize(
    ("kind", "reference"),
    [
        ("vault-transit", f"vault-transit://vault_down/transit/{TRANSIT_KEY}"),
        ("kms", "kms://kms_down/{alias}"),
    ],
)
def test_unreachable_key_service_fails_with_a_bounded_clear_error_without_secrets(
    kind: str,
    reference: str,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    reference = reference.format(alias=security_env.kms_alias)
    key = f"errors/down-{kind}"
    forms = _uploaded(make_hook, security_env, kind, key)
    exc = _failure(lambda: make_hook(reference).read(key), OSSCSEError)
    assert isinstance(exc, KeyServiceUnavailableError), f"{type(exc).__name__}: {exc}"
    assert reference in str(exc) and leaked(exception_texts(exc), forms) == []


@pytest.mark.parametrize(
    ("reference", "expected", "says"),
    [
        ("vault-transit://no_such_conn/transit/k", CmkReferenceError, "is not defined"),
        ("kms://no_such_conn/alias/x", CmkReferenceError, "is not defined"),
        ("vault-transit://vault_default/transit", CmkReferenceError, "expected vault-transit://"),
        ("s3://bucket/key", CmkReferenceError, "unknown scheme"),
        ("rsa-file:///nonexistent/osscse/key.pem", KeyNotFoundError, "no key file"),
        ("vault-kv://vault_default/secret/osscse/no-such-secret", KeyNotFoundError, "not found"),
    ],
)
def test_bad_cmk_reference_says_what_is_wrong_without_secrets(
    reference: str,
    expected: type[Exception],
    says: str,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
) -> None:
    exc = _failure(lambda: make_hook(reference).upload(iter([b"x"]), "errors/bad-reference"), expected)
    assert says in str(exc) and leaked(exception_texts(exc), security_env.static_forms()) == []
    assert not make_hook(None).exists("errors/bad-reference")
