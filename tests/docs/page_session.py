"""Follow a docs page literally: its blocks in order, in one folder, in one simulated shell.

A reader pastes a page's shell blocks into one terminal, so what one block exports or ``cd``s into is
there for the next; each block here runs in a fresh ``bash`` (``set -e -o pipefail``: every command
must succeed) that starts from the exported variables and working folder the previous block left.
Python blocks run with the ``python`` the page's ``PATH`` finds at that point (the activated
virtualenv's). Servers the page starts "in another terminal" run in the background and are stopped
with Ctrl-C (SIGINT) when the page is done; the directives that say so are in ``doc_blocks``.

The environment is fresh, not the test process's: a temporary ``HOME`` (so Airflow's
``~/airflow`` is new too), a plain system ``PATH`` (plus this virtualenv's ``bin`` when the reader
is assumed to have activated it), and no route to the internet: HTTPS goes to a proxy that refuses
every connection (loopback excepted), pip and uv are offline. A block that needs the network therefore
fails unless the page marks it ``skip (needs network ...)``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.docs.doc_blocks import PYTHON_LANGS, Block, output_matches

#: Longest a foreground block may run: a block that never returns is a server the page forgot to mark.
BLOCK_TIMEOUT = 180.0
#: Longest a background server may take to print its first line (its URL, or its exports).
READY_TIMEOUT = 60.0
#: A background server's output is complete once it has been quiet this long after its first line.
QUIET = 0.5
#: How long a server may take to stop after Ctrl-C.
STOP_TIMEOUT = 20.0

#: Variables bash sets on its own; not part of what a block leaves for the next.
_SHELL_OWN = frozenset({"_", "SHLVL", "PWD", "OLDPWD"})
#: Nothing leaves the machine: HTTPS (PyPI, GitHub, ...) goes to a proxy on the discard port, which
#: refuses every connection; pip and uv are offline. Plain HTTP is left alone: the local services are
#: HTTP on loopback, and Alibaba Cloud's SDKs send HTTP to ``HTTP_PROXY`` whatever ``NO_PROXY`` says.
NO_NETWORK = {
    **dict.fromkeys(("https_proxy", "HTTPS_PROXY"), "http://127.0.0.1:9"),
    **dict.fromkeys(("no_proxy", "NO_PROXY"), "127.0.0.1,localhost,::1"),
    "PIP_NO_INDEX": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "UV_OFFLINE": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def virtualenv_bin() -> Path:
    """The ``bin`` folder of the virtualenv running the tests (where ``osscse``, ``bao``, ``airflow`` are)."""
    return Path(sys.executable).parent


def fresh_environment(home: Path, *, activated: bool) -> dict[str, str]:
    """A new login's environment; ``activated``: after ``. .venv/bin/activate`` of this virtualenv."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "tmp").mkdir(exist_ok=True)
    system_path = "/usr/local/bin:/usr/bin:/bin"
    env = {
        "HOME": str(home),
        "PATH": system_path,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "TMPDIR": str(home / "tmp"),
        **NO_NETWORK,
    }
    if activated:
        env["VIRTUAL_ENV"] = str(virtualenv_bin().parent)
        env["PATH"] = f"{virtualenv_bin()}:{system_path}"
    return env


class DocsPageError(AssertionError):
    """A block did not do what the page says it does."""


@dataclass
class Result:
    """What a block printed and how it ended."""

    block: Block
    stdout: str
    stderr: str
    status: int


@dataclass
class _Background:
    block: Block
    process: subprocess.Popen[str]
    stderr_path: Path
    lines: list[str] = field(default_factory=list)
    last_output: float = 0.0

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.last_output = time.monotonic()  # first: a waiter seeing the line sees it as fresh
            self.lines.append(line)


class PageSession:
    """One reader following one page: a working folder, an environment, the servers they started."""

    def __init__(self, cwd: Path, env: dict[str, str], scratch: Path) -> None:
        self.cwd = cwd
        self.env = dict(env)
        self.scratch = scratch  # the harness's own files, outside the reader's folder
        self.results: list[Result] = []
        self.skipped: list[Block] = []
        self._background: list[_Background] = []
        self._count = 0
        cwd.mkdir(parents=True, exist_ok=True)
        scratch.mkdir(parents=True, exist_ok=True)

    # -- following a page ------------------------------------------------------------------------
    def follow(self, blocks: list[Block]) -> list[Result]:
        """Every block of the page in order, as its directive says; the results of those run."""
        for block in blocks:
            directive = block.directive
            kind = directive.kind if directive else None
            if kind == "skip":
                self.skipped.append(block)
            elif kind == "file":
                assert directive is not None
                (self.cwd / directive.file_name).write_text(block.text, encoding="utf-8")
            elif kind == "output":
                self._check_output(block)
            elif not block.runnable:
                continue  # something to read (text, hcl, json, ...)
            elif kind == "background":
                assert directive is not None
                self.start_background(block, exports=directive.exports)
            else:
                expected = directive.exit_status if directive and kind == "exit" else 0
                self.run(block, expect_status=expected)
        return self.results

    def _check_output(self, block: Block) -> None:
        if not self.results:
            raise DocsPageError(f"{block.where}: an 'output' block with no command run before it")
        previous = self.results[-1]
        if not output_matches(block.text, previous.stdout):
            raise DocsPageError(
                f"{block.where}: the page shows this output of the block at {previous.block.where}:\n"
                f"{block.text}but that block printed on stdout:\n{previous.stdout}"
                f"(stderr:\n{previous.stderr[-2000:]})"
            )

    # -- foreground blocks -----------------------------------------------------------------------
    def run(self, block: Block, *, expect_status: int = 0) -> Result:
        """Run one shell or Python block in the foreground; fail unless it exits ``expect_status``."""
        self._count += 1
        if block.lang in PYTHON_LANGS:
            python = shutil.which("python", path=self.env["PATH"])
            if python is None:
                raise DocsPageError(f"{block.where}: a Python block, but no 'python' on the page's PATH at this point")
            script = self.scratch / f"block-{self._count}.py"
            script.write_text(block.text, encoding="utf-8")
            argv = [python, str(script)]
        else:
            argv = ["bash", "--noprofile", "--norc", str(self._shell_script(block.shell_script()))]
        try:
            completed = subprocess.run(
                argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as timeout:
            raise DocsPageError(
                f"{block.where}: still running after {BLOCK_TIMEOUT:.0f} s; a server the reader runs in "
                "another terminal needs <!-- docs-test: background -->"
            ) from timeout
        result = Result(block, completed.stdout, completed.stderr, completed.returncode)
        if result.status != expect_status:
            raise DocsPageError(
                f"{block.where}: exit status {result.status}, the page expects {expect_status}; the block:\n"
                f"{block.text}stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
            )
        if result.status == 0 and block.lang not in PYTHON_LANGS:
            self._load_shell_state()
        self.results.append(result)
        return result

    def _shell_script(self, commands: str) -> Path:
        script = self.scratch / f"block-{self._count}.sh"
        state, where = self.scratch / "env", self.scratch / "pwd"
        script.write_text(
            f"set -e -o pipefail\n{commands}\nenv -0 > '{state}'\npwd > '{where}'\n",
            encoding="utf-8",
        )
        return script

    def _load_shell_state(self) -> None:
        entries = (self.scratch / "env").read_bytes().decode().split("\0")
        env = dict(entry.split("=", 1) for entry in entries if "=" in entry)
        self.env = {name: value for name, value in env.items() if name not in _SHELL_OWN}
        self.cwd = Path((self.scratch / "pwd").read_text().strip())

    # -- servers in "another terminal" -----------------------------------------------------------
    def start_background(self, block: Block, *, exports: bool) -> Result:
        """Start a server block as printed; wait for its first line (and, with ``exports``, paste the
        ``export`` lines it printed into the page's shell)."""
        self._count += 1
        stderr_path = self.scratch / f"background-{self._count}.stderr"
        with stderr_path.open("w") as stderr:
            process = subprocess.Popen(  # stopped by stop_servers(), in the test's finally
                ["bash", "--noprofile", "--norc", "-c", "set -e\n" + block.shell_script()],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,  # its own process group, as a terminal's foreground job
            )
        server = _Background(block, process, stderr_path)
        self._background.append(server)
        threading.Thread(target=server.read, name=f"docs-background-{self._count}", daemon=True).start()
        deadline = time.monotonic() + READY_TIMEOUT
        while not server.lines or time.monotonic() - server.last_output < QUIET:
            if process.poll() is not None and not server.lines:
                raise DocsPageError(
                    f"{block.where}: the server exited with status {process.returncode} before printing "
                    f"anything; stderr:\n{stderr_path.read_text()[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise DocsPageError(f"{block.where}: printed nothing within {READY_TIMEOUT:.0f} s")
            time.sleep(0.05)
        result = Result(block, "".join(server.lines), "", 0)
        if exports:
            lines = [line for line in server.lines if line.startswith("export ")]
            if not lines:
                raise DocsPageError(f"{block.where}: the page says to paste its exports, but it printed none")
            self.run(Block(block.page, block.line, "bash", "".join(lines), None))
        self.results.append(result)  # last: an 'output' block after it shows what the server printed
        return result

    def stop_servers(self) -> None:
        """Ctrl-C every server the page started, newest first; each must exit 0 (a clean stop)."""
        problems: list[str] = []
        while self._background:
            server = self._background.pop()
            process = server.process
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGINT)
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
                    problems.append(f"{server.block.where}: still running {STOP_TIMEOUT:.0f} s after Ctrl-C")
                    continue
            if process.returncode != 0:
                problems.append(
                    f"{server.block.where}: ended with exit status {process.returncode} (Ctrl-C should stop it "
                    f"cleanly); stderr:\n{server.stderr_path.read_text()[-2000:]}"
                )
        if problems:
            raise DocsPageError("\n".join(problems))
