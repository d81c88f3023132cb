"""The ``osscse`` command line via ``main([...])`` and one real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main

from .conftest import BUCKET


def test_help_for_every_command_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["put"], ["get"], ["cat"], ["inspect"], ["ls"], ["rewrap"]):
        with pytest.raises(SystemExit) as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
    assert "rewrap" in capsys.readouterr().out


def test_put_get_cat_inspect_ls_round_trip(
    oss_env: Any, rsa_ref: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "src.bin"
    data = os.urandom(5000)
    src.write_bytes(data)
    uri = f"oss://{BUCKET}/cli/obj.bin"
    assert main(["put", str(src), uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4", "--meta", "owner=a"]) == 0
    assert main(["get", uri, str(tmp_path / "out.bin"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 0
    assert (tmp_path / "out.bin").read_bytes() == data
    capsys.readouterr()
    assert main(["inspect", uri, "--json", "--oss-conn-id", "oss_v4"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["encrypted"] and info["plaintext_size"] == 5000
    assert main(["ls", f"oss://{BUCKET}/cli/", "--oss-conn-id", "oss_v4"]) == 0
    assert uri in capsys.readouterr().out


def test_cat_range_writes_plaintext_bytes(
    oss_env: Any, rsa_ref: str, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    EncryptedOSSHook("oss_v4", cmk=rsa_ref).upload(iter([b"0123456789abcdef"]), "cli/cat")
    capfdbinary.readouterr()  # what the set-up printed (Airflow's masker may warn on stdout) is not cat's
    assert main(["cat", f"oss://{BUCKET}/cli/cat", "--range", "-6", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 0
    assert capfdbinary.readouterr().out == b"abcdef"


def test_expected_errors_are_one_line_without_traceback(
    oss_env: Any, rsa_ref: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["get", f"oss://{BUCKET}/cli/missing", str(tmp_path / "x"), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]
    )
    err = capsys.readouterr().err
    assert code == 1 and "does not exist" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    assert main(["ls", "s3://nope", "--oss-conn-id", "oss_v4"]) == 2


def test_rewrap_prefix_with_dry_run_then_real(
    oss_env: Any, rsa_ref: str, other_rsa_ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    hook = EncryptedOSSHook("oss_v4", cmk=rsa_ref)
    for name in ("a", "b"):
        hook.upload(iter([b"payload"]), f"cli-rewrap/{name}")
    base = [
        "rewrap",
        f"oss://{BUCKET}/cli-rewrap/",
        "--cmk",
        other_rsa_ref,
        "--decrypt-cmk",
        rsa_ref,
        "--oss-conn-id",
        "oss_v4",
    ]
    assert main([*base, "--dry-run"]) == 0
    assert capsys.readouterr().out.count("would-rewrap") == 2
    assert main(base) == 0
    out = capsys.readouterr().out
    assert out.count("rewrapped oss://") == 2 and out.endswith("2 rewrapped, 0 already current, 0 skipped, 0 failed\n")
    assert EncryptedOSSHook("oss_v4", cmk=other_rsa_ref).read("cli-rewrap/a") == b"payload"


def test_real_subprocess_put_and_cat(oss_env: Any, rsa_ref: str, tmp_path: Path) -> None:
    src = tmp_path / "in.txt"
    src.write_bytes(b"hello from a subprocess")
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "airflow_provider_osscse.cli"]
    uri = f"oss://{BUCKET}/cli/subprocess.txt"
    put = subprocess.run(
        [*cmd, "put", str(src), uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert put.returncode == 0, put.stderr
    cat = subprocess.run(
        [*cmd, "cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert cat.returncode == 0 and cat.stdout == b"hello from a subprocess"
