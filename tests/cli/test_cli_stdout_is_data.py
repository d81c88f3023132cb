"""Issue 11: ``osscse``'s stdout is data, every other line goes to stderr, ``-q``/``-v`` set how much.

Observed before the change (the real console script in a child process): Airflow's ``Skipping masking
for a secret as it's too short`` (the docs' short example credentials), transfer progress and oss2's
``[info] Exception: {...}`` lines on stdout, so ``osscse inspect ... --json | python3 -c 'json.load'``
failed with ``Extra data``; ``get`` printed its result on stderr. Every test here runs the installed
``osscse`` in a child process, so what reaches file descriptor 1 is exactly what a pipe would get.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.cli.cli_process import osscse
from tests.cli.conftest import BUCKET

MIB = 2**20


@pytest.fixture
def prefix() -> str:
    return f"cli-stdout/{uuid.uuid4().hex}/"


@pytest.fixture
def uri_conn(oss_env: Any) -> dict[str, str]:
    """The test bucket's connection in Airflow's URI form, which ``osscse`` leaves to Airflow itself
    (the slow path: Airflow's logging and masker active; the masker warns that ``AK`` is too short)."""
    conn = json.loads(os.environ["AIRFLOW_CONN_OSS_V4"])
    return {"AIRFLOW_CONN_OSS_URI": f"oss://localhost/{conn['schema']}?{urlencode(conn['extra'])}"}


def put(src: Path, uri: str, cmk: str, *extra: str, env: dict[str, str] | None = None) -> Any:
    return osscse("put", str(src), uri, "--cmk", cmk, "--oss-conn-id", "oss_v4", *extra, env=env)


def test_every_command_prints_only_its_result_on_stdout(
    oss_env: Any, rsa_ref: str, tmp_path: Path, prefix: str
) -> None:
    src = tmp_path / "report.csv"
    src.write_bytes(b"id,amount\n1,10\n")
    uri = f"oss://{BUCKET}/{prefix}report.csv"
    conn = ("--oss-conn-id", "oss_v4")

    done = put(src, uri, rsa_ref)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{uri}\n".encode()

    got = osscse("get", uri, str(tmp_path / "out.csv"), "--cmk", rsa_ref, *conn)
    assert got.returncode == 0, got.stderr
    assert got.stdout == f"{tmp_path / 'out.csv'} (15 bytes, integrity verified)\n".encode()

    cat = osscse("cat", uri, "--cmk", rsa_ref, *conn)
    assert cat.returncode == 0 and cat.stdout == src.read_bytes(), cat.stderr
    assert b"15 bytes, integrity verified" in cat.stderr  # the note is on stderr, after the data

    listed = osscse("ls", f"oss://{BUCKET}/{prefix}", *conn)
    assert listed.stdout == f"{uri}\n".encode()
    long = osscse("ls", "-l", f"oss://{BUCKET}/{prefix}", *conn)
    assert long.stdout.decode().split()[-1] == uri and long.stdout.count(b"\n") == 1

    inspected = osscse("inspect", uri, "--json", *conn)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["cmk"].startswith("rsa-sha256:")  # the whole of stdout is one document


def test_stdout_stays_data_when_airflow_reads_the_connection_and_logs(
    oss_env: Any, uri_conn: dict[str, str], rsa_ref: str, tmp_path: Path, prefix: str
) -> None:
    """A URI connection is read by Airflow itself: its logging (masker warnings included) goes to stderr."""
    src = tmp_path / "a.bin"
    src.write_bytes(os.urandom(1000))
    uri = f"oss://{BUCKET}/{prefix}a.bin"
    assert put(src, uri, rsa_ref).returncode == 0

    inspected = osscse("inspect", uri, "--json", "--oss-conn-id", "oss_uri", env=uri_conn)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["plaintext_size"] == 1000
    cat = osscse("cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_uri", env=uri_conn)
    assert cat.returncode == 0 and cat.stdout == src.read_bytes(), cat.stderr


def test_progress_is_an_info_record_on_stderr_shown_with_verbose_only(
    oss_env: Any, rsa_ref: str, tmp_path: Path, prefix: str
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(9 * MIB))  # above the 8 MiB from which transfers report progress
    uri = f"oss://{BUCKET}/{prefix}big.bin"

    assert put(src, uri, rsa_ref).returncode == 0
    get = ("get", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4", "--force")

    verbose = osscse(*get[:2], str(tmp_path / "v.bin"), *get[2:], "-v")
    assert verbose.returncode == 0, verbose.stderr
    assert verbose.stdout.endswith(b"(9437184 bytes, integrity verified)\n") and verbose.stdout.count(b"\n") == 1
    assert b"INFO" in verbose.stderr and b"MiB" in verbose.stderr

    default = osscse(*get[:2], str(tmp_path / "d.bin"), *get[2:])
    assert default.returncode == 0 and default.stdout.count(b"\n") == 1
    assert b"INFO" not in default.stderr


def test_quiet_leaves_stderr_empty_on_success_but_never_hides_errors(
    oss_env: Any, rsa_ref: str, tmp_path: Path, prefix: str
) -> None:
    src = tmp_path / "q.txt"
    src.write_bytes(b"quiet")
    uri = f"oss://{BUCKET}/{prefix}q.txt"
    assert put(src, uri, rsa_ref, "-q").stderr == b""
    cat = osscse("cat", uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4", "-q")
    assert (cat.returncode, cat.stdout, cat.stderr) == (0, b"quiet", b"")

    missing = osscse("cat", f"{uri}.missing", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4", "-q")
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr.count(b"\n") == 1 and missing.stderr.startswith(b"osscse: ")


def test_quiet_and_verbose_together_are_a_usage_error(oss_env: Any) -> None:
    both = osscse("ls", f"oss://{BUCKET}/", "-q", "-v")
    assert both.returncode == 2 and both.stdout == b"" and b"not allowed with argument" in both.stderr


def test_cat_into_a_closed_pipe_ends_quietly(oss_env: Any, rsa_ref: str, tmp_path: Path, prefix: str) -> None:
    """``osscse cat ... | head -c 10``: the reader leaves early; no traceback, exit 141 like a shell's SIGPIPE."""
    import subprocess

    from tests.cli.cli_process import OSSCSE

    src = tmp_path / "long.bin"
    src.write_bytes(os.urandom(4 * MIB))
    uri = f"oss://{BUCKET}/{prefix}long.bin"
    assert put(src, uri, rsa_ref).returncode == 0
    pipeline = subprocess.run(
        f"'{OSSCSE}' cat '{uri}' --cmk '{rsa_ref}' --oss-conn-id oss_v4 | head -c 10 >/dev/null; "
        'echo "status ${PIPESTATUS[0]}"',
        shell=True,
        executable="/bin/bash",
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert pipeline.stdout.strip() == b"status 141", pipeline.stderr
    assert b"Traceback" not in pipeline.stderr
