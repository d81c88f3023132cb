"""Issue 11: the download operator says what happens to an existing file, by an explicit argument.

``overwrite=True`` (default, documented): a retry or re-run writes the same path again, replacing the
file with a verified one. ``overwrite=False``: an existing destination fails the task before any
object is transferred (``osscse get`` without ``--force`` does the same). Before the change an existing
file was replaced silently, with no way to ask otherwise.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK

pytestmark = pytest.mark.usefixtures("osscse_services")


def download(source_key: str, dest: Path, **kwargs: bool) -> EncryptedOSSToLocalFilesystemOperator:
    return EncryptedOSSToLocalFilesystemOperator(
        task_id="down",
        source_key=source_key,
        dest_path=str(dest),
        source_bucket=TEST_BUCKET,
        decrypt_cmks=[TRANSIT_CMK],
        **kwargs,
    )


@pytest.fixture
def prefix() -> str:
    prefix = f"ops/overwrite/{uuid.uuid4().hex}/"
    hook = EncryptedOSSHook(cmk=TRANSIT_CMK)
    hook.upload([b"new a"], f"{prefix}a.txt", TEST_BUCKET)
    hook.upload([b"new b"], f"{prefix}b.txt", TEST_BUCKET)
    return prefix


def test_by_default_a_rerun_replaces_the_file_with_the_verified_object(prefix: str, tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"from an earlier run")
    download(f"{prefix}a.txt", target).execute({})
    assert target.read_bytes() == b"new a"


def test_overwrite_false_fails_before_any_transfer_and_keeps_the_file(prefix: str, tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=r"already exist.*overwrite=True"):
        download(f"{prefix}a.txt", target, overwrite=False).execute({})
    assert target.read_bytes() == b"keep me"


def test_overwrite_false_on_a_prefix_checks_every_file_before_the_first_download(prefix: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.txt").write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match=r"b\.txt"):
        download(prefix, out, overwrite=False).execute({})
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]  # a.txt was not downloaded first
    assert (out / "b.txt").read_bytes() == b"keep me"
