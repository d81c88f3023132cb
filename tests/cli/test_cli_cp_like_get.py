"""``osscse get`` behaves like ``cp``: folder destinations, ``-`` for stdout, no silent overwrite, usage errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main

from .conftest import BUCKET


def _upload(rsa_ref: str, key: str, data: bytes) -> str:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    EncryptedOSSHook("oss_v4", cmk=rsa_ref).upload(iter([data]), key)
    return f"oss://{BUCKET}/{key}"


def _get(uri: str, dest: str, rsa_ref: str, *extra: str) -> int:
    return main(["get", uri, dest, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4", *extra])


def test_get_into_an_existing_folder_writes_the_object_base_name(
    oss_env: Any, rsa_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    uri = _upload(rsa_ref, "cp/deep/report.csv", b"a,b\n")
    folder = tmp_path / "out"
    folder.mkdir()
    assert _get(uri, str(folder), rsa_ref) == 0
    assert (folder / "report.csv").read_bytes() == b"a,b\n"
    assert _get(uri, f"{tmp_path}/other{os.sep}", rsa_ref) == 1  # a folder named with a slash must exist
    err = capfd.readouterr().err
    assert "other" in err and "does not exist" in err


def test_get_to_dash_writes_plaintext_to_stdout_and_no_file(
    oss_env: Any, rsa_ref: str, tmp_path: Path, capfdbinary: pytest.CaptureFixture[bytes], monkeypatch: Any
) -> None:
    uri = _upload(rsa_ref, "cp/stdout.txt", b"to stdout")
    monkeypatch.chdir(tmp_path)
    assert _get(uri, "-", rsa_ref) == 0
    assert capfdbinary.readouterr().out == b"to stdout"
    assert not (tmp_path / "-").exists()


def test_get_refuses_to_overwrite_an_existing_file_unless_force(
    oss_env: Any, rsa_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    uri = _upload(rsa_ref, "cp/keep.txt", b"new content")
    dest = tmp_path / "keep.txt"
    dest.write_bytes(b"precious")
    assert _get(uri, str(dest), rsa_ref) == 1
    err = capfd.readouterr().err
    assert "--force" in err and str(dest) in err and len(err.strip().splitlines()) == 1
    assert dest.read_bytes() == b"precious"
    assert _get(uri, str(dest), rsa_ref, "--force") == 0
    assert dest.read_bytes() == b"new content"


def test_get_into_a_missing_parent_folder_fails_before_any_transfer(
    oss_env: Any, rsa_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The object does not exist: an error about the folder proves nothing was fetched first.
    dest = tmp_path / "no" / "such" / "file.bin"
    assert _get(f"oss://{BUCKET}/cp/absent", str(dest), rsa_ref) == 1
    err = capfd.readouterr().err
    assert str(dest.parent) in err and "does not exist" in err and "mkdir" in err
    assert not dest.parent.exists()


def test_object_commands_without_a_key_are_usage_errors(
    oss_env: Any, rsa_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    assert main(["put", str(src), f"oss://{BUCKET}", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 2
    assert main(["get", f"oss://{BUCKET}/", str(tmp_path), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 2
    err = capfd.readouterr().err
    assert "oss://BUCKET/KEY" in err and "{" not in err


def test_real_subprocess_get_dash_and_refused_overwrite(oss_env: Any, rsa_ref: str, tmp_path: Path) -> None:
    uri = _upload(rsa_ref, "cp/sub.txt", b"piped plaintext")
    cmd = [sys.executable, "-m", "airflow_provider_osscse.cli", "get", uri]
    opts = ["--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]
    piped = subprocess.run([*cmd, "-", *opts], capture_output=True, timeout=120, check=False, cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == b"piped plaintext"
    (tmp_path / "sub.txt").write_bytes(b"mine")
    refused = subprocess.run([*cmd, str(tmp_path), *opts], capture_output=True, timeout=120, check=False)
    assert refused.returncode == 1 and b"--force" in refused.stderr
    assert refused.stdout == b"", refused.stdout
    assert (tmp_path / "sub.txt").read_bytes() == b"mine"
