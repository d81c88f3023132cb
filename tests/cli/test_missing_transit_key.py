"""A typo'd Transit key name fails before anything is written, and is never created in Vault.

Transit upserts on encrypt for tokens with ``create`` on the encrypt path (the session's
``vault_default`` connection holds the root token, like many real deployments' admin tokens), so
before the fix ``osscse put --cmk vault-transit://vault_default/transit/<typo>`` succeeded and
silently created a new key: the object's key custody forked from the intended key.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hvac
import hvac.exceptions
import pytest

from airflow_provider_osscse.cli import main
from airflow_provider_osscse.exceptions import KeyNotFoundError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

from .conftest import BUCKET, THRESHOLD


def _key_exists(client: hvac.Client, name: str) -> bool:
    try:
        client.secrets.transit.read_key(name)
    except hvac.exceptions.InvalidPath:
        return False
    return True


def _no_trace_in_oss(hook: EncryptedOSSHook, key: str) -> bool:
    """Neither the object nor an unfinished multipart upload for it."""
    uploads = hook.get_bucket().list_multipart_uploads(prefix=key).upload_list
    return not hook.exists(key) and not uploads


@pytest.mark.parametrize("size", [10, THRESHOLD + 1], ids=["single-put", "multipart"])
def test_hook_upload_with_a_typod_transit_key_writes_nothing_and_creates_no_key(
    make_hook: Callable[..., EncryptedOSSHook],
    transit_ref: Any,
    size: int,
) -> None:
    name = f"no-such-key-{uuid.uuid4().hex[:8]}"
    hook = make_hook(cmk=f"vault-transit://vault_default/transit/{name}")
    key = f"typo-transit/{name}"
    with pytest.raises(KeyNotFoundError) as info:
        hook.upload(iter([os.urandom(size)]), key)
    message = str(info.value)
    assert f"'{name}'" in message and "mount 'transit'" in message and "'vault_default'" in message
    assert f"bao write -f transit/keys/{name}" in message
    assert not _key_exists(transit_ref.client, name)
    assert _no_trace_in_oss(hook, key)


def test_cli_put_with_a_typod_transit_key_fails_in_one_line_and_creates_nothing(
    oss_env: Any,
    transit_ref: Any,
    make_hook: Callable[..., EncryptedOSSHook],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = f"no_such_key_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(4096))
    key = f"cli-typo-transit/{name}.bin"
    code = main(
        [
            "put",
            str(src),
            f"oss://{BUCKET}/{key}",
            "--cmk",
            f"vault-transit://vault_default/transit/{name}",
            "--oss-conn-id",
            "oss_v4",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "KeyNotFoundError" in err and len(err.strip().splitlines()) == 1
    assert f"Transit key '{name}' does not exist on mount 'transit' of Vault connection 'vault_default'" in err
    assert f"vault write -f transit/keys/{name}" in err
    assert not _key_exists(transit_ref.client, name)
    assert _no_trace_in_oss(make_hook(), key)


def test_put_succeeds_once_the_key_is_created_as_the_message_says(
    oss_env: Any,
    transit_ref: Any,
    make_hook: Callable[..., EncryptedOSSHook],
    tmp_path: Path,
) -> None:
    name = f"late-key-{uuid.uuid4().hex[:8]}"
    src = tmp_path / "src.bin"
    src.write_bytes(b"written after the key was provisioned")
    uri, ref = f"oss://{BUCKET}/cli-typo-transit/{name}", f"vault-transit://vault_default/transit/{name}"
    assert main(["put", str(src), uri, "--cmk", ref, "--oss-conn-id", "oss_v4"]) == 1
    transit_ref.client.secrets.transit.create_key(name)  # `bao write -f transit/keys/<name>`
    assert main(["put", str(src), uri, "--cmk", ref, "--oss-conn-id", "oss_v4"]) == 0
    assert make_hook(cmk=ref).read(f"cli-typo-transit/{name}") == src.read_bytes()
