"""``osscse`` errors in the command line's words: flags, not the hook's arguments; OSS, Vault and KMS
failures as one line naming the bucket, object or key and the endpoint, with the likely fix.

Run as a user does (the console script in a child process, :mod:`tests.cli.cli_process`), against the
real local OSS and KMS servers and OpenBao: a wrong secret is refused by the server's signature
check, a missing bucket is missing, an unreachable endpoint is a closed port, a permission is denied
by an OpenBao policy or a KMS credential limited to some actions.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

from .cli_process import osscse
from .conftest import BUCKET

#: What a raw oss2 error looks like on a terminal; never shown.
RAW_OSS2 = ("{'status'", "'details'", "StringToSign", "x-oss-request-id", "Traceback")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def failure(result: subprocess.CompletedProcess[bytes], *error_types: str) -> str:
    """The command's error line: exit status 1 (a runtime failure, not usage), the last line of
    stderr, ``osscse: <one of error_types>: ...``, and nothing of a raw oss2 error anywhere on stderr."""
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert result.stdout == b"" or b"osscse" not in result.stdout
    line = err.strip().splitlines()[-1]
    assert line.startswith(tuple(f"osscse: {error_type}: " for error_type in error_types)), err
    assert not [raw for raw in RAW_OSS2 if raw in err], err
    return line


def conn_env(name: str, base: str, **changes: Any) -> dict[str, str]:
    """``AIRFLOW_CONN_<NAME>``: the JSON connection ``base`` with ``changes`` (``extra__x`` for extras)."""
    conn = json.loads(os.environ[f"AIRFLOW_CONN_{base.upper()}"])
    for field, value in changes.items():
        if field.startswith("extra__"):
            conn["extra"][field.removeprefix("extra__")] = value
        else:
            conn[field] = value
    return {f"AIRFLOW_CONN_{name.upper()}": json.dumps(conn)}


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "rows.csv"
    path.write_bytes(b"id,amount\n1,10\n")
    return path


@pytest.fixture
def encrypted(make_hook: Callable[..., EncryptedOSSHook]) -> str:
    """An encrypted object (under ``rsa_ref``) in the test bucket; its key."""
    key = f"cli-errors/{uuid.uuid4().hex[:8]}.csv"
    make_hook().upload(b"id,amount\n1,10\n", key)
    return key


# -- the hook's settings in the command line's words ---------------------------------------------


def test_put_without_a_cmk_says_to_pass_the_cmk_flag(oss_env: Any, src: Path) -> None:
    line = failure(
        osscse("put", str(src), f"oss://{BUCKET}/cli-errors/no-cmk", "--cmk", "", "--oss-conn-id", "oss_v4"),
        "CmkReferenceError",
    )
    assert "--cmk REF" in line
    assert "cmk='" not in line and "EncryptedOSSHook" not in line


def test_get_of_a_plaintext_object_says_to_pass_allow_plaintext_as_a_flag(
    make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str, tmp_path: Path
) -> None:
    key = f"cli-errors/plain-{uuid.uuid4().hex[:8]}"
    make_hook().get_bucket().put_object(key, b"not encrypted")
    result = osscse("get", f"oss://{BUCKET}/{key}", str(tmp_path / "out"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    line = failure(result, "NotEncryptedError")
    assert "not client-side encrypted" in line and "--allow-plaintext" in line
    assert "allow_plaintext=True" not in line


def test_get_without_cmk_names_the_flag_and_the_cmk_the_object_names(
    make_hook: Callable[..., EncryptedOSSHook], encrypted: str, tmp_path: Path
) -> None:
    identity = make_hook().inspect(encrypted).cmk
    assert identity
    result = osscse("get", f"oss://{BUCKET}/{encrypted}", str(tmp_path / "out"), "--oss-conn-id", "oss_v4")
    line = failure(result, "NoMatchingKeyError")
    assert identity in line and "x-oss-meta-osscse-cmk" in line
    assert "--cmk REF" in line and "decrypt_cmks" not in line and "cmk='" not in line
    assert not (tmp_path / "out").exists()


def _public_half(rsa_ref: str, folder: Path) -> str:
    private = serialization.load_pem_private_key(Path(rsa_ref.removeprefix("rsa-file://")).read_bytes(), None)
    path = folder / "public.pem"
    path.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return f"rsa-file://{path}"


def _kv_writer_only(rsa_ref: str, osscse_openbao: Any) -> str:
    """A Vault KV secret holding only the public half of ``rsa_ref``: a writer's CMK."""
    private = serialization.load_pem_private_key(Path(rsa_ref.removeprefix("rsa-file://")).read_bytes(), None)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = f"cli-errors/writer-{uuid.uuid4().hex[:8]}"
    osscse_openbao.client().secrets.kv.v2.create_or_update_secret(path=path, secret={"public_key": public.decode()})
    return f"vault-kv://vault_default/secret/{path}"


@pytest.mark.parametrize("form", ["rsa-file public key", "vault-kv writer secret"])
def test_reading_with_a_public_key_only_cmk_says_a_reader_needs_the_private_key(
    encrypted: str, rsa_ref: str, osscse_openbao: Any, tmp_path: Path, form: str
) -> None:
    cmk = _public_half(rsa_ref, tmp_path) if form.startswith("rsa-file") else _kv_writer_only(rsa_ref, osscse_openbao)
    result = osscse(
        "get", f"oss://{BUCKET}/{encrypted}", str(tmp_path / "out"), "--cmk", cmk, "--oss-conn-id", "oss_v4"
    )
    line = failure(result, "KeyUnwrapError", "PublicKeyOnlyError")
    assert "only a public key" in line and "private key" in line
    assert "candidate" not in line
    assert "--cmk REF" in line


# -- OSS errors: one line, the bucket and the endpoint, the likely fix ----------------------------


@pytest.mark.parametrize("command", ["ls", "put", "get"])
def test_a_missing_bucket_is_named_with_the_endpoint_and_the_fix(
    oss_env: Any, rsa_ref: str, src: Path, tmp_path: Path, command: str
) -> None:
    bucket = f"no-such-bucket-{uuid.uuid4().hex[:6]}"
    args = {
        "ls": ["ls", f"oss://{bucket}/"],
        "put": ["put", str(src), f"oss://{bucket}/k.csv", "--cmk", rsa_ref],
        "get": ["get", f"oss://{bucket}/k.csv", str(tmp_path / "out"), "--cmk", rsa_ref],
    }[command]
    line = failure(osscse(*args, "--oss-conn-id", "oss_v4"), "BucketNotFoundError")
    assert f"bucket '{bucket}' does not exist" in line and oss_env.endpoint in line
    assert "create the bucket" in line


def test_a_wrong_access_key_secret_says_so_without_the_string_to_sign_or_the_secret(
    oss_env: Any, encrypted: str
) -> None:
    secret = f"wrong-secret-{uuid.uuid4().hex}"
    env = conn_env("oss_wrong_secret", "oss_v4", extra__access_key_secret=secret)
    result = osscse("inspect", f"oss://{BUCKET}/{encrypted}", "--oss-conn-id", "oss_wrong_secret", env=env)
    line = failure(result, "OssCredentialsError")
    assert "SignatureDoesNotMatch" in line and "access key secret" in line and oss_env.endpoint in line
    assert secret not in result.stderr.decode() and secret not in result.stdout.decode()


def test_an_unknown_access_key_id_says_to_check_it(oss_env: Any, encrypted: str) -> None:
    env = conn_env("oss_wrong_id", "oss_v4", extra__access_key_id="LTAIunknownkeyid0000")
    result = osscse("inspect", f"oss://{BUCKET}/{encrypted}", "--oss-conn-id", "oss_wrong_id", env=env)
    line = failure(result, "OssCredentialsError")
    assert "InvalidAccessKeyId" in line and "access_key_id" in line and oss_env.endpoint in line


def test_an_unreachable_oss_endpoint_names_it_and_says_what_to_check(oss_env: Any, encrypted: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = conn_env("oss_unreachable", "oss_v4", extra__endpoint=endpoint)
    result = osscse("inspect", f"oss://{BUCKET}/{encrypted}", "--oss-conn-id", "oss_unreachable", env=env)
    line = failure(result, "OssUnavailableError")
    assert f"cannot reach OSS at {endpoint}" in line and "connection refused" in line
    assert "endpoint" in line.split("connection refused", 1)[1]


# -- Vault and KMS: the address or endpoint, the key, and the fix ---------------------------------


def test_a_vault_token_without_update_on_encrypt_names_the_capability_path_address_and_policy_docs(
    oss_env: Any, transit_ref: Any, osscse_openbao: Any, src: Path
) -> None:
    name = f"cli-errors-{uuid.uuid4().hex[:8]}"
    transit_ref(name)
    root = osscse_openbao.client()
    policy = f"cli-errors-reader-{name}"
    root.sys.create_or_update_policy(policy, f'path "transit/keys/{name}" {{ capabilities = ["read"] }}')
    token = root.auth.token.create(policies=[policy], ttl="10m")["auth"]["client_token"]
    env = conn_env("vault_no_encrypt", "vault_default", password=token)
    result = osscse(
        "put",
        str(src),
        f"oss://{BUCKET}/cli-errors/{name}.csv",
        "--cmk",
        f"vault-transit://vault_no_encrypt/transit/{name}",
        "--oss-conn-id",
        "oss_v4",
        env=env,
    )
    line = failure(result, "KeyPermissionError")
    assert f"lacks the 'update' capability on 'transit/encrypt/{name}'" in line
    assert osscse_openbao.address in line and "docs/key-custody.md" in line
    assert token not in result.stderr.decode()


def test_an_unreachable_vault_names_its_address(oss_env: Any, src: Path) -> None:
    port = closed_port()
    env = conn_env("vault_unreachable", "vault_default", port=port)
    result = osscse(
        "put",
        str(src),
        f"oss://{BUCKET}/cli-errors/vault-down.csv",
        "--cmk",
        "vault-transit://vault_unreachable/transit/orders",
        "--oss-conn-id",
        "oss_v4",
        env=env,
    )
    line = failure(result, "KeyServiceUnavailableError")
    assert f"cannot reach Vault at http://127.0.0.1:{port}" in line and "connection refused" in line
    assert "'vault_unreachable'" in line


def test_a_missing_kms_key_names_the_key_the_endpoint_and_the_fix(
    oss_env: Any, osscse_kms_server: Any, src: Path
) -> None:
    key_id = f"key-{uuid.uuid4()}"
    result = osscse(
        "put",
        str(src),
        f"oss://{BUCKET}/cli-errors/kms.csv",
        "--cmk",
        f"kms://kms_default/{key_id}",
        "--oss-conn-id",
        "oss_v4",
    )
    line = failure(result, "KeyNotFoundError")
    assert key_id in line and osscse_kms_server.endpoint in line and "Forbidden.KeyNotFound" in line
    assert "check the key id" in line


def test_kms_credentials_without_the_action_name_it_the_endpoint_and_the_ram_policy(
    oss_env: Any, osscse_kms_server: Any, src: Path
) -> None:
    key_id = osscse_kms_server.create_key()
    access_key_id, secret = f"LTAIdecryptonly{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    osscse_kms_server.add_credential(access_key_id, secret, allowed_actions={"Decrypt"})
    env = conn_env("kms_decrypt_only", "kms_default", login=access_key_id, password=secret)
    result = osscse(
        "put",
        str(src),
        f"oss://{BUCKET}/cli-errors/kms-forbidden.csv",
        "--cmk",
        f"kms://kms_decrypt_only/{key_id}",
        "--oss-conn-id",
        "oss_v4",
        env=env,
    )
    line = failure(result, "KeyPermissionError")
    assert "may not call kms:GenerateDataKey" in line and osscse_kms_server.endpoint in line
    assert "'kms_decrypt_only'" in line and "RAM policy" in line
    assert secret not in result.stderr.decode()


def test_an_unreachable_kms_names_its_endpoint(oss_env: Any, src: Path) -> None:
    endpoint = f"127.0.0.1:{closed_port()}"
    env = conn_env("kms_unreachable", "kms_default", extra__endpoint=endpoint)
    result = osscse(
        "put",
        str(src),
        f"oss://{BUCKET}/cli-errors/kms-down.csv",
        "--cmk",
        "kms://kms_unreachable/some-key",
        "--oss-conn-id",
        "oss_v4",
        env=env,
    )
    line = failure(result, "KeyServiceUnavailableError")
    assert f"cannot reach KMS at http://{endpoint}" in line and "'kms_unreachable'" in line


# -- the words tables (no process: what each command's flags are) --------------------------------


def test_a_remedy_is_said_in_the_python_api_by_str_and_in_each_commands_flags_by_the_cli() -> None:
    from airflow_provider_osscse.cli_errors import describe
    from airflow_provider_osscse.exceptions import NoMatchingKeyError, Remedy

    error = NoMatchingKeyError("no CMK", object_name="k", remedy=Remedy("read_cmk", note="naming that CMK"))
    assert str(error) == "object 'k': no CMK; pass cmk= or decrypt_cmks= naming that CMK"
    assert describe(error, "get") == "NoMatchingKeyError: object 'k': no CMK; pass --cmk REF naming that CMK"
    assert describe(error, "rewrap").endswith("; pass --decrypt-cmk OLD_REF naming that CMK")
    target = NoMatchingKeyError("rewrap needs a target CMK", remedy=Remedy("new_cmk", "cmk"))
    assert str(target).endswith("pass new_cmk='<reference>' or cmk='<reference>'")
    assert describe(target, "rewrap").endswith("pass --cmk NEW_REF")  # both arguments are the one flag


def test_an_untranslated_oss2_error_is_still_one_line_without_the_dict() -> None:
    import oss2.exceptions

    from airflow_provider_osscse.cli_errors import describe

    raw = oss2.exceptions.SignatureDoesNotMatch(
        403, {"x-oss-request-id": "R1"}, b"", {"Code": "SignatureDoesNotMatch", "StringToSign": "OSS4-HMAC..."}
    )
    line = describe(raw, "inspect")
    assert line.startswith("OssCredentialsError: ") and "access key secret" in line
    assert not [shown for shown in RAW_OSS2 if shown in line]


def test_an_untagged_refusal_without_a_remedy_still_names_the_integrity_flag() -> None:
    from airflow_provider_osscse.cli_errors import describe
    from airflow_provider_osscse.exceptions import UnauthenticatedObjectError

    line = describe(UnauthenticatedObjectError("no tag", object_name="k"), "cat")
    assert line.endswith("no tag; pass --integrity if-present to read it anyway (unauthenticated)")
