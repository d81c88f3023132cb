"""Write a file so that it appears complete and verified, or not at all, even if the process is killed.

A download decrypts into a file in the destination's own folder (same filesystem, so the final step
is atomic), fsyncs it, and names it ``destination`` only when the caller's block finished without
error (i.e. after the integrity tag verified). An earlier file at the destination is replaced
atomically, or kept untouched on failure. A reader never sees unverified plaintext under the final
name.

A process killed mid-download (SIGKILL, the OOM killer, a hard task timeout) runs no clean-up code,
so the unverified plaintext must not have a name of its own either:

* **Linux** (``O_TMPFILE``: ext4, xfs, btrfs, tmpfs, ...): the file is created *without a name*; it
  appears in no listing and the kernel frees it when the process dies, however it dies. Once
  verified it is linked in with ``linkat(AT_SYMLINK_FOLLOW)`` through ``/proc/self/fd/N``: straight to
  ``destination`` when that name is free, else to a temporary name that is then renamed over it
  (rename is the only atomic overwrite; a crash in between leaves a *verified* copy, swept as below).
* **Elsewhere** (other OSes, filesystems without ``O_TMPFILE`` such as NFS, or no ``/proc``): a named
  partial file ``.<name>.<host>-<pid>-<random>.osscse-partial``, removed on every handled failure.
  To cover crashes, each download first sweeps the destination folder for partials of this
  package's naming pattern left by a process that is gone (see :func:`sweep_stale_partials`).

Permissions, like ``cp``: while unverified the file is ``0600`` (never readable by others); once the
tag verified and just before it gets its name it is ``fchmod``-ed to ``0666 & ~umask``, or, when it
replaces an existing regular file, to that file's permission bits (``cp`` keeps them on overwrite).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import logging
import os
import re
import secrets
import socket
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

PARTIAL_SUFFIX = ".osscse-partial"
#: A partial whose writer cannot be identified (another host, or an earlier version of this package
#: that wrote ``.<name>.XXXXXXXX.osscse-partial``) is stale once untouched this long: a live download
#: writes continuously, and the retry policy gives up on a stalled one long before.
STALE_AFTER_SECONDS = 3600.0
#: A folder is swept at most this often per process: the listing costs O(entries), and a bulk
#: download of many objects into one folder would otherwise list it once per object.
SWEEP_INTERVAL_SECONDS = 600.0

#: Set to ``False`` to use named partials everywhere (what a filesystem without ``O_TMPFILE`` gets).
_USE_O_TMPFILE: bool = sys.platform.startswith("linux") and hasattr(os, "O_TMPFILE")
#: ``open(O_TMPFILE)`` errors that mean "not supported here" (old kernel: EISDIR; filesystem: EOPNOTSUPP).
_NO_TMPFILE_ERRNOS = frozenset({errno.EOPNOTSUPP, errno.ENOTSUP, errno.EISDIR, errno.EINVAL, errno.ENOSYS})

# ``.<name>.<host>-<pid>-<random>.osscse-partial`` (this version) or ``.<name>.XXXXXXXX.osscse-partial``
# (``tempfile.mkstemp`` names of earlier versions). Nothing else is ever swept.
_PARTIAL_NAME = re.compile(
    r"^\..+\.(?:(?P<host>[0-9a-f]{8})-(?P<pid>[1-9][0-9]{0,9})-[0-9a-f]{8}|[a-z0-9_]{8})"
    + re.escape(PARTIAL_SUFFIX)
    + r"$",
    re.DOTALL,
)

_lock = threading.Lock()
#: Basenames of the partials this process has (or is about to create) in use: never swept.
_live: set[str] = set()
#: (st_dev, st_ino) of a folder -> monotonic time of its last sweep by this process.
_swept: dict[tuple[int, int], float] = {}
#: st_dev -> whether an ``O_TMPFILE`` file can be linked into a folder of that filesystem.
_tmpfile_links: dict[int, bool] = {}


@contextlib.contextmanager
def atomic_write(destination: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a writable binary file; on normal exit fsync it and make it ``destination``.

    Raise inside the block (e.g. an ``IntegrityError`` after the last byte) to discard everything.
    The handle supports ``fileno()`` for ``pwrite`` from worker threads.
    """
    dest = Path(destination)
    folder = dest.parent if str(dest.parent) else Path(".")
    sweep_stale_partials(folder)
    dir_fd = _open_folder(folder) if _USE_O_TMPFILE else None
    try:
        fd = _open_unnamed(dir_fd) if dir_fd is not None else None
        if fd is None:
            with _named_partial(dest, folder) as handle:
                yield handle
            return
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            os.fchmod(handle.fileno(), _final_mode(dest))
            _link_into_place(handle.fileno(), dest.name, dir_fd)  # type: ignore[arg-type]
        _fsync_dir_fd(dir_fd)  # type: ignore[arg-type]
    finally:
        if dir_fd is not None:
            os.close(dir_fd)


# ------------------------------------------------------------------------------------ O_TMPFILE
def _open_folder(folder: Path) -> int | None:
    try:
        return os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None  # the named path reports the real problem (missing folder, permissions)


def _open_unnamed(dir_fd: int) -> int | None:
    """An unnamed ``0600`` file in the folder, or ``None`` where ``O_TMPFILE`` + link cannot work."""
    try:
        folder_dev = os.fstat(dir_fd).st_dev
    except OSError:
        return None
    if not _tmpfile_links_work(dir_fd, folder_dev):
        return None
    try:
        return os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE_ERRNOS:
            return None
        raise


def _tmpfile_links_work(dir_fd: int, folder_dev: int) -> bool:
    """Probe once per filesystem: create an unnamed file, link it in, remove it.

    Some environments accept ``O_TMPFILE`` but cannot link it (no ``/proc``, sandboxes); finding
    that out only after downloading a whole object would fail every download there.
    """
    with _lock:
        known = _tmpfile_links.get(folder_dev)
    if known is not None:
        return known
    works = False
    if os.path.isdir("/proc/self/fd"):
        name = _reserve_partial_name("probe")
        try:
            fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
            try:
                os.link(f"/proc/self/fd/{fd}", name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=True)
                os.unlink(name, dir_fd=dir_fd)
                works = True
            finally:
                os.close(fd)
        except OSError as exc:
            log.debug("O_TMPFILE is not usable here (%s); downloads use named partial files", exc)
        finally:
            _release(name)
    with _lock:
        _tmpfile_links[folder_dev] = works
    return works


def _link_into_place(fd: int, name: str, dir_fd: int) -> None:
    """Give the verified unnamed file its name: a link where the name is free, else link + rename.

    ``os.link`` is called with a ``src_dir_fd`` so that CPython uses ``linkat(AT_SYMLINK_FOLLOW)``
    (plain ``link()`` would try to hard-link the ``/proc`` symlink itself and fail with EXDEV).
    """
    source = f"/proc/self/fd/{fd}"
    try:
        os.link(source, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=True)
        return
    except FileExistsError:
        pass  # an earlier file: replace it atomically, via a temporary name
    temp = _reserve_partial_name(name)
    try:
        os.link(source, temp, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=True)
        try:
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=dir_fd)
            raise
    finally:
        _release(temp)


# ------------------------------------------------------------------------------------ permissions
def _final_mode(dest: Path) -> int:
    """The verified file's mode: an existing regular destination's permission bits (as ``cp`` keeps
    them; setuid/setgid/sticky dropped), else ``0666 & ~umask``. A symlink is replaced, not followed."""
    with contextlib.suppress(OSError):
        st = os.lstat(dest)
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode) & 0o777
    return 0o666 & ~_current_umask()


def _current_umask() -> int:
    """The umask, read per download (it may change), without racing threads: ``os.umask`` reads only by
    setting the process-wide value, so a file another thread creates meanwhile gets the temporary one.
    Linux (4.7+) reads ``Umask:`` in ``/proc/self/status``; elsewhere the set-and-restore runs under
    the lock with ``0o077`` as the temporary value: such a file is at worst *more* private."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8) & 0o777
    with _lock:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


# ------------------------------------------------------------------------------------ named partials
@contextlib.contextmanager
def _named_partial(dest: Path, folder: Path) -> Iterator[BinaryIO]:
    """The fallback: a named ``0600`` partial, renamed over ``dest`` on success, removed on failure."""
    name, path, fd = _create_partial(dest, folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            mode = _final_mode(dest)
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), mode)
            else:  # Windows before Python 3.13
                os.chmod(path, mode)
        os.replace(path, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
    finally:
        _release(name)
    _fsync_folder(folder)


def _create_partial(dest: Path, folder: Path) -> tuple[str, Path, int]:
    """Reserve a fresh partial name for ``dest`` and create it exclusively: ``(name, path, fd)``.

    A name clash with a file already on disk (another host's partial) just draws another name.
    """
    while True:
        name = _reserve_partial_name(dest.name)
        path = folder / name
        try:
            fd = os.open(
                path,
                os.O_WRONLY
                | os.O_CREAT
                | os.O_EXCL
                | getattr(os, "O_CLOEXEC", 0)
                | getattr(os, "O_NOFOLLOW", 0)
                | getattr(os, "O_BINARY", 0),
                0o600,
            )
        except FileExistsError:
            _release(name)
        except BaseException:
            _release(name)
            raise
        else:
            return name, path, fd


def _reserve_partial_name(name: str) -> str:
    """A fresh partial name for ``name``, registered as live *before* the file exists.

    Registering first means a concurrent sweep in another thread never removes it.
    """
    stem = os.fsdecode(os.fsencode(name)[:150])  # stay under NAME_MAX (255 bytes) with the suffix
    while True:
        candidate = f".{stem}.{_host_tag()}-{os.getpid()}-{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
        with _lock:
            if candidate not in _live:
                _live.add(candidate)
                return candidate


def _release(name: str) -> None:
    with _lock:
        _live.discard(name)


@functools.cache
def _host_tag() -> str:
    """8 hex digits naming this host, boot and PID namespace: only PIDs under the same tag are
    comparable, so a partial written by another container or machine sharing the folder is never
    judged by a local PID that happens to be free."""
    parts = [socket.gethostname()]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()[:8]


# ------------------------------------------------------------------------------------ the sweep
def sweep_stale_partials(folder: str | os.PathLike[str], *, force: bool = False) -> list[str]:
    """Remove partial downloads in ``folder`` that a crashed process left behind; return their names.

    Only names of this package's pattern, regular files (never symlinks) owned by this user, and
    only when the writer is known to be gone:

    * written on this host (same boot and PID namespace): its PID no longer exists, or it is this
      process's own PID but not one of this process's live partials (the PID was reused);
    * otherwise (another host, an earlier version's name without a PID): untouched for
      :data:`STALE_AFTER_SECONDS`.

    A live writer's partial is never removed. Best effort: a folder that cannot be listed is skipped.
    Runs at most every :data:`SWEEP_INTERVAL_SECONDS` per folder and process unless ``force``.
    """
    try:
        info = os.stat(folder)
    except OSError:
        return []
    key = (info.st_dev, info.st_ino)
    now = time.monotonic()
    with _lock:
        last = _swept.get(key)
        if not force and last is not None and now - last < SWEEP_INTERVAL_SECONDS:
            return []
        _swept[key] = now
    removed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _PARTIAL_NAME.match(entry.name)
        if match is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(st.st_mode) or (hasattr(os, "geteuid") and st.st_uid != os.geteuid()):
                continue
            why = _stale_reason(entry.name, match, st)
            if why is None:
                continue
            os.unlink(entry.path)
        except OSError:
            continue  # gone meanwhile, or not ours to remove
        removed.append(entry.name)
        log.warning(
            "removed %s left in %s by an interrupted download (%s); it held unverified data",
            entry.name,
            os.fspath(folder),
            why,
        )
    return removed


def _stale_reason(name: str, match: re.Match[str], st: os.stat_result) -> str | None:
    """Why the partial is stale, or ``None`` when its writer may still be running."""
    pid = int(match["pid"]) if match["pid"] else None
    if pid is not None and match["host"] == _host_tag() and os.name == "posix":
        if pid == os.getpid():
            with _lock:
                live = name in _live
            return None if live else f"an earlier process {pid} is gone; this process reuses its PID"
        return None if _pid_exists(pid) else f"its writer, process {pid}, is gone"
    age = time.time() - st.st_mtime
    if age >= STALE_AFTER_SECONDS:
        return f"untouched for {int(age)} s"
    return None


def _pid_exists(pid: int) -> bool:
    """POSIX only (on Windows ``os.kill`` would terminate the process). A zombie counts as alive."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: exists, another user's
    return True


# ------------------------------------------------------------------------------------ durability
def _fsync_dir_fd(dir_fd: int) -> None:
    with contextlib.suppress(OSError):
        os.fsync(dir_fd)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every platform can open a directory)."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
