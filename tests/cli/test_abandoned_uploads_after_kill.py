"""No multipart upload survives a killed run (issue 14): killed by PID mid-upload, cleaned by the re-run.

``osscse`` runs as a user's shell runs it (a child process) and is killed with SIGKILL while one of
its multipart uploads is between InitiateMultipartUpload and Complete: no clean-up code runs, and the
upload is left in the local OSS server. The window is made certain with the server's fault
injection: one UploadPartCopy (or UploadPart) of the upload is answered only after a delay, so
Complete cannot come before the kill. The kill is sent once the server holds a data part of the
upload (``list_multipart_uploads``), which the provider sends only after its marker part.

A prefix rewrap re-run aborts the rewrap upload its killed predecessor left in its range, says so,
and finishes every object. A killed ``put`` leaves an upload marked ``put``, which ``osscse uploads``
lists as this provider's and ``osscse uploads --abort`` aborts.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.transport.copy_rewrap import REWRAP_BY_PUT_LIMIT
from tests.upload_cleanup import uploads_aborted_after

from .cli_process import OSSCSE, osscse
from .conftest import BUCKET, PART

#: Long enough that Complete cannot come before the kill; the server thread answers a dead socket after.
HOLD = "delay:5"


@pytest.fixture(autouse=True)
def _no_faults_left(oss_env: Any) -> Iterator[None]:
    yield
    oss_env.clear_faults()


@pytest.fixture
def prefix(oss_env: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"killed-{request.node.name[5:20]}/{uuid.uuid4().hex[:8]}/"
    with uploads_aborted_after(oss_env, EncryptedOSSHook("oss_v4").get_bucket(), name):  # a failed test's
        yield name


def _uploads(oss_env: Any, key_or_prefix: str) -> list[Any]:
    return [u for u in oss_env.list_multipart_uploads(BUCKET) if u.key.startswith(key_or_prefix)]


def _kill_once_a_data_part_is_stored(oss_env: Any, args: list[str], key: str, prefix: str) -> dict[str, str]:
    """Start ``osscse ARGS``, SIGKILL it once an upload of ``key`` holds a data part; the uploads left
    under ``prefix`` (object key -> upload id), that one among them."""
    process = subprocess.Popen([OSSCSE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not any(n < 10_000 for u in _uploads(oss_env, key) if u.key == key for n in u.part_numbers):
            assert process.poll() is None, f"osscse ended before it could be killed: {process.stderr.read()!r}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no upload of the object appeared"
            time.sleep(0.02)
        os.kill(process.pid, signal.SIGKILL)  # no clean-up of any kind runs
    finally:
        process.wait()
        assert process.stderr is not None
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    left = {u.key: str(u.upload_id) for u in _uploads(oss_env, prefix)}
    assert key in left and len(left) == len(_uploads(oss_env, prefix)), "the kill left the upload behind"
    return left


def test_a_rewrap_killed_mid_upload_leaves_an_upload_that_the_rerun_aborts_and_reports(
    oss_env: Any, make_hook: Callable[..., EncryptedOSSHook], rsa_ref: str, other_rsa_ref: str, prefix: str
) -> None:
    writer = make_hook()  # 100 KiB parts: objects above the rewrap-by-PUT limit are copied in 11+ parts
    bodies = {f"{prefix}big-{i}": os.urandom(REWRAP_BY_PUT_LIMIT + PART) for i in range(3)}
    bodies.update({f"{prefix}small-{i}": f"small {i}".encode() for i in range(5)})
    for key, body in bodies.items():
        writer.upload(io.BytesIO(body), key)
    victim = f"{prefix}big-1"
    # Its second part copy is answered late (the marker, part 10,000, and the first part are not).
    oss_env.inject_fault("PUT", path_contains=victim, query_contains="partNumber=2", action=HOLD)
    args = ["rewrap", f"oss://{BUCKET}/{prefix}", "--cmk", other_rsa_ref, "--decrypt-cmk", rsa_ref]
    args += ["--oss-conn-id", "oss_v4", "--concurrency", "2"]

    left = _kill_once_a_data_part_is_stored(oss_env, args, victim, prefix)  # big-0's too, if it was in flight

    rerun = osscse(*args)
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert _uploads(oss_env, prefix) == [], "an upload survived the re-run"
    lines = rerun.stdout.decode().splitlines()
    reported = [line for line in lines if line.startswith("aborted-upload ")]
    assert lines[: len(reported)] == reported, "the clean-up is reported before the objects"
    assert sorted(line.split(", initiated ")[0] for line in reported) == [
        f"aborted-upload oss://{BUCKET}/{key}: rewrap upload {upload_id}" for key, upload_id in sorted(left.items())
    ]
    assert lines[-1].endswith(", 0 skipped, 0 failed") and f"rewrapped oss://{BUCKET}/{victim}: " in "\n".join(lines)
    current = EncryptedOSSHook("oss_v4", cmk=other_rsa_ref)  # no other CMK: every object is on the new one
    for outcome in current.read_many(bodies):
        assert outcome.result == bodies[outcome.key], outcome.key


def test_a_killed_put_leaves_an_upload_marked_put_which_osscse_uploads_lists_and_aborts(
    oss_env: Any, rsa_ref: str, tmp_path: Path, prefix: str
) -> None:
    key = f"{prefix}large.bin"
    source = tmp_path / "large.bin"
    source.write_bytes(os.urandom(33 * 2**20))  # above the 32 MiB multipart threshold: five 8 MiB parts
    oss_env.inject_fault("PUT", path_contains=key, query_contains="partNumber=5", action=HOLD)  # the last part
    put = ["put", str(source), f"oss://{BUCKET}/{key}", "--cmk", rsa_ref, "--oss-conn-id", "oss_v4"]

    upload_id = _kill_once_a_data_part_is_stored(oss_env, put, key, prefix)[key]

    uploads = ["uploads", f"oss://{BUCKET}/{prefix}", "--oss-conn-id", "oss_v4"]
    listed = osscse(*uploads)
    assert listed.returncode == 0, listed.stderr.decode()
    line, summary = listed.stdout.decode().splitlines()
    assert line.split() == ["put", line.split()[1], f"oss://{BUCKET}/{key}", upload_id]
    assert summary == "1 in progress: 1 ours (1 put), 0 not ours"

    recent = osscse(*uploads, "--abort")  # default --older-than 1h: the upload is seconds old
    assert recent.returncode == 0 and recent.stdout.decode().splitlines()[-1].startswith("0 aborted, 1 kept")
    assert [u.upload_id for u in _uploads(oss_env, prefix)] == [upload_id]

    aborted = osscse(*uploads, "--abort", "--older-than", "0")
    assert aborted.returncode == 0, aborted.stderr.decode()
    line, summary = aborted.stdout.decode().splitlines()
    assert line.startswith(f"aborted oss://{BUCKET}/{key}: put upload {upload_id}, idle ")
    assert summary == "1 aborted, 0 kept, 0 not ours, 0 gone, 0 failed"
    assert _uploads(oss_env, prefix) == []
    assert not EncryptedOSSHook("oss_v4").exists(key)
