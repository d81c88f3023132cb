"""A prefix rotation killed by PID mid-run is finished by re-running it (issue 13).

``osscse rewrap`` runs as a user's shell runs it (a child process) over a few hundred objects under a
rotated Vault Transit key and is killed with SIGKILL once it has reported some objects: no cleanup
code runs. The re-run skips what the first run finished (judged from the objects' headers and one
read of the key's newest version) and rewraps the rest; a third run makes no Transit ``rewrap`` call
at all. Every object still decrypts to its bytes, and no multipart upload is left behind (small
objects are rewrapped by one PUT, so a kill leaves each object old or new, never half-written).
Calls are counted at OpenBao's audit log.
"""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.testing.openbao import OpenBaoAuditLog

from .cli_process import OSSCSE, osscse
from .conftest import BUCKET

OBJECTS = 400


def _statuses(stdout: str) -> Counter[str]:
    """Per-object line counts by status (``rewrapped oss://...``), the summary line left out."""
    return Counter(line.split(" ", 1)[0] for line in stdout.splitlines() if " oss://" in line)


def test_a_rewrap_killed_mid_run_is_finished_by_the_rerun_and_a_third_run_calls_no_key_service(
    oss_env: Any, transit_ref: Callable[[str], str], osscse_openbao_audit: OpenBaoAuditLog
) -> None:
    key_name = f"resume-{uuid.uuid4().hex[:8]}"
    cmk = transit_ref(key_name)
    prefix = f"resume/{key_name}/"
    hook = EncryptedOSSHook("oss_v4", cmk=cmk)
    bodies = {f"{prefix}{i:04d}": f"object {i}".encode() for i in range(OBJECTS)}
    assert all(o.ok for o in hook.upload_many((body, key) for key, body in bodies.items()))
    transit_ref.client.secrets.transit.rotate_key(key_name)  # type: ignore[attr-defined]
    args = ["rewrap", f"oss://{BUCKET}/{prefix}", "--cmk", cmk, "--oss-conn-id", "oss_v4", "--concurrency", "2"]

    process = subprocess.Popen([OSSCSE, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert process.stdout is not None
    reported = 0
    for line in process.stdout:
        reported += line.startswith("rewrapped ")
        if reported >= 50:
            os.kill(process.pid, signal.SIGKILL)  # no cleanup of any kind runs
            break
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the first run finished before it could be killed"

    rerun = osscse(*args)
    assert rerun.returncode == 0, rerun.stderr.decode()
    # Small objects are rewrapped by GET + PUT: a kill leaves no multipart upload behind (issue 14).
    assert [u.key for u in oss_env.list_multipart_uploads(BUCKET) if u.key.startswith(prefix)] == []
    statuses = _statuses(rerun.stdout.decode())
    assert statuses["already-current"] >= 50 and statuses["failed"] == 0
    assert statuses["already-current"] + statuses["rewrapped"] == OBJECTS

    rewraps = osscse_openbao_audit.requests(f"transit/rewrap/{key_name}")
    third = osscse(*args)
    assert third.returncode == 0 and third.stdout.decode().splitlines()[-1] == (
        f"0 rewrapped, {OBJECTS} already current, 0 skipped, 0 failed"
    )
    assert osscse_openbao_audit.requests(f"transit/rewrap/{key_name}") == rewraps, "a current object cost a call"
    for outcome in hook.read_many(bodies):
        assert outcome.result == bodies[outcome.key] and outcome.result.key_version == "v2", outcome.key
