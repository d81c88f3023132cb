"""Downloaded files get the user's umask, like ``cp``, but unverified plaintext is never readable by others.

Observed before (issue 11): every download was ``0600`` whatever the umask, so ``umask 022`` still
produced files the rest of a team's tooling could not read. Now the file stays ``0600`` while it is
written and unverified, and only when it gets its final name does it become ``0666 & ~umask`` (or,
when it replaces an existing file, keep that file's mode, as ``cp`` does).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.transport import atomic_file
from airflow_provider_osscse.transport.atomic_file import atomic_write
from tests.transfer_fixtures import KIB

# pytest fixtures of the hook tests, used by name (the redundant alias marks them as re-exported)
from tests.transfer_fixtures import make_hook as make_hook
from tests.transfer_fixtures import oss_env as oss_env
from tests.transfer_fixtures import rsa_ref as rsa_ref


def _tmpfile_supported(folder: Path) -> bool:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        # The probe atomic_file itself makes: these tests force each of its two code paths.
        return atomic_file._tmpfile_links_work(fd, os.fstat(fd).st_dev)  # noqa: SLF001
    finally:
        os.close(fd)


@pytest.fixture(params=["unnamed", "named"])
def path_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """Run with ``O_TMPFILE`` (where the filesystem has it) and with the named-partial fallback."""
    if request.param == "unnamed" and not (atomic_file._USE_O_TMPFILE and _tmpfile_supported(tmp_path)):  # noqa: SLF001
        pytest.skip("O_TMPFILE + linkat is not available on this filesystem")
    if request.param == "named":
        monkeypatch.setattr(atomic_file, "_USE_O_TMPFILE", False)
    return str(request.param)


@pytest.fixture
def set_umask() -> Iterator[Callable[[int], int]]:
    """``os.umask`` for the test to call; the original umask is restored afterwards."""
    original = os.umask(0o022)
    os.umask(original)
    yield os.umask
    os.umask(original)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _unverified_mode(handle: Any, tmp_path: Path, path_kind: str) -> int:
    """The mode of the file being written, seen from outside the handle (``/proc/self/fd`` or the partial)."""
    if path_kind == "unnamed":
        return stat.S_IMODE(os.stat(f"/proc/self/fd/{handle.fileno()}").st_mode)
    (partial,) = [p for p in tmp_path.iterdir() if p.name.endswith(atomic_file.PARTIAL_SUFFIX)]
    return _mode(partial)


@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_creates_the_file_with_the_umask_like_cp(
    path_kind: str, set_umask: Callable[[int], int], tmp_path: Path, umask: int, expected: int
) -> None:
    set_umask(umask)
    dest = tmp_path / "out.csv"
    with atomic_write(dest) as handle:
        handle.write(b"plaintext")
        handle.flush()
        assert _unverified_mode(handle, tmp_path, path_kind) == 0o600  # never readable by others unverified
    assert _mode(dest) == expected


def test_a_failed_write_never_exposes_the_unverified_file_under_a_permissive_umask(
    path_kind: str, set_umask: Callable[[int], int], tmp_path: Path
) -> None:
    set_umask(0o000)
    seen: list[int] = []

    def write_then_fail() -> None:
        with atomic_write(tmp_path / "out.csv") as handle:
            handle.write(b"unverified")
            handle.flush()
            seen.append(_unverified_mode(handle, tmp_path, path_kind))
            raise RuntimeError("tag mismatch")

    with pytest.raises(RuntimeError, match="tag mismatch"):
        write_then_fail()
    assert seen == [0o600] and os.listdir(tmp_path) == []


def test_overwriting_an_existing_file_keeps_its_mode_like_cp(
    path_kind: str, set_umask: Callable[[int], int], tmp_path: Path
) -> None:
    set_umask(0o022)
    dest = tmp_path / "out.csv"
    dest.write_bytes(b"earlier")
    dest.chmod(0o640)
    with atomic_write(dest) as handle:
        handle.write(b"new")
    assert dest.read_bytes() == b"new" and _mode(dest) == 0o640


def test_umask_is_read_without_changing_it() -> None:
    original = os.umask(0o027)
    try:
        assert atomic_file._current_umask() == 0o027  # noqa: SLF001 - the helper this issue adds
        assert os.umask(0o027) == 0o027  # unchanged by the read
    finally:
        os.umask(original)


@pytest.mark.services  # the local OSS server, through make_hook (requested by name below)
@pytest.mark.parametrize(("umask", "expected"), [(0o022, 0o644), (0o077, 0o600)])
def test_hook_download_creates_the_file_with_the_umask(
    path_kind: str,
    request: pytest.FixtureRequest,
    set_umask: Callable[[int], int],
    tmp_path: Path,
    umask: int,
    expected: int,
) -> None:
    hook = request.getfixturevalue("make_hook")()
    key = f"perm/{path_kind}-{umask:o}.csv"
    hook.upload(io.BytesIO(b"a,b\n" * (64 * KIB)), key)
    set_umask(umask)
    dest = tmp_path / "orders.csv"
    hook.download(key, dest)
    assert _mode(dest) == expected and dest.read_bytes() == b"a,b\n" * (64 * KIB)
    dest.chmod(0o604)
    hook.download(key, dest)  # an overwrite keeps the existing file's mode, like cp
    assert _mode(dest) == 0o604
