"""A download killed without warning (SIGKILL: the OOM killer, a hard task timeout) leaves no plaintext.

Observed before: ``atomic_write`` wrote into ``.NAME.XXXX.osscse-partial`` and removed it only from
Python exception handlers, which a SIGKILL never runs: the unverified plaintext stayed forever.

These tests kill real child processes that hold an ``atomic_write`` open with plaintext written
(checked through ``/proc/<pid>/fd`` before the kill, so the test cannot pass vacuously). The named
fallback (other OSes, filesystems without ``O_TMPFILE``) is forced in the child by switching
``O_TMPFILE`` off, the one fault no local filesystem here produces.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_osscse.transport import atomic_file
from airflow_provider_osscse.transport.atomic_file import PARTIAL_SUFFIX, atomic_write, sweep_stale_partials

ROOT = Path(__file__).resolve().parents[2]
MARKER = b"UNVERIFIED-PLAINTEXT-"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc and O_TMPFILE are Linux")

CHILD = r"""
import sys
from airflow_provider_osscse.transport import atomic_file
if sys.argv[2] == "named":
    atomic_file._USE_O_TMPFILE = False
with atomic_file.atomic_write(sys.argv[1]) as handle:
    handle.write(sys.argv[3].encode() * 4096)
    handle.flush()
    print("written", flush=True)
    if sys.stdin.readline().strip() == "fail":
        raise SystemExit(3)
print("done", flush=True)
"""


class Writer:
    """A child process inside ``atomic_write(dest)`` with plaintext written, waiting for a verdict."""

    def __init__(self, dest: Path, mode: str) -> None:
        self.dest = dest
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(dest), mode, MARKER.decode()],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "written", f"child did not start writing (exit {self.proc.poll()})"

    def open_files_in(self, folder: Path) -> dict[str, bytes]:
        """Targets of the child's fds inside ``folder`` and their content (``#ino (deleted)`` for
        an unnamed ``O_TMPFILE``)."""
        found: dict[str, bytes] = {}
        fd_dir = Path(f"/proc/{self.proc.pid}/fd")
        for fd in os.listdir(fd_dir):
            try:
                target = os.readlink(fd_dir / fd)
            except OSError:
                continue
            if target.startswith(str(folder.resolve()) + "/"):
                found[target] = (fd_dir / fd).read_bytes()
        return found

    def kill(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)  # reaped: no zombie left that would still count as alive
        assert self.proc.returncode == -signal.SIGKILL

    def finish(self, verdict: str = "ok") -> int:
        self.proc.communicate(verdict + "\n", timeout=30)
        return self.proc.returncode


@pytest.fixture
def writers() -> Iterator[list[Writer]]:
    started: list[Writer] = []
    yield started
    for writer in started:
        if writer.proc.poll() is None:
            os.kill(writer.proc.pid, signal.SIGKILL)
            writer.proc.wait(timeout=30)


def _tmpfile_supported(folder: Path) -> bool:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # The probe atomic_file itself makes: these crash tests force each of its two code paths.
        return atomic_file._tmpfile_links_work(fd, os.fstat(fd).st_dev)  # noqa: SLF001
    finally:
        os.close(fd)


@pytest.fixture(params=["unnamed", "named"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Run a test with ``O_TMPFILE`` (where the filesystem has it) and with named partials."""
    if request.param == "unnamed" and not (atomic_file._USE_O_TMPFILE and _tmpfile_supported(tmp_path)):  # noqa: SLF001
        pytest.skip("O_TMPFILE + linkat is not available on this filesystem")
    if request.param == "named":
        monkeypatch.setattr(atomic_file, "_USE_O_TMPFILE", False)
    return str(request.param)


# ------------------------------------------------------------------------------------ SIGKILL
@linux_only
def test_sigkilled_download_leaves_no_plaintext_in_the_folder(tmp_path: Path, writers: list[Writer]) -> None:
    if not _tmpfile_supported(tmp_path):
        pytest.skip("O_TMPFILE + linkat is not available on this filesystem")
    folder = tmp_path / "downloads"
    folder.mkdir()
    writer = Writer(folder / "orders.csv", "unnamed")
    writers.append(writer)
    held = writer.open_files_in(folder)
    assert held and all(MARKER in data for data in held.values()), "no plaintext held: the kill would prove nothing"
    assert os.listdir(folder) == [], f"the unverified file has a name: {os.listdir(folder)}"
    writer.kill()
    assert os.listdir(folder) == []


@linux_only
def test_sigkilled_download_over_an_existing_file_keeps_it_and_leaves_nothing_else(
    tmp_path: Path, writers: list[Writer]
) -> None:
    if not _tmpfile_supported(tmp_path):
        pytest.skip("O_TMPFILE + linkat is not available on this filesystem")
    (tmp_path / "orders.csv").write_bytes(b"earlier, verified version")
    writer = Writer(tmp_path / "orders.csv", "unnamed")
    writers.append(writer)
    writer.kill()
    assert os.listdir(tmp_path) == ["orders.csv"]
    assert (tmp_path / "orders.csv").read_bytes() == b"earlier, verified version"


@linux_only
def test_named_fallback_partial_of_a_killed_writer_is_swept_by_the_next_download(
    tmp_path: Path, writers: list[Writer]
) -> None:
    writer = Writer(tmp_path / "orders.csv", "named")
    writers.append(writer)
    writer.kill()
    left = os.listdir(tmp_path)
    assert len(left) == 1 and left[0].startswith(".orders.csv.") and left[0].endswith(PARTIAL_SUFFIX)
    assert MARKER in (tmp_path / left[0]).read_bytes()  # the crash did leave plaintext ...
    with atomic_write(tmp_path / "other.csv") as handle:  # ... until the next download into the folder
        handle.write(b"verified")
    assert sorted(os.listdir(tmp_path)) == ["other.csv"]


@linux_only
def test_sweep_never_removes_a_live_writers_partial(tmp_path: Path, writers: list[Writer]) -> None:
    writer = Writer(tmp_path / "big.csv", "named")
    writers.append(writer)
    (partial,) = os.listdir(tmp_path)
    with atomic_write(tmp_path / "small.csv") as handle:
        handle.write(b"small")
    assert sweep_stale_partials(tmp_path, force=True) == []
    assert sorted(os.listdir(tmp_path)) == sorted([partial, "small.csv"])
    assert writer.finish() == 0
    assert sorted(os.listdir(tmp_path)) == ["big.csv", "small.csv"]
    assert (tmp_path / "big.csv").read_bytes() == MARKER * 4096


@linux_only
@pytest.mark.parametrize("child_mode", ["unnamed", "named"])
def test_a_writer_failing_normally_leaves_nothing_either(
    child_mode: str, tmp_path: Path, writers: list[Writer]
) -> None:
    if child_mode == "unnamed" and not _tmpfile_supported(tmp_path):
        pytest.skip("O_TMPFILE + linkat is not available on this filesystem")
    writer = Writer(tmp_path / "x.csv", child_mode)
    writers.append(writer)
    assert writer.finish("fail") == 3
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------ the sweep's rules
def _touch(path: Path, age_seconds: float = 0.0) -> Path:
    path.write_bytes(MARKER)
    if age_seconds:
        when = time.time() - age_seconds
        os.utime(path, (when, when))
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@linux_only
def test_sweep_removes_only_this_packages_partials_whose_writer_is_known_to_be_gone(tmp_path: Path) -> None:
    # Partial names carry the writer's host tag and PID; the test forges partials of live and dead writers.
    tag, me, dead = atomic_file._host_tag(), os.getpid(), _dead_pid()  # noqa: SLF001
    other_tag = "0" * 8 if tag != "0" * 8 else "1" * 8
    stale = [
        _touch(tmp_path / f".a.csv.{tag}-{dead}-0123abcd{PARTIAL_SUFFIX}"),  # writer gone
        _touch(tmp_path / f".b.csv.{tag}-{me}-0123abcd{PARTIAL_SUFFIX}"),  # our PID, not ours: reused PID
        _touch(tmp_path / f".c.csv.k3j_9x2a{PARTIAL_SUFFIX}", age_seconds=2 * 3600),  # earlier version, old
        _touch(tmp_path / f".d.csv.{other_tag}-{dead}-0123abcd{PARTIAL_SUFFIX}", age_seconds=2 * 3600),
    ]
    kept = [
        _touch(tmp_path / f".e.csv.{tag}-{os.getppid()}-0123abcd{PARTIAL_SUFFIX}"),  # writer alive
        _touch(tmp_path / f".f.csv.k3j_9x2a{PARTIAL_SUFFIX}"),  # earlier version, recent: may be writing
        _touch(tmp_path / f".g.csv.{other_tag}-{dead}-0123abcd{PARTIAL_SUFFIX}"),  # another host's PIDs, recent
        _touch(tmp_path / f"h.csv.{tag}-{dead}-0123abcd{PARTIAL_SUFFIX}"),  # not hidden: not our name
        _touch(tmp_path / f".i.csv{PARTIAL_SUFFIX}", age_seconds=2 * 3600),  # no token
        _touch(tmp_path / f".j.csv.{tag}-{dead}-0123abcd{PARTIAL_SUFFIX}.bak"),
        _touch(tmp_path / "orders.csv", age_seconds=2 * 3600),
    ]
    target = _touch(tmp_path / "target.csv")
    (tmp_path / f".k.csv.{tag}-{dead}-0123abcd{PARTIAL_SUFFIX}").symlink_to(target)  # never followed
    (tmp_path / f".l.csv.{tag}-{dead}-0123abcd{PARTIAL_SUFFIX}").mkdir()
    removed = sweep_stale_partials(tmp_path, force=True)
    assert sorted(removed) == sorted(p.name for p in stale)
    assert all(p.exists() for p in kept) and target.read_bytes() == MARKER
    assert (tmp_path / f".k.csv.{tag}-{dead}-0123abcd{PARTIAL_SUFFIX}").is_symlink()


def test_sweep_logs_each_removal_at_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    old = _touch(tmp_path / f".a.csv.k3j_9x2a{PARTIAL_SUFFIX}", age_seconds=2 * 3600)
    with caplog.at_level("WARNING", logger="airflow_provider_osscse.transport.atomic_file"):
        assert sweep_stale_partials(tmp_path, force=True) == [old.name]
    assert old.name in caplog.text and "unverified" in caplog.text


def test_sweep_runs_at_most_once_per_interval_per_folder(tmp_path: Path) -> None:
    sweep_stale_partials(tmp_path, force=True)
    old = _touch(tmp_path / f".a.csv.k3j_9x2a{PARTIAL_SUFFIX}", age_seconds=2 * 3600)
    assert sweep_stale_partials(tmp_path) == [] and old.exists()
    assert sweep_stale_partials(tmp_path, force=True) == [old.name]


# ------------------------------------------------------------------------------------ behaviour kept
def test_success_creates_the_file_with_the_umask_mode_and_nothing_else(mode: str, tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    with atomic_write(dest) as handle:
        handle.write(b"new")
        if mode == "unnamed":
            assert os.listdir(tmp_path) == []  # no name until verified
    assert dest.read_bytes() == b"new" and os.listdir(tmp_path) == ["out.bin"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o666 & ~_umask()  # like cp (issue 11)


def _write_then_fail(dest: Path) -> None:
    """Write unverified bytes, then fail inside the block as a download does on a tag mismatch."""
    with atomic_write(dest) as handle:
        handle.write(b"unverified")
        raise RuntimeError("tag mismatch")


def test_overwrite_replaces_atomically_and_failure_keeps_the_earlier_file(mode: str, tmp_path: Path) -> None:
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"earlier")
    with pytest.raises(RuntimeError, match="tag mismatch"):
        _write_then_fail(dest)
    assert dest.read_bytes() == b"earlier" and os.listdir(tmp_path) == ["out.bin"]
    with atomic_write(dest) as handle:
        os.pwrite(handle.fileno(), b"verified", 0)  # downloads pwrite from worker threads
    assert dest.read_bytes() == b"verified" and os.listdir(tmp_path) == ["out.bin"]


def test_overwrite_replaces_a_symlink_not_its_target(mode: str, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_bytes(b"untouched")
    (tmp_path / "out.bin").symlink_to(target)
    with atomic_write(tmp_path / "out.bin") as handle:
        handle.write(b"new")
    assert not (tmp_path / "out.bin").is_symlink() and (tmp_path / "out.bin").read_bytes() == b"new"
    assert target.read_bytes() == b"untouched" and sorted(os.listdir(tmp_path)) == ["elsewhere.txt", "out.bin"]


def test_a_missing_destination_folder_is_reported(mode: str, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_write(tmp_path / "missing" / "out.bin") as handle:
        handle.write(b"x")


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
