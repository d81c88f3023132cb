"""Mapping object keys to local paths and local paths to object keys, safely.

Why: an object key is chosen by whoever can write to the bucket. A download of a prefix into a
directory must not let a key such as ``../../etc/cron.d/x``, ``/etc/passwd``, ``a\\..\\b`` or one
carrying a NUL byte write outside the destination directory. Such keys are refused by name (an
:class:`UnsafeObjectKeyError` naming the key), never silently rewritten.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path, PurePosixPath

from airflow_provider_osscse.exceptions import UnsafeObjectKeyError


def safe_relative_key(key: str, prefix: str = "") -> PurePosixPath:
    """The part of ``key`` below ``prefix`` as a relative path that cannot leave its directory.

    Refused: an empty remainder, NUL or other control characters, backslashes, a leading ``/``, a
    Windows drive (``C:``), and ``.`` / ``..`` / empty segments.
    """
    if prefix and not key.startswith(prefix):
        raise UnsafeObjectKeyError(f"object key {key!r} is not below prefix {prefix!r}")
    rest = key[len(prefix) :]
    if prefix and not prefix.endswith("/") and rest.startswith("/"):
        rest = rest[1:]  # prefix "exports" and key "exports/a.csv" give "a.csv"
    if not rest:
        raise UnsafeObjectKeyError(f"object key {key!r} has no name below prefix {prefix!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in rest):
        raise UnsafeObjectKeyError(f"object key {key!r} contains a control character (e.g. NUL)")
    if "\\" in rest:
        raise UnsafeObjectKeyError(f"object key {key!r} contains a backslash")
    if rest.startswith("/"):
        raise UnsafeObjectKeyError(f"object key {key!r} is an absolute path")
    segments = rest.split("/")
    if len(segments[0]) >= 2 and segments[0][1] == ":":
        raise UnsafeObjectKeyError(f"object key {key!r} starts with a drive letter")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise UnsafeObjectKeyError(f"object key {key!r} has an empty, '.' or '..' path segment")
    return PurePosixPath(*segments)


def destination_for_key(destination_dir: str | os.PathLike[str], key: str, prefix: str = "") -> Path:
    """Where ``key`` lands below ``destination_dir``; checked again after resolving symlinks."""
    base = Path(destination_dir).resolve()
    target = (base / Path(*safe_relative_key(key, prefix).parts)).resolve()
    if target != base and base not in target.parents:
        raise UnsafeObjectKeyError(f"object key {key!r} resolves outside {str(base)!r}")
    return target


def expand_local_source(source: str | os.PathLike[str]) -> tuple[Path | None, list[Path]]:
    """The files a local source names: one file, a glob, or a directory (recursively).

    Returns ``(root, files)``: ``root`` is the directory that relative key names are computed
    from (``None`` for a single file, which keeps only its name).
    """
    text = os.fspath(source)
    path = Path(text)
    if path.is_file():
        return None, [path]
    if path.is_dir():
        return path, sorted(p for p in path.rglob("*") if p.is_file())
    if glob.has_magic(text):
        matches = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        root = Path(_glob_root(text))
        return root, matches
    raise FileNotFoundError(f"local source {text!r} is not a file, a directory or a glob that exists")


def _glob_root(pattern: str) -> str:
    """The longest leading directory of ``pattern`` that contains no glob characters."""
    parts: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        parts.append(part)
    return str(Path(*parts)) if parts else "."


def key_for_file(path: Path, root: Path | None, dest_key: str) -> str:
    """The object key for ``path``: ``dest_key`` itself for a lone file, else prefix + relative path."""
    if root is None:
        if dest_key.endswith("/"):
            return dest_key + path.name
        return dest_key
    relative = path.relative_to(root).as_posix()
    prefix = dest_key if (dest_key.endswith("/") or not dest_key) else dest_key + "/"
    return prefix + relative
