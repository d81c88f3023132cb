"""Issue 11: ``osscse``'s exit status says what kind of failure it was (docs/cli.md, "Exit status").

0 done; 1 an expected failure in one line; 2 a usage error; 130 interrupted, leaving nothing behind
(no partial file, no orphaned multipart upload). Observed before the change: ``put f oss://bucket``
(no key) was exit 1 with an oss2 dict instead of a usage error. Each case runs the installed console
script in a child process; the interruption is a real SIGINT, as Ctrl-C sends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_process import OSSCSE, osscse
from tests.cli.conftest import BUCKET

MIB = 2**20


@pytest.fixture
def prefix() -> str:
    return f"cli-exit/{uuid.uuid4().hex}/"


@pytest.mark.parametrize(
    "argv",
    [
        ["put", "f.txt", f"oss://{BUCKET}", "--cmk", "rsa-file:///k.pem"],
        ["put", "f.txt", f"oss://{BUCKET}/dir/", "--cmk", "rsa-file:///k.pem"],
        ["cat", "s3://bucket/key"],
        ["inspect"],
        ["ls", f"oss://{BUCKET}/", "--no-such-option"],
    ],
    ids=["put-without-key", "put-to-a-prefix", "not-an-oss-uri", "missing-argument", "unknown-option"],
)
def test_usage_errors_exit_2_before_touching_anything(argv: list[str], oss_env: Any, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"x")
    done = osscse(*argv, "--oss-conn-id", "oss_v4", cwd=tmp_path) if argv[0] != "ls" else osscse(*argv)
    assert done.returncode == 2, done.stderr
    assert done.stdout == b"" and b"Traceback" not in done.stderr and b"{" not in done.stderr


def test_a_runtime_failure_exits_1_in_one_line(oss_env: Any, rsa_ref: str, prefix: str) -> None:
    done = osscse("cat", f"oss://{BUCKET}/{prefix}missing", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4")
    assert done.returncode == 1 and done.stdout == b""
    assert done.stderr.count(b"\n") == 1 and b"Traceback" not in done.stderr


def interrupt_when_progress_shows(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    """Start ``osscse ARGV -v``, send SIGINT once its first progress line is on stderr, wait for it."""
    proc = subprocess.Popen([OSSCSE, *argv, "-v"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"MiB" not in seen and time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, seen + err)


def test_ctrl_c_during_a_multipart_put_exits_130_and_leaves_no_upload_behind(
    oss_env: Any, rsa_ref: str, tmp_path: Path, prefix: str
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(96 * MIB))  # multipart from 32 MiB
    key = f"{prefix}big.bin"
    done = interrupt_when_progress_shows(
        ["put", str(src), f"oss://{BUCKET}/{key}", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]
    )
    assert done.returncode == 130, done.stderr.decode()[-2000:]
    assert done.stderr.rstrip().endswith(b"osscse: interrupted") and b"Traceback" not in done.stderr
    assert done.stdout == b""
    assert [u for u in oss_env.list_multipart_uploads(BUCKET) if u.key == key] == []
    assert osscse("ls", f"oss://{BUCKET}/{prefix}", "--oss-conn-id", "oss_v4").stdout == b""


def test_ctrl_c_during_a_get_exits_130_and_leaves_no_file(
    oss_env: Any, rsa_ref: str, tmp_path: Path, prefix: str
) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(64 * MIB))
    uri = f"oss://{BUCKET}/{prefix}big.bin"
    assert osscse("put", str(src), uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4").returncode == 0
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    done = interrupt_when_progress_shows(["get", uri, str(out_dir), "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"])
    assert done.returncode == 130, done.stderr.decode()[-2000:]
    assert list(out_dir.iterdir()) == []  # neither the file nor a temporary name
