"""Plaintext never lands on disk outside the user's own (verified) file, and bad input loses nothing.

Disk: ``TMPDIR`` / ``tempfile.tempdir`` point at a test directory; every file there *and every open
file descriptor pointing there* (a spool made with ``O_TMPFILE`` has no name in any listing) is read
while the upload runs — from the hook's progress callback, which fires on a worker thread while the
spool is open, and from a watcher thread for the SQL export — and searched for the plaintext marker.

Loss: a failed verification leaves no file (and an earlier file untouched); a source that fails
mid-way leaves no object and no multipart upload; oversized metadata fails before OSS is contacted;
and the ``osscse`` command reports each of these on one stderr line with a non-zero status.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.cli import main
from airflow_provider_osscse.exceptions import IntegrityError, MetadataTooLargeError
from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator
from tests.operators.fixtures import seed

from .conftest import BUCKET, PART, THRESHOLD, SecurityEnv

MARKER = b"PLAINTEXT-MARKER-"


def _plaintext(size: int) -> bytes:
    """Recognisable plaintext: the marker every 32 bytes, so any spooled slice of it would show."""
    line = MARKER + b"0123456789abcd\n"
    return (line * (size // len(line) + 1))[:size]


class DiskWatch:
    """Reads every file under ``folders`` and every open fd of this process pointing into them."""

    def __init__(self, *folders: Path) -> None:
        self.folders = [str(f.resolve()) for f in folders]
        self.seen: dict[str, bool] = {}  # path or fd target -> held the marker
        self._lock = threading.Lock()

    def _record(self, name: str, read: Callable[[], bytes]) -> None:
        try:
            data = read()
        except OSError:
            return  # gone between listing and reading
        with self._lock:
            self.seen[name] = self.seen.get(name, False) or MARKER in data

    def scan(self) -> None:
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            if any(target.startswith(f) for f in self.folders):
                self._record(target, lambda fd=fd: Path(f"/proc/self/fd/{fd}").read_bytes())
        for folder in self.folders:
            for path in Path(folder).rglob("*"):
                if path.is_file():
                    self._record(str(path), path.read_bytes)

    def plaintext_files(self, allowed: set[str] = frozenset()) -> list[str]:
        return [name for name, hit in self.seen.items() if hit and name not in allowed]

    def background(self) -> Callable[[], None]:
        """Scan continuously on a thread until the returned ``stop()`` is called."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.is_set():
                self.scan()
                stop.wait(0.002)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()

        def finish() -> None:
            stop.set()
            thread.join()
            self.scan()

        return finish


@pytest.fixture
def temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private temporary directory for everything this process (and SQLite) creates."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _no_uploads(security_env: SecurityEnv, key: str) -> bool:
    return not [u for u in security_env.oss.list_multipart_uploads(BUCKET) if u.key == key]


# ------------------------------------------------------------------------------------ plaintext on disk
def test_iterator_upload_above_threshold_spools_only_ciphertext(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    temp_dir: Path,
    tmp_path: Path,
) -> None:
    watch = DiskWatch(temp_dir)
    hook = make_hook("vault-transit", progress_callback=lambda _snap: watch.scan(), max_workers=1)
    data = _plaintext(4 * PART + 11)
    hook.upload(iter([data[i : i + 65536] for i in range(0, len(data), 65536)]), "disk/spooled")
    assert watch.seen, "the spool was never observed: the watch would prove nothing"
    assert watch.plaintext_files() == []
    assert list(temp_dir.iterdir()) == []  # and the spool is gone
    assert hook.read("disk/spooled") == data


def test_download_writes_plaintext_only_to_the_destination_folder_and_temp_dir_stays_clean(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    temp_dir: Path,
    tmp_path: Path,
) -> None:
    hook = make_hook("rsa-file")
    data = _plaintext(3 * PART)
    hook.upload(io.BytesIO(data), "disk/download")
    dest = tmp_path / "dest"
    dest.mkdir()
    watch = DiskWatch(temp_dir)
    stop = watch.background()
    try:
        hook.download("disk/download", dest / "out.csv")
    finally:
        stop()
    assert watch.plaintext_files() == [] and list(temp_dir.iterdir()) == []
    assert [p.name for p in dest.iterdir()] == ["out.csv"] and (dest / "out.csv").read_bytes() == data


def test_sql_export_above_threshold_never_puts_plaintext_rows_on_disk(
    security_env: SecurityEnv,
    temp_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The export streams rows into the hook; above the 32 MiB default threshold that is the spool
    path. SQLite's own temp files would honour ``TMPDIR`` too, so they are watched as well."""
    db = tmp_path / "db" / "orders.db"
    seed.create_sqlite_orders(db, seed.order_rows(dt.date(2024, 1, 1), 1, per_day=2))
    monkeypatch.setenv("AIRFLOW_CONN_SEC_SQLITE_BIG", seed.sqlite_connection_json(db))
    filler = (MARKER + b"x" * 80).decode()
    rows = 33 * 2**20 // (len(filler) + 8) + 1  # just above the operator's 32 MiB threshold
    op = SqlToEncryptedOSSOperator(
        task_id="big",
        conn_id="sec_sqlite_big",
        dest_key="disk/export.csv",
        oss_conn_id="oss_sec",
        cmk=security_env.cmks["rsa-file"],
        batch_size=20_000,
        sql=f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT {rows}) "
        f"SELECT i, '{filler}' AS payload FROM n",
    )
    watch = DiskWatch(temp_dir, db.parent)
    stop = watch.background()
    try:
        result = op.execute({})
    finally:
        stop()
    assert result["rows"] == rows and result["parts"] > 1, "the export did not take the multipart spool path"
    assert any("(deleted)" in name or "spool" in name for name in watch.seen), "spool never observed"
    assert watch.plaintext_files(allowed={str(db.resolve())}) == []
    assert list(temp_dir.iterdir()) == []


# ------------------------------------------------------------------------------------ loses nothing
@pytest.mark.parametrize("size", [1000, 3 * PART + 5])
def test_download_failing_verification_leaves_no_file_and_keeps_the_earlier_one(
    size: int,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    temp_dir: Path,
    tmp_path: Path,
) -> None:
    hook = make_hook("rsa-file")
    key = f"loss/tampered-{size}"
    hook.upload(io.BytesIO(_plaintext(size)), key)
    stored = bytearray(security_env.oss.stored_object(BUCKET, key).data)
    stored[size // 2] ^= 0x01
    security_env.oss.overwrite_stored(BUCKET, key, bytes(stored))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(IntegrityError, match=r"integrity|altered|tampered"):
        hook.download(key, dest / "new.csv")
    (dest / "old.csv").write_bytes(b"earlier, good version")
    with pytest.raises(IntegrityError):
        hook.download(key, dest / "old.csv")
    assert [p.name for p in dest.iterdir()] == ["old.csv"]
    assert (dest / "old.csv").read_bytes() == b"earlier, good version"
    assert list(temp_dir.iterdir()) == []


def test_iterator_raising_mid_way_leaves_no_object_no_upload_and_no_spool(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    temp_dir: Path,
) -> None:
    def source() -> Iterator[bytes]:
        for _ in range(5):  # 5 x 64 KiB: already past the 200 KiB threshold, so spooling
            yield _plaintext(65536)
        raise ConnectionResetError("database cursor lost")

    hook = make_hook("vault-transit")
    with pytest.raises(ConnectionResetError, match="cursor lost"):
        hook.upload(source(), "loss/iterator")
    assert not hook.exists("loss/iterator") and _no_uploads(security_env, "loss/iterator")
    assert list(temp_dir.iterdir()) == []


def _truncating_upload(make_hook: Callable[..., Any], tmp_path: Path, key: str) -> BaseException:
    """Upload a 5-part file that is cut short once the first part was sent (from the progress
    callback, i.e. while the upload is in flight); returns the error the upload raised."""
    path = tmp_path / "growing.csv"
    path.write_bytes(_plaintext(5 * PART))
    truncated = threading.Event()

    def truncate(_snap: Any) -> None:
        if not truncated.is_set():
            truncated.set()
            os.truncate(path, PART + 10)

    hook = make_hook("rsa-file", progress_callback=truncate, max_workers=1)
    with pytest.raises(Exception, match="shrank") as info:  # callers check the type
        hook.upload(str(path), key)
    assert truncated.is_set()
    return info.value


def test_file_truncated_during_multipart_upload_is_aborted_leaving_nothing(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    tmp_path: Path,
) -> None:
    error = _truncating_upload(make_hook, tmp_path, "loss/truncated")
    assert "shrank" in str(error)
    hook = make_hook(None)
    assert not hook.exists("loss/truncated") and _no_uploads(security_env, "loss/truncated")


def test_file_truncated_during_upload_is_reported_as_a_source_error_without_retries(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    tmp_path: Path,
    debug_logs: Callable[..., str],
) -> None:
    error = _truncating_upload(make_hook, tmp_path, "loss/truncated-clear")
    assert isinstance(error, OSError) and str(error).startswith("source shrank")
    assert "retry" not in debug_logs(new_only=True)


@pytest.mark.parametrize("source_kind", ["bytes", "iterator-multipart"])
def test_oversized_metadata_is_refused_with_a_clear_message_and_nothing_stored(
    source_kind: str,
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    debug_logs: Callable[..., str],
) -> None:
    hook = make_hook("rsa-file")
    key = f"loss/metadata-{source_kind}"
    data = _plaintext(THRESHOLD + PART)
    source: Any = io.BytesIO(data[:1000]) if source_kind == "bytes" else iter([data])
    hook.get_bucket()  # build the client first: only the upload's own requests are of interest
    debug_logs()
    with pytest.raises(MetadataTooLargeError, match=r"8192|limit") as info:
        hook.upload(source, key, metadata={"notes": "n" * 9000})
    assert "shorten" in str(info.value) and key in str(info.value)
    assert f"/{BUCKET}/" not in debug_logs(new_only=True), "OSS was contacted for metadata it could never store"
    assert not hook.exists(key) and _no_uploads(security_env, key)


def test_oversized_metadata_fails_before_the_key_service_is_contacted(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    debug_logs: Callable[..., str],
) -> None:
    hook = make_hook("vault-transit")
    # Resolve the hook's CMK first (a token lookup is legitimate): only the upload's own calls count.
    hook._write_key()  # noqa: SLF001 - the hook resolves CMKs lazily and has no public way to warm up
    debug_logs()
    with pytest.raises(MetadataTooLargeError):
        hook.upload(iter([b"x" * 10]), "loss/metadata-early", metadata={"notes": "n" * 9000})
    assert "transit/encrypt" not in debug_logs(new_only=True)


def test_cli_reports_each_failure_on_one_stderr_line_and_exits_non_zero(
    security_env: SecurityEnv,
    make_hook: Callable[..., Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rsa = security_env.cmks["rsa-file"]
    hook = make_hook("rsa-file")
    hook.upload(io.BytesIO(b"cli payload " * 100), "cli/tampered")
    stored = bytearray(security_env.oss.stored_object(BUCKET, "cli/tampered").data)
    stored[3] ^= 0x01
    security_env.oss.overwrite_stored(BUCKET, "cli/tampered", bytes(stored))
    big_meta = tmp_path / "meta.bin"
    big_meta.write_bytes(b"payload")
    cases = [
        (["get", f"oss://{BUCKET}/cli/tampered", str(tmp_path / "out"), "--cmk", rsa], "IntegrityError"),
        (
            ["put", str(big_meta), f"oss://{BUCKET}/cli/meta", "--cmk", rsa, "--meta", "n=" + "x" * 9000],
            "MetadataTooLargeError",
        ),
        (
            [
                "get",
                f"oss://{BUCKET}/cli/tampered",
                str(tmp_path / "out"),
                "--cmk",
                "vault-transit://vault_enconly/transit/osscse-security",
            ],
            "NoMatchingKeyError",
        ),
        (["put", str(tmp_path / "missing.csv"), f"oss://{BUCKET}/cli/missing", "--cmk", rsa], "FileNotFoundError"),
    ]
    capsys.readouterr()
    for argv, error in cases:
        code = main([*argv, "--oss-conn-id", "oss_sec"])
        err = capsys.readouterr().err.strip()
        assert code == 1 and err.startswith(f"osscse: {error}: "), (argv[0], err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() and [p.name for p in tmp_path.iterdir()] == ["meta.bin"]
    assert not hook.exists("cli/meta") and not hook.exists("cli/missing")
