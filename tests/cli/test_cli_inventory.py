"""``osscse inventory`` and ``osscse inspect`` of a prefix (issues 13 and 14): one line per object on
stdout, streamed from the hook's inventory (concurrent HEADs, one process for the whole prefix),
the summary with ``--summary``, people's lines on stderr, and the exit status of ``ls -l``.

Before: ``inventory`` did not exist, and ``inspect oss://bucket/prefix/`` was a usage error (exit 2),
so inspecting a prefix took one process per object.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_osscse.cli import main
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from tests.cli.cli_process import osscse

from .conftest import BUCKET

CONN = ["--oss-conn-id", "oss_v4"]


@pytest.fixture
def prefix(make_hook: Callable[..., EncryptedOSSHook]) -> str:
    """A prefix holding two encrypted objects (bound and unbound tag) and one plaintext object."""
    name = f"cli-inventory/{uuid.uuid4().hex[:10]}/"
    make_hook().upload(iter([b"a" * 100]), f"{name}a.bin")
    make_hook(bind_integrity_tag=False).upload(iter([b"b" * 20]), f"{name}b.bin")
    make_hook().get_bucket().put_object(f"{name}c.txt", b"plain", headers={"Content-Type": "text/plain"})
    return name


def test_inventory_streams_one_json_line_per_object_on_stdout_and_the_tally_on_stderr(
    prefix: str, make_hook: Callable[..., EncryptedOSSHook]
) -> None:
    done = osscse("inventory", f"oss://{BUCKET}/{prefix}", *CONN)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert [r["key"] for r in records] == [f"{prefix}a.bin", f"{prefix}b.bin", f"{prefix}c.txt"]
    identity = make_hook().inspect(f"{prefix}a.bin").cmk
    assert [(r["encrypted"], r["cmk"], r["integrity_tag"], r["size"]) for r in records] == [
        (True, identity, "bound", 100),
        (True, identity, "unbound", 20),
        (False, None, "absent", 5),
    ]
    assert records[2]["content_type"] == "text/plain" and records[0]["last_modified"].endswith("Z")
    err = done.stderr.decode()
    assert "3 objects: 2 encrypted (0 untagged, 1 unbound tag), 1 plaintext, 0 errors" in err
    assert "Traceback" not in err


def test_inventory_csv_has_a_header_and_one_row_per_object(prefix: str, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    assert main(["inventory", f"oss://{BUCKET}/{prefix}", "--format", "csv", "--concurrency", "2", *CONN]) == 0
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    assert [(r["key"].removeprefix(prefix), r["encrypted"], r["integrity_tag"]) for r in rows] == [
        ("a.bin", "true", "bound"),
        ("b.bin", "true", "unbound"),
        ("c.txt", "false", "absent"),
    ]


def test_inventory_summary_prints_only_the_summary_as_json_or_csv(
    prefix: str, make_hook: Callable[..., EncryptedOSSHook], capfd: pytest.CaptureFixture[str]
) -> None:
    identity = make_hook().inspect(f"{prefix}a.bin").cmk
    capfd.readouterr()
    assert main(["inventory", f"oss://{BUCKET}/{prefix}", "--summary", *CONN]) == 0
    summary = json.loads(capfd.readouterr().out)  # the whole of stdout is one JSON document
    assert (summary["bucket"], summary["prefix"]) == (BUCKET, prefix)
    assert summary["encrypted"] == {"objects": 2, "bytes": 120} and summary["plaintext"] == {"objects": 1, "bytes": 5}
    assert summary["unbound"] == {"objects": 1, "bytes": 20} and summary["untagged"]["objects"] == 0
    assert summary["by_cmk"] == {
        identity: {"objects": 2, "bytes": 120, "versions": {"-": {"objects": 2, "bytes": 120}}}
    }

    argv = ["inventory", f"oss://{BUCKET}/{prefix}", "--summary", "--format", "csv"]
    assert main([*argv, "--current-version", f"{identity}=1", *CONN]) == 0
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    by_measure = {(r["measure"], r["cmk"], r["key_version"]): (r["objects"], r["bytes"]) for r in rows}
    assert by_measure[("all", "", "")] == ("3", "125")
    assert by_measure[("stale", "", "")] == ("2", "120")  # the RSA CMK names no version: not the current one
    assert by_measure[("cmk_version", identity, "-")] == ("2", "120")


def test_an_unreadable_object_is_a_record_with_its_error_the_rest_listed_and_exit_1(
    prefix: str, make_hook: Callable[..., EncryptedOSSHook], capfd: pytest.CaptureFixture[str]
) -> None:
    bucket = make_hook().get_bucket()
    headers = {
        k: v for k, v in bucket.head_object(f"{prefix}a.bin").headers.items() if k.lower().startswith("x-oss-meta-")
    }
    bucket.put_object(f"{prefix}bad.bin", b"not the length the headers say", headers=headers)
    capfd.readouterr()
    assert main(["inventory", f"oss://{BUCKET}/{prefix}", *CONN]) == 1
    out, err = capfd.readouterr()
    records = {json.loads(line)["key"].removeprefix(prefix): json.loads(line) for line in out.splitlines()}
    assert set(records) == {"a.bin", "b.bin", "bad.bin", "c.txt"}
    assert records["bad.bin"]["error"].startswith("EnvelopeFormatError: ") and records["a.bin"]["error"] is None
    assert f"oss://{BUCKET}/{prefix}bad.bin: EnvelopeFormatError" in err and "1 errors" in err


def test_inspect_of_a_prefix_prints_each_objects_inspect_json_on_one_line(
    prefix: str, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    done = osscse("inspect", f"oss://{BUCKET}/{prefix}", "--json", *CONN)  # one process for the whole prefix
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == 3
    for line in lines:
        info = json.loads(line)
        assert main(["inspect", info["uri"], "--json", *CONN]) == 0
        assert json.loads(capfd.readouterr().out) == info  # the single-object document, on one line


def test_inspect_of_a_prefix_without_json_prints_the_ls_long_lines(
    prefix: str, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    assert main(["ls", "-l", f"oss://{BUCKET}/{prefix}", *CONN]) == 0
    listed = capfd.readouterr().out
    assert main(["inspect", f"oss://{BUCKET}/{prefix}", *CONN]) == 0
    assert capfd.readouterr().out == listed and len(listed.splitlines()) == 3


def test_inspect_of_an_empty_prefix_says_so_on_stderr_and_exits_0(
    oss_env: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    assert main(["inspect", f"oss://{BUCKET}/cli-inventory/nothing-{uuid.uuid4().hex}/", *CONN]) == 0
    out, err = capfd.readouterr()
    assert out == "" and "no objects under" in err


@pytest.mark.parametrize(
    "extra",
    [["--concurrency", "0"], ["--concurrency", "65"], ["--concurrency", "many"], ["--current-version", "no-equals"]],
    ids=["zero", "too-many", "not-a-number", "policy-without-version"],
)
def test_inventory_usage_errors_exit_2(extra: list[str], capfd: pytest.CaptureFixture[str]) -> None:
    code: int | str | None
    try:
        code = main(["inventory", f"oss://{BUCKET}/x/", *extra, *CONN])
    except SystemExit as exited:  # argparse's usage errors
        code = exited.code
    assert code == 2
    out, err = capfd.readouterr()
    assert out == "" and "Traceback" not in err


def test_a_missing_bucket_is_one_line_on_stderr_with_nothing_on_stdout(
    oss_env: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()
    assert main(["inventory", "oss://no-such-bucket-inventory/", "--format", "csv", *CONN]) == 1
    out, err = capfd.readouterr()
    assert out == "" and err.count("\n") == 1 and "BucketNotFoundError" in err


def test_an_empty_prefix_in_csv_is_the_header_alone(oss_env: Any, capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    assert main(["inventory", f"oss://{BUCKET}/cli-inventory/none-{uuid.uuid4().hex}/", "--format", "csv", *CONN]) == 0
    assert capfd.readouterr().out.splitlines() == [
        "bucket,key,size,last_modified,encrypted,wrap_alg,cmk,key_version,integrity_tag,content_type,matdesc,error"
    ]


def test_inventory_csv_cells_a_spreadsheet_would_evaluate_open_as_text(
    oss_env: Any, make_hook: Callable[..., EncryptedOSSHook], capfd: pytest.CaptureFixture[str]
) -> None:
    """Object keys are chosen by whoever may write to the bucket; a key like ``=HYPERLINK(...)`` must
    not become a live formula in the auditor's spreadsheet (CSV injection). JSON lines keep it as is."""
    key = f"=HYPERLINK(1)-{uuid.uuid4().hex[:10]}"
    make_hook().get_bucket().put_object(key, b"plain")
    capfd.readouterr()
    assert main(["inventory", f"oss://{BUCKET}/{key}", "--format", "csv", *CONN]) == 0
    rows = list(csv.DictReader(io.StringIO(capfd.readouterr().out)))
    assert [(row["key"], row["key_version"]) for row in rows] == [("'" + key, "")]

    assert main(["inventory", f"oss://{BUCKET}/{key}", *CONN]) == 0
    assert [json.loads(line)["key"] for line in capfd.readouterr().out.splitlines()] == [key]
