"""Where ``osscse get`` writes, decided like ``cp`` before any byte is transferred.

Why a module of its own: the checks are pure path logic (no Airflow, no OSS), and doing them before
the download is the point. A transfer that ends in ``IsADirectoryError`` on a temporary name, or one
that silently replaces a user's file, has already cost the transfer or the file.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from airflow_provider_osscse.exceptions import UsageError

#: ``DEST`` meaning "write the plaintext to stdout", as ``put`` reads ``-`` from stdin.
STDOUT = "-"


def object_key(uri_key: str, uri: str) -> str:
    """The object key of an ``oss://BUCKET/KEY`` argument; a usage error when it names no object."""
    if not uri_key or uri_key.endswith("/"):
        raise UsageError(f"{uri!r} names no object: expected oss://BUCKET/KEY (a key not ending in '/')")
    return uri_key


def download_destination(dest: str, key: str, *, force: bool) -> Path:
    """The file ``get`` writes for object ``key`` given ``DEST``, checked like ``cp`` would.

    * an existing folder, or a name ending in a path separator: ``DEST/<base name of the key>``
      (a name ending in a separator must be an existing folder);
    * the folder that will hold the file must exist (no folders are created);
    * an existing file is replaced only with ``force`` (``--force``).

    Raises ``FileNotFoundError`` / ``FileExistsError`` / ``IsADirectoryError`` (exit 1, one line).
    """
    names_folder = dest.endswith((os.sep, "/")) or (os.altsep is not None and dest.endswith(os.altsep))
    path = Path(dest)
    if names_folder and not path.is_dir():
        raise FileNotFoundError(f"the folder {dest} does not exist; create it first (mkdir -p {dest})")
    if path.is_dir():
        path = path / posixpath.basename(key)
    parent = path.parent
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {path}: the folder {parent} does not exist; create it first (mkdir -p {parent})"
        )
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; name a file, or another folder to write into")
    if path.exists() and not force:
        raise FileExistsError(f"{path} already exists; pass --force to overwrite it")
    return path
