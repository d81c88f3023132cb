"""EncryptedOSSHook against the local OSS server with real oss2, RSA files and OpenBao Transit."""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.exceptions import (
    CmkError,
    IntegrityError,
    NotEncryptedError,
    ObjectNotFoundError,
)
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

from .conftest import BUCKET, KIB, PART

SIZES = [0, 1, 16, 17, 100 * KIB, 100 * KIB + 1, 3 * PART + 5]


def test_constructor_touches_no_network_or_connection() -> None:
    hook = EncryptedOSSHook("connection_that_does_not_exist", cmk="rsa-file:///nope.pem")
    assert hook.oss_conn_id == "connection_that_does_not_exist"


@pytest.mark.parametrize("conn_id", ["oss_v4", "oss_v1"])
@pytest.mark.parametrize("size", SIZES)
def test_round_trip_from_path(
    make_hook: Callable[..., EncryptedOSSHook], tmp_path: Path, conn_id: str, size: int
) -> None:
    hook = make_hook(conn_id)
    data = os.urandom(size)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    key = f"rt/{conn_id}/{size}"
    result = hook.upload(src, key)
    assert result.size == size and result.parts == (1 if size <= 200 * KIB else -(-size // PART))
    assert hook.get_bucket().get_object(key).read() != data or size == 0  # stored encrypted
    out = hook.download(key, tmp_path / "out.bin")
    assert out.integrity == "verified"
    assert (tmp_path / "out.bin").read_bytes() == data
    assert hook.read(key) == data


@pytest.mark.parametrize("size", [1000, 3 * PART + 5])
def test_upload_from_iterator_and_file_object(make_hook: Callable[..., EncryptedOSSHook], size: int) -> None:
    hook = make_hook()
    data = os.urandom(size)
    hook.upload(iter([data[i : i + 7000] for i in range(0, size, 7000)]), f"iter/{size}")
    hook.upload(io.BytesIO(data), f"fileobj/{size}")
    assert hook.read(f"iter/{size}") == data
    assert hook.read(f"fileobj/{size}") == data


@pytest.mark.parametrize(
    ("spec", "sl"),
    [
        ("5-20", slice(5, 21)),
        ("100000-", slice(100000, None)),
        ("-33", slice(-33, None)),
        ("0-0", slice(0, 1)),
        ("102390-204900", slice(102390, 204901)),
    ],
)
def test_ranged_reads_match_plaintext_slices(make_hook: Callable[..., EncryptedOSSHook], spec: str, sl: slice) -> None:
    hook = make_hook()
    data = os.urandom(3 * PART + 5)
    hook.upload(io.BytesIO(data), "ranges/obj")
    assert hook.read("ranges/obj", byte_range=spec) == data[sl]


@pytest.mark.parametrize("size", [100, 3 * PART + 5])
def test_ranged_read_under_require_verifies_the_whole_object_first(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, size: int
) -> None:
    hook = make_hook(integrity="require")
    data = os.urandom(size)
    key = f"ranges/require/{size}"
    hook.upload(io.BytesIO(data), key)
    got = hook.read(key, byte_range="1-2")
    assert got == data[1:3] and got.integrity == "verified"
    stored = bytearray(oss_env.stored_object(BUCKET, key).data)
    stored[-1] ^= 1  # outside the requested range: only a whole-object check can see it
    oss_env.overwrite_stored(BUCKET, key, bytes(stored))
    with pytest.raises(IntegrityError):
        hook.read(key, byte_range="1-2")


def test_plaintext_object_is_refused_unless_allowed(make_hook: Callable[..., EncryptedOSSHook], tmp_path: Path) -> None:
    hook = make_hook()
    hook.get_bucket().put_object("plain/obj", b"hello")
    with pytest.raises(NotEncryptedError):
        hook.read("plain/obj")
    assert make_hook(allow_plaintext=True).read("plain/obj") == b"hello"
    assert not (tmp_path / "x").exists()


def test_wrong_key_fails_clearly_and_writes_no_file(
    make_hook: Callable[..., EncryptedOSSHook], other_rsa_ref: str, tmp_path: Path
) -> None:
    make_hook().upload(io.BytesIO(b"secret"), "wrongkey/obj")
    with pytest.raises(CmkError):
        make_hook(cmk=other_rsa_ref).download("wrongkey/obj", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("size", [1000, 3 * PART + 5])
def test_tampered_object_fails_and_earlier_file_is_untouched(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, tmp_path: Path, size: int
) -> None:
    hook = make_hook()
    hook.upload(io.BytesIO(os.urandom(size)), "tamper/obj")
    stored = bytearray(hook.get_bucket().get_object("tamper/obj").read())
    stored[size // 2] ^= 1
    oss_env.overwrite_stored(BUCKET, "tamper/obj", bytes(stored))
    dest = tmp_path / "out"
    dest.write_bytes(b"earlier")
    with pytest.raises(IntegrityError):
        hook.download("tamper/obj", dest)
    assert dest.read_bytes() == b"earlier" and len(list(tmp_path.iterdir())) == 1


def test_missing_object_is_a_clear_error_with_no_file(
    make_hook: Callable[..., EncryptedOSSHook], tmp_path: Path
) -> None:
    with pytest.raises(ObjectNotFoundError, match="does not exist"):
        make_hook().download("missing/obj", tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_concurrent_uploads_through_one_hook(make_hook: Callable[..., EncryptedOSSHook]) -> None:
    hook = make_hook()
    payloads = {f"conc/{i}": os.urandom(1000 + i * 40_000) for i in range(8)}
    errors: list[BaseException] = []

    def run(key: str) -> None:
        try:
            hook.upload(io.BytesIO(payloads[key]), key)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert all(hook.read(k) == v for k, v in payloads.items())


@pytest.mark.parametrize("key", ["with space/a b.txt", "unicode/数据-é.bin", "pct/100%/a%2Fb"])
def test_awkward_key_names_round_trip(make_hook: Callable[..., EncryptedOSSHook], key: str) -> None:
    hook = make_hook()
    hook.upload(io.BytesIO(b"data"), key)
    assert hook.exists(key)
    assert key in list(hook.list_keys(prefix=key[:4]))  # a prefix with a space: see report (server v4 signing)
    assert hook.read(key) == b"data"


def test_inspect_describes_envelope_without_decrypting(make_hook: Callable[..., EncryptedOSSHook]) -> None:
    hook = make_hook()
    hook.upload(io.BytesIO(os.urandom(3 * PART)), "inspect/obj", metadata={"owner": "team-a"})
    info = hook.inspect("inspect/obj")
    assert info.encrypted and info.wrap_alg == "RSA/NONE/PKCS1Padding" and info.cek_alg == "AES/CTR/NoPadding"
    assert info.plaintext_size == 3 * PART and info.part_size == PART and info.integrity_tag
    assert info.uri == f"oss://{BUCKET}/inspect/obj"


@pytest.mark.parametrize("size", [1000, 3 * PART + 5])
def test_copy_keeps_envelope_and_metadata(make_hook: Callable[..., EncryptedOSSHook], size: int) -> None:
    hook = make_hook()
    data = os.urandom(size)
    hook.upload(io.BytesIO(data), "copy/src", metadata={"owner": "team-a"}, content_type="text/csv")
    hook.copy("copy/src", "copy/dst")
    assert hook.read("copy/dst") == data
    head = hook.get_bucket().head_object("copy/dst")
    assert head.headers["x-oss-meta-owner"] == "team-a" and head.headers["Content-Type"] == "text/csv"


def test_delete_removes_object(make_hook: Callable[..., EncryptedOSSHook]) -> None:
    hook = make_hook()
    hook.upload(io.BytesIO(b"x"), "del/obj")
    hook.delete("del/obj")
    assert not hook.exists("del/obj")


def test_test_connection_reports_success_and_failure(
    make_hook: Callable[..., EncryptedOSSHook], oss_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert make_hook().test_connection()[0]
    bad = {
        "conn_type": "oss",
        "schema": BUCKET,
        "extra": {
            "auth_type": "AK",
            "access_key_id": "nope",
            "access_key_secret": "bad",
            "region": "cn-hangzhou",
            "endpoint": oss_env.endpoint,
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_OSS_BAD", json.dumps(bad))
    ok, message = EncryptedOSSHook("oss_bad").test_connection()
    assert not ok and message
