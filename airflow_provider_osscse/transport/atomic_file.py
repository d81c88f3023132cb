"""Write a file so that it appears complete and verified, or not at all.

The data goes to a temp file in the destination's own folder (same filesystem, so the final
``os.replace`` is atomic), is fsync'ed, and is renamed over the destination only when the caller's
block finished without error. On any failure the temp file is removed and an earlier file at the
destination is untouched: a reader never sees unverified plaintext under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_write(destination: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Yield a writable binary file; on normal exit fsync and rename it to ``destination``.

    Raise inside the block (e.g. an ``IntegrityError`` after the last byte) to discard everything.
    """
    dest = Path(destination)
    folder = dest.parent if str(dest.parent) else Path(".")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".osscse-partial", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_folder(folder)


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
