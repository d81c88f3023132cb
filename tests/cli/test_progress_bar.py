"""``osscse put`` draws its (rich) progress bar on stderr only when stderr is a terminal.

The TTY case runs the real command in a subprocess whose stderr is the slave side of a
pseudo-terminal (``os.openpty``), so ``sys.stderr.isatty()`` is genuinely true there. The upload is
just above the hook's default 32 MiB multipart threshold: the CLI exposes no part-size option, and
single PUTs report no progress. The bar is rich's: ANSI colour and line-erase sequences around each
redraw, which are stripped before the redraws are matched.
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
#: ANSI control sequences (colours, erase line, cursor hide/show) that rich writes to a terminal.
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: One redraw of the bar: label (shortened with "…" in a narrow terminal), bar glyphs, done/total
#: size, percent, transfer rate.
BAR = re.compile(r"\rupload oss://\S+ +[\u2500-\u257f]+ [\d.]+/[\d.]+ [kMGT]?B +(\d+)% +[\d.]+ [kMGT]?B/s")


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
            [
                sys.executable,
                "-m",
                "airflow_provider_osscse.cli",
                "put",
                str(large_file),
                f"oss://{BUCKET}/cli-progress/tty.bin",
                "--cmk",
                rsa_ref,
                "--oss-conn-id",
                "oss_v4",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            env=dict(os.environ),
            timeout=120,
            check=False,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    raw = captured.decode("utf-8", "replace")
    text = ANSI.sub("", raw)
    assert process.returncode == 0, text[-2000:]
    assert process.stdout.decode().strip().endswith(f"oss://{BUCKET}/cli-progress/tty.bin")
    percents = [int(p) for p in BAR.findall(text)]
    assert percents, text[-2000:]
    assert percents[-1] == 100 and percents == sorted(percents)  # redrawn as it goes, ends complete
    assert text.rstrip(" ").endswith("\n")  # close() ends the bar's line
    assert raw.endswith("\x1b[?25h")  # and shows the cursor rich hid while drawing


def test_put_draws_no_bar_when_stderr_is_not_a_terminal(
    oss_env: Any, rsa_ref: str, large_file: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    assert not sys.stderr.isatty()
    uri = f"oss://{BUCKET}/cli-progress/pipe.bin"
    assert main(["put", str(large_file), uri, "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]) == 0
    captured = capfd.readouterr()
    assert uri in captured.out
    for stream in (captured.err, captured.out):
        assert "\x1b[" not in stream and not BAR.search(stream)
