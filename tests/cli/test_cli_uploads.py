"""``osscse uploads``: what is in progress under a prefix, whose it is, and ``--abort`` of only ours.

The uploads are left in progress with plain oss2, as each party leaves them: this provider's carry
its marker part (number 10,000, the body of their purpose, as ``run_multipart`` sends it first),
another client's do not. The uploads killed runs really leave are in
``test_abandoned_uploads_after_kill.py``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_provider_osscse.cli import main
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from tests.upload_cleanup import start_upload, uploads_aborted_after

from .conftest import BUCKET


@pytest.fixture
def prefix(oss_env: Any) -> Iterator[str]:
    name = f"cli-uploads/{uuid.uuid4().hex[:8]}/"
    with uploads_aborted_after(oss_env, EncryptedOSSHook("oss_v4").get_bucket(), name):
        yield name


@pytest.fixture
def started(oss_env: Any, prefix: str) -> dict[str, str]:
    """``a-put`` and ``b-rewrap`` of this provider, ``c-theirs`` of another client: name -> upload id."""
    bucket = EncryptedOSSHook("oss_v4").get_bucket()
    return {
        name: start_upload(bucket, f"{prefix}{name}", purpose)
        for name, purpose in (("a-put", "put"), ("b-rewrap", "rewrap"), ("c-theirs", None))
    }


def _run(capfd: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["uploads", *args, "--oss-conn-id", "oss_v4"])
    out, err = capfd.readouterr()
    return code, out.splitlines(), err


def _left(oss_env: Any, prefix: str) -> list[str]:
    return sorted(u.key for u in oss_env.list_multipart_uploads(BUCKET) if u.key.startswith(prefix))


def test_uploads_lists_ours_with_purpose_and_idle_time_and_others_as_not_ours(
    oss_env: Any, prefix: str, started: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = _run(capfd, f"oss://{BUCKET}/{prefix}")
    assert code == 0
    uri = f"oss://{BUCKET}/{prefix}"
    pattern = r"^(put|rewrap|not-ours) +(\d+s|\d+m\d\ds) +(\S+) +(\S+)$"
    rows = [re.match(pattern, line) for line in lines[:-1]]
    assert all(rows), lines
    assert [(m[1], m[3], m[4]) for m in rows if m] == [
        ("put", f"{uri}a-put", started["a-put"]),
        ("rewrap", f"{uri}b-rewrap", started["b-rewrap"]),
        ("not-ours", f"{uri}c-theirs", started["c-theirs"]),
    ]
    assert lines[-1] == "3 in progress: 2 ours (1 put, 1 rewrap), 1 not ours"
    assert len(_left(oss_env, prefix)) == 3, "listing aborts nothing"


def test_uploads_abort_aborts_only_ours_idle_long_enough_and_reports_each(
    oss_env: Any, prefix: str, started: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    uri = f"oss://{BUCKET}/{prefix}"
    code, lines, _ = _run(capfd, f"oss://{BUCKET}/{prefix}", "--abort")  # default --older-than 1h
    assert code == 0
    assert lines[0].startswith(f"kept {uri}a-put: put upload {started['a-put']}, idle ")
    assert lines[0].endswith("(less than --older-than 1h00m)")
    assert lines[2].startswith(f"not-ours {uri}c-theirs: upload {started['c-theirs']}, initiated ")
    assert lines[2].endswith("Z (never aborted)")
    assert lines[-1] == "0 aborted, 2 kept, 1 not ours, 0 gone, 0 failed"

    code, lines, _ = _run(capfd, f"oss://{BUCKET}/{prefix}", "--abort", "--older-than", "0s")
    assert code == 0
    assert lines[0].startswith(f"aborted {uri}a-put: put upload {started['a-put']}, idle ")
    assert lines[1].startswith(f"aborted {uri}b-rewrap: rewrap upload {started['b-rewrap']}, idle ")
    assert lines[-1] == "2 aborted, 0 kept, 1 not ours, 0 gone, 0 failed"
    assert _left(oss_env, prefix) == [f"{prefix}c-theirs"], "another client's upload is never aborted"


def test_uploads_json_prints_one_document_per_upload_and_the_summary_on_stderr(
    oss_env: Any, prefix: str, started: dict[str, str], capfd: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = _run(capfd, f"oss://{BUCKET}/{prefix}", "--json")
    assert code == 0
    documents = [json.loads(line) for line in lines]
    assert [(d["key"], d["ours"], d["purpose"], d["upload_id"]) for d in documents] == [
        (f"{prefix}a-put", True, "put", started["a-put"]),
        (f"{prefix}b-rewrap", True, "rewrap", started["b-rewrap"]),
        (f"{prefix}c-theirs", False, None, started["c-theirs"]),
    ]
    assert documents[0]["parts"] == 1 and documents[0]["initiated"].endswith("Z")
    assert "3 in progress: 2 ours (1 put, 1 rewrap), 1 not ours" in err

    code, lines, _ = _run(capfd, f"oss://{BUCKET}/{prefix}", "--json", "--abort", "--older-than", "0")
    assert [json.loads(line)["status"] for line in lines] == ["aborted", "aborted", "not-ours"]


def test_uploads_of_a_prefix_with_none_prints_the_zero_summary(
    oss_env: Any, prefix: str, capfd: pytest.CaptureFixture[str]
) -> None:
    assert _run(capfd, f"oss://{BUCKET}/{prefix}") == (0, ["0 in progress: 0 ours, 0 not ours"], "")


def test_uploads_older_than_without_abort_is_a_usage_error(
    oss_env: Any, prefix: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code, lines, err = _run(capfd, f"oss://{BUCKET}/{prefix}", "--older-than", "2h")
    assert (code, lines) == (2, [])
    assert "--older-than chooses which uploads --abort aborts; add --abort" in err


def test_uploads_malformed_older_than_is_a_usage_error_naming_the_forms(
    oss_env: Any, prefix: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["uploads", f"oss://{BUCKET}/{prefix}", "--abort", "--older-than", "two hours"])
    assert exited.value.code == 2
    assert "expected a duration like 30m, 2h" in capfd.readouterr().err


def test_uploads_help_explains_the_marker_and_the_safe_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["uploads", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "never aborted" in text and "default 1h" in text and "marker part" in text
    assert "osscse uploads oss://my-bucket/ --abort --older-than 2h" in text
