"""``ls -l`` and ``inspect`` describe objects from their headers: sizes, CMK, tag, user metadata."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_provider_osscse.cli import main

from .conftest import BUCKET

CONN = ["--oss-conn-id", "oss_v4"]


def _put_objects(rsa_ref: str) -> None:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    bound = EncryptedOSSHook("oss_v4", cmk=rsa_ref)
    bound.upload(iter([b"x" * 1234]), "ls-long/bound.bin")
    EncryptedOSSHook("oss_v4", cmk=rsa_ref, bind_integrity_tag=False).upload(iter([b"y" * 10]), "ls-long/unbound")
    bound.get_bucket().put_object("ls-long/plain.txt", b"plain text")  # a plaintext object, as other tools write


def test_ls_long_prints_size_encryption_cmk_version_and_tag_per_object(
    oss_env: Any, rsa_ref: str, capfd: pytest.CaptureFixture[str]
) -> None:
    _put_objects(rsa_ref)
    capfd.readouterr()
    assert main(["ls", "-l", f"oss://{BUCKET}/ls-long/", *CONN]) == 0
    lines = {line.split()[-1]: line.split() for line in capfd.readouterr().out.splitlines()}
    assert len(lines) == 3
    size, encrypted, cmk, _version, tag, _ = lines[f"oss://{BUCKET}/ls-long/bound.bin"]
    assert (size, encrypted, tag) == ("1234", "yes", "bound") and cmk.startswith("rsa-sha256:")
    assert lines[f"oss://{BUCKET}/ls-long/unbound"][4] == "unbound"
    assert lines[f"oss://{BUCKET}/ls-long/plain.txt"] == [
        "10",
        "no",
        "-",
        "-",
        "none",
        f"oss://{BUCKET}/ls-long/plain.txt",
    ]


def test_ls_without_long_still_prints_uris_only(oss_env: Any, rsa_ref: str, capfd: pytest.CaptureFixture[str]) -> None:
    _put_objects(rsa_ref)
    capfd.readouterr()
    assert main(["ls", f"oss://{BUCKET}/ls-long/", *CONN]) == 0
    assert all(line.startswith("oss://") and " " not in line for line in capfd.readouterr().out.splitlines())


def test_inspect_json_shows_user_metadata_content_type_and_matdesc(
    oss_env: Any, rsa_ref: str, tmp_path: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "report.csv"
    src.write_bytes(b"a,b\n1,2\n")
    uri = f"oss://{BUCKET}/inspect/report.csv"
    put = ["put", str(src), uri, "--cmk", rsa_ref, "--meta", "owner=ana", "--content-type", "text/csv"]
    assert main([*put, "--matdesc", "team=orders", *CONN]) == 0
    capfd.readouterr()
    assert main(["inspect", uri, "--json", *CONN]) == 0
    info = json.loads(capfd.readouterr().out)
    assert info["user_metadata"] == {"owner": "ana"}  # no client-side-encryption-* / osscse-* headers
    assert info["content_type"] == "text/csv"
    assert info["matdesc"] == {"team": "orders"}


def test_inspect_text_prints_matdesc_and_user_metadata_as_json(
    oss_env: Any, rsa_ref: str, tmp_path: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "report.csv"
    src.write_bytes(b"a,b\n")
    uri = f"oss://{BUCKET}/inspect/text.csv"
    assert main(["put", str(src), uri, "--cmk", rsa_ref, "--meta", "owner=ana", "--matdesc", "team=orders", *CONN]) == 0
    capfd.readouterr()
    assert main(["inspect", uri, *CONN]) == 0
    rows = dict(line.split(None, 1) for line in capfd.readouterr().out.splitlines())
    assert json.loads(rows["matdesc"]) == {"team": "orders"}
    assert json.loads(rows["user_metadata"]) == {"owner": "ana"}
    assert rows["content_type"] == "application/octet-stream"


def test_ls_long_reports_an_unreadable_envelope_on_stderr_and_lists_the_rest(
    oss_env: Any, rsa_ref: str, capfd: pytest.CaptureFixture[str]
) -> None:
    from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook

    hook = EncryptedOSSHook("oss_v4", cmk=rsa_ref)
    hook.upload(iter([b"fine"]), "ls-broken/good")
    bucket = hook.get_bucket()
    # A valid envelope over a body of another length: its length headers contradict the stored size.
    headers = {
        k: v for k, v in bucket.head_object("ls-broken/good").headers.items() if k.lower().startswith("x-oss-meta-")
    }
    bucket.put_object("ls-broken/bad", b"a longer body than the headers say", headers=headers)
    capfd.readouterr()
    assert main(["ls", "-l", f"oss://{BUCKET}/ls-broken/", *CONN]) == 1
    out, err = capfd.readouterr()
    assert f"oss://{BUCKET}/ls-broken/good" in out and "ls-broken/bad" not in out
    assert f"oss://{BUCKET}/ls-broken/bad" in err and "Traceback" not in err
