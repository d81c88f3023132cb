"""``hook.download`` killed by SIGKILL mid-way (OOM killer, hard task timeout) leaves no plaintext behind.

A child process runs the real hook download against the local OSS server; every ranged GET of the
object is slowed down by an injected server delay, so the child is caught with part of the plaintext
written. The parent sees that plaintext through ``/proc/<pid>/fd`` (so the test cannot pass without
the crash happening mid-write), kills the child, and checks the destination folder.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.transport import atomic_file

from .conftest import KIB

ROOT = Path(__file__).resolve().parents[2]
MARKER = b"CRASH-TEST-PLAINTEXT-"
PART = 64 * KIB
RANGES = 12

CHILD = r"""
import sys
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.transport import atomic_file
if sys.argv[4] == "named":
    atomic_file._USE_O_TMPFILE = False
hook = EncryptedOSSHook("oss_v4", cmk=sys.argv[1], integrity="off", max_workers=1,
                        part_size=int(sys.argv[5]), multipart_threshold=int(sys.argv[5]))
hook.download(sys.argv[2], sys.argv[3])
print("finished", flush=True)
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/fd")


def _plaintext_held(pid: int, folder: Path) -> bool:
    """Whether the process has a file open in ``folder`` that already holds decrypted bytes."""
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return False
    for fd in fds:
        try:
            if (
                os.readlink(fd_dir / fd).startswith(str(folder.resolve()) + "/")
                and MARKER in (fd_dir / fd).read_bytes()
            ):
                return True
        except OSError:
            continue
    return False


def _kill_mid_download(oss_env: Any, rsa_ref: str, key: str, dest: Path, mode: str) -> None:
    oss_env.inject_fault("GET", path_contains=key, action="delay:0.4", times=RANGES * 4)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, rsa_ref, key, str(dest), mode, str(PART)],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not _plaintext_held(child.pid, dest.parent):
            assert child.poll() is None, f"the download ended before it could be killed: {child.communicate()}"
            assert time.monotonic() < deadline, "the child never wrote plaintext"
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
        oss_env.clear_faults()


@pytest.fixture
def uploaded(make_hook: Callable[..., Any]) -> Callable[[str], str]:
    def upload(key: str) -> str:
        line = MARKER + b"0123456789\n"
        data = (line * (RANGES * PART // len(line) + 1))[: RANGES * PART]
        make_hook(part_size=PART, multipart_threshold=PART).upload(io.BytesIO(data), key)
        return key

    return upload


def test_sigkilled_hook_download_leaves_nothing_in_the_destination_folder(
    oss_env: Any, rsa_ref: str, uploaded: Callable[[str], str], tmp_path: Path
) -> None:
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # The same probe atomic_file makes: this crash test needs the O_TMPFILE path it would take.
        if not (atomic_file._USE_O_TMPFILE and atomic_file._tmpfile_links_work(fd, os.fstat(fd).st_dev)):  # noqa: SLF001
            pytest.skip("O_TMPFILE + linkat is not available on this filesystem")
    finally:
        os.close(fd)
    key = uploaded("crash/unnamed.csv")
    (tmp_path / "keep.csv").write_bytes(b"an unrelated file")
    _kill_mid_download(oss_env, rsa_ref, key, tmp_path / "orders.csv", "unnamed")
    assert os.listdir(tmp_path) == ["keep.csv"]


def test_named_fallback_leftover_of_a_killed_hook_download_is_swept_by_the_next_download(
    oss_env: Any,
    rsa_ref: str,
    uploaded: Callable[[str], str],
    make_hook: Callable[..., Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = uploaded("crash/named.csv")
    _kill_mid_download(oss_env, rsa_ref, key, tmp_path / "orders.csv", "named")
    (left,) = os.listdir(tmp_path)
    assert left.endswith(atomic_file.PARTIAL_SUFFIX)  # without O_TMPFILE the crash leaves a partial ...
    monkeypatch.setattr(atomic_file, "_USE_O_TMPFILE", False)
    make_hook().download(key, tmp_path / "again.csv")  # ... which the next download removes
    assert os.listdir(tmp_path) == ["again.csv"]
