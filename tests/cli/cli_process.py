"""Run ``osscse`` as a user does: the installed console script in a child process.

In-process calls of ``cli.main`` share the test process's stdout capture, logging configuration and
imported modules, so they cannot prove what a shell sees (which bytes reach file descriptor 1, what
Airflow's import prints, the exit status). Tests about the command line's contract use this.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

#: The console script installed next to the interpreter running the tests (the package's entry point).
OSSCSE = str(Path(sys.executable).with_name("osscse"))


def osscse(
    *args: str,
    stdin: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """``osscse ARGS...`` with the test's environment (connections included), output captured apart."""
    return subprocess.run(
        [OSSCSE, *args],
        input=stdin,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
