"""``osscse rewrap`` over a prefix: every object handled and reported, a summary, the exit status."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main
from tests.transfer_fixtures import _write_rsa

from .conftest import BUCKET


def test_rewrap_prefix_reports_every_object_and_a_summary(
    oss_env: Any,
    rsa_ref: str,
    other_rsa_ref: str,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    third_ref = _write_rsa(tmp_path / "third.pem")
    EncryptedOSSHook("oss_v4", cmk=rsa_ref).upload(iter([b"a"]), "rw-mix/a")
    EncryptedOSSHook("oss_v4", cmk=third_ref).upload(iter([b"b"]), "rw-mix/b-other-cmk")
    EncryptedOSSHook("oss_v4", cmk=rsa_ref).upload(iter([b"c"]), "rw-mix/c")
    EncryptedOSSHook("oss_v4", cmk=other_rsa_ref).upload(iter([b"d"]), "rw-mix/d-current")
    EncryptedOSSHook("oss_v4").get_bucket().put_object("rw-mix/e-plain", b"plain")
    args = ["rewrap", f"oss://{BUCKET}/rw-mix/", "--cmk", other_rsa_ref, "--decrypt-cmk", rsa_ref]
    code = main([*args, "--oss-conn-id", "oss_v4"])
    out, err = capfd.readouterr()
    lines = out.strip().splitlines()
    assert code == 1, (out, err)
    assert len(lines) == 6, out
    uri = f"oss://{BUCKET}/rw-mix"
    assert lines[0] == f"rewrapped {uri}/a: {rsa_ref} -> {other_rsa_ref}"
    assert lines[1].startswith(f"skipped {uri}/b-other-cmk: other CMK rsa-sha256:")
    assert lines[2] == f"rewrapped {uri}/c: {rsa_ref} -> {other_rsa_ref}"
    assert lines[3] == f"already-current {uri}/d-current"
    assert lines[4].startswith(f"failed {uri}/e-plain: ") and "not client-side encrypted" in lines[4]
    assert lines[5] == "2 rewrapped, 1 already current, 1 skipped, 1 failed"
    assert EncryptedOSSHook("oss_v4", cmk=other_rsa_ref).read("rw-mix/c") == b"c"
    assert EncryptedOSSHook("oss_v4", cmk=third_ref).read("rw-mix/b-other-cmk") == b"b"


def test_rewrap_dry_run_over_a_prefix_goes_past_an_object_under_another_cmk(
    oss_env: Any, rsa_ref: str, other_rsa_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    EncryptedOSSHook("oss_v4", cmk=_write_rsa(tmp_path / "x.pem")).upload(iter([b"x"]), "rw-dry/a-other")
    EncryptedOSSHook("oss_v4", cmk=rsa_ref).upload(iter([b"y"]), "rw-dry/b")
    code = main(
        [
            "rewrap",
            f"oss://{BUCKET}/rw-dry/",
            "--cmk",
            other_rsa_ref,
            "--decrypt-cmk",
            rsa_ref,
            "--dry-run",
            *["--oss-conn-id", "oss_v4"],
        ]
    )
    lines = capfd.readouterr().out.strip().splitlines()
    assert code == 0
    assert lines[1] == f"would-rewrap oss://{BUCKET}/rw-dry/b: {rsa_ref} -> {other_rsa_ref}"
    assert lines[-1] == "1 would be rewrapped, 0 already current, 1 skipped, 0 failed"
    assert EncryptedOSSHook("oss_v4", cmk=rsa_ref).read("rw-dry/b") == b"y"  # untouched


def test_rewrap_of_an_empty_prefix_says_so_prints_the_zero_summary_and_exits_zero(
    oss_env: Any, other_rsa_ref: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code = main(["rewrap", f"oss://{BUCKET}/rw-nothing-here/", "--cmk", other_rsa_ref, "--oss-conn-id", "oss_v4"])
    out, err = capfd.readouterr()
    assert code == 0 and out == "0 rewrapped, 0 already current, 0 skipped, 0 failed\n"
    assert f"no objects under oss://{BUCKET}/rw-nothing-here/" in err


def test_rewrap_between_transit_keys_shows_the_cmk_and_version_change(
    oss_env: Any, transit_ref: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    key_a, key_b = transit_ref("cli-rw-a"), transit_ref("cli-rw-b")
    transit_ref.client.secrets.transit.rotate_key("cli-rw-b")
    EncryptedOSSHook("oss_v4", cmk=key_a).upload(iter([b"t"]), "rw-transit/o")
    code = main(
        ["rewrap", f"oss://{BUCKET}/rw-transit/o", "--cmk", key_b, "--decrypt-cmk", key_a, "--oss-conn-id", "oss_v4"]
    )
    out = capfd.readouterr().out.strip().splitlines()
    assert code == 0
    assert out == [
        f"rewrapped oss://{BUCKET}/rw-transit/o: {key_a} v1 -> {key_b} v2",
        "1 rewrapped, 0 already current, 0 skipped, 0 failed",
    ]
