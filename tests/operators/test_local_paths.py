"""Object keys cannot escape the download directory; local sources map to keys predictably."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_osscse.exceptions import UnsafeObjectKeyError
from airflow_provider_osscse.operators.local_paths import (
    destination_for_key,
    expand_local_source,
    key_for_file,
    safe_relative_key,
)


@pytest.mark.parametrize(
    "key",
    [
        "data/../../etc/passwd",
        "/etc/passwd",
        "data/..",
        "data/a\\..\\b",
        "data/a\x00b",
        "data//x",
        "data/./x",
        "C:/windows/x",
        "data/",
    ],
)
def test_hostile_keys_are_refused_by_name(key: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafeObjectKeyError) as err:
        destination_for_key(tmp_path, key, "data/" if key.startswith("data/") else "")
    assert repr(key) in str(err.value)


def test_key_below_prefix_maps_inside_destination(tmp_path: Path) -> None:
    assert destination_for_key(tmp_path, "exports/2024/a.csv", "exports/") == (tmp_path / "2024" / "a.csv").resolve()
    assert safe_relative_key("exports/a.csv", "exports").as_posix() == "a.csv"


def test_key_outside_prefix_is_refused() -> None:
    with pytest.raises(UnsafeObjectKeyError, match="not below prefix"):
        safe_relative_key("other/a.csv", "exports/")


def test_symlink_inside_destination_pointing_out_is_refused(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafeObjectKeyError, match="resolves outside"):
        destination_for_key(dest, "p/link/escape.txt", "p/")


def test_directory_glob_and_single_file_sources_give_keys(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("a.csv", "b.txt", "sub/c.csv"):
        (tmp_path / name).write_text(name)
    root, files = expand_local_source(tmp_path)
    assert [key_for_file(f, root, "in") for f in files] == ["in/a.csv", "in/b.txt", "in/sub/c.csv"]
    root, files = expand_local_source(str(tmp_path / "**" / "*.csv"))
    assert [key_for_file(f, root, "csv/") for f in files] == ["csv/a.csv", "csv/sub/c.csv"]
    root, files = expand_local_source(tmp_path / "b.txt")
    assert key_for_file(files[0], root, "x/y.txt") == "x/y.txt"
    assert key_for_file(files[0], root, "x/") == "x/b.txt"


def test_missing_source_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        expand_local_source(tmp_path / "nope")
