"""``osscse put`` draws its progress bar on stderr only when stderr is a terminal.

The TTY case runs the real command in a subprocess whose stderr is the slave side of a
pseudo-terminal (``os.openpty``), so ``sys.stderr.isatty()`` is genuinely true there. The upload is
just above the hook's default 32 MiB multipart threshold: the CLI exposes no part-size option, and
single PUTs report no progress.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main

from .conftest import BUCKET

MIB = 2**20
#: Just over EncryptedOSSHook's default multipart_threshold (32 MiB), so the upload is multipart.
LARGE = 32 * MIB + 4096
BAR = re.compile(r"\r\[#*\s*\] upload oss://\S+: [\d.]+ \w+/[\d.]+ MiB \(\d+%\) at ")


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "large.bin"
    with path.open("wb") as handle:
        for _ in range(LARGE // MIB):
            handle.write(os.urandom(MIB))
        handle.write(os.urandom(LARGE % MIB))
    return path


def _drain(fd: int, sink: bytearray) -> None:
    """Read the pty master until the slave side is closed (EIO), so the child never blocks on a full pty."""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return
        if not chunk:
            return
        sink += chunk


def test_put_draws_a_progress_bar_when_stderr_is_a_terminal(oss_env: Any, rsa_ref: str, large_file: Path) -> None:
    master, slave = os.openpty()
    captured = bytearray()
    reader = threading.Thread(target=_drain, args=(master, captured), daemon=True)
    reader.start()
    try:
        process = subprocess.run(
            [sys.executable, "-m", "airflow_provider_osscse.cli", "put", str(large_file),
             f"oss://{BUCKET}/cli-progress/tty.bin", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=dict(os.environ), timeout=120,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    text = captured.decode("utf-8", "replace")
    assert process.returncode == 0, text[-2000:]
    assert process.stdout.decode().strip().endswith(f"oss://{BUCKET}/cli-progress/tty.bin")
    bars = BAR.findall(text)
    assert bars, text[-2000:]
    assert text.rstrip(" ").endswith("\n")  # close() ends the bar's line


def test_put_draws_no_bar_when_stderr_is_not_a_terminal(oss_env: Any, rsa_ref: str, large_file: Path,
                                                         capfd: pytest.CaptureFixture[str]) -> None:
    assert not sys.stderr.isatty()
    uri = f"oss://{BUCKET}/cli-progress/pipe.bin"
    assert main(["put", str(large_file), uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 0
    captured = capfd.readouterr()
    assert uri in captured.out
    assert "\r[" not in captured.err and "\r[" not in captured.out
