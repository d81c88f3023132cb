"""Issue 9 on the operators: the download operator refuses tampering by default; uploads pass
``matdesc`` and ``bind_integrity_tag`` through; XCom results carry the integrity status.

Observed defect (before the change): ``EncryptedOSSToLocalFilesystemOperator`` defaulted to
``integrity="if-present"``, so an object stripped of ``x-oss-meta-osscse-integrity`` with flipped
ciphertext bits was decrypted to the altered plaintext and the task succeeded; an object swapped
under another name verified. Tampering happens at rest on the local OSS server
(``overwrite_stored``); reads go through the real operator, hook, OpenBao Transit key and oss2.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_osscse.exceptions import IntegrityError, UnauthenticatedObjectError
from airflow_provider_osscse.hooks.encrypted_oss import EncryptedOSSHook
from airflow_provider_osscse.operators.encrypted_oss_to_local import EncryptedOSSToLocalFilesystemOperator
from airflow_provider_osscse.operators.local_to_encrypted_oss import LocalFilesystemToEncryptedOSSOperator
from airflow_provider_osscse.operators.oss_to_encrypted_oss import OSSToEncryptedOSSOperator
from airflow_provider_osscse.operators.sql_to_encrypted_oss import SqlToEncryptedOSSOperator
from tests.operators.fixtures import TEST_BUCKET, TRANSIT_CMK, seed

pytestmark = pytest.mark.usefixtures("osscse_services")

INTEGRITY_HEADER = "x-oss-meta-osscse-integrity"
MATDESC_HEADER = "x-oss-meta-client-side-encryption-matdesc"


@pytest.fixture
def prefix() -> str:
    return f"ops-integrity/{uuid.uuid4().hex}/"


def upload(key: str, data: bytes) -> None:
    EncryptedOSSHook("oss_default", cmk=TRANSIT_CMK).upload([data], key, TEST_BUCKET)


def download(source_key: str, dest: Path, **kwargs: Any) -> EncryptedOSSToLocalFilesystemOperator:
    return EncryptedOSSToLocalFilesystemOperator(
        task_id="down",
        source_key=source_key,
        dest_path=str(dest),
        source_bucket=TEST_BUCKET,
        decrypt_cmks=[TRANSIT_CMK],
        **kwargs,
    )


def strip_tag_and_flip_bits(server: Any, key: str) -> None:
    stored = server.stored_object(TEST_BUCKET, key)
    metadata = dict(stored.metadata)
    assert metadata.pop(INTEGRITY_HEADER)
    data = bytearray(stored.data)
    data[7] ^= 0x04
    server.overwrite_stored(TEST_BUCKET, key, bytes(data), metadata=metadata)


def files_under(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.rglob("*")) if directory.exists() else []


def test_download_operator_defaults_to_the_hook_default_integrity_none() -> None:
    op = EncryptedOSSToLocalFilesystemOperator(task_id="d", source_key="k", dest_path="/tmp/x")
    assert op.integrity is None
    with pytest.raises(ValueError, match="reqiure"):
        EncryptedOSSToLocalFilesystemOperator(task_id="d", source_key="k", dest_path="/tmp/x", integrity="reqiure")


def test_stripped_tag_and_flipped_bits_fail_the_download_by_default_and_leave_no_file(
    osscse_services: dict,
    prefix: str,
    tmp_path: Path,
) -> None:
    key = prefix + "orders.csv"
    upload(key, b"id,amount\n1,100\n")
    strip_tag_and_flip_bits(osscse_services["oss"], key)
    with pytest.raises(UnauthenticatedObjectError, match="integrity='if-present'"):
        download(key, tmp_path / "out" / "orders.csv").execute({})
    assert files_under(tmp_path / "out") == []
    # Only an explicit opt-in reads it, and then the result says it is unauthenticated.
    op = download(key, tmp_path / "out" / "orders.csv", integrity="if-present")
    result = op.execute({})
    assert result["integrity"] == "unauthenticated"
    assert (tmp_path / "out" / "orders.csv").read_bytes() != b"id,amount\n1,100\n"  # what the attacker made


def test_unauthenticated_download_is_logged_at_warning(osscse_services: dict, prefix: str, tmp_path: Path) -> None:
    """The operator's ``self.log`` is Airflow 3's structlog task logger (not stdlib logging, so not
    ``caplog``): structlog's ``capture_logs`` sees its events."""
    import structlog

    key = prefix + "untagged.csv"
    upload(key, b"plain enough")
    stored = osscse_services["oss"].stored_object(TEST_BUCKET, key)
    osscse_services["oss"].overwrite_stored(
        TEST_BUCKET, key, metadata={k: v for k, v in stored.metadata.items() if k != INTEGRITY_HEADER}
    )
    op = download(key, tmp_path / "u.csv", integrity="if-present")
    with structlog.testing.capture_logs() as events:
        assert op.execute({})["integrity"] == "unauthenticated"
    assert any(e["log_level"] == "warning" and "WITHOUT integrity verification" in str(e["event"]) for e in events)


def test_tampered_tagged_object_fails_the_task_and_leaves_no_file(
    osscse_services: dict,
    prefix: str,
    tmp_path: Path,
) -> None:
    key = prefix + "big.bin"
    upload(key, b"0123456789" * 300_000)
    stored = bytearray(osscse_services["oss"].stored_object(TEST_BUCKET, key).data)
    stored[-5] ^= 0x01
    osscse_services["oss"].overwrite_stored(TEST_BUCKET, key, bytes(stored))
    with pytest.raises(IntegrityError):
        download(key, tmp_path / "out" / "big.bin").execute({})
    assert files_under(tmp_path / "out") == []


def test_object_swapped_under_another_name_fails_the_prefix_download(
    osscse_services: dict,
    prefix: str,
    tmp_path: Path,
) -> None:
    upload(prefix + "a.csv", b"for a")
    upload(prefix + "b.csv", b"for b")
    a = osscse_services["oss"].stored_object(TEST_BUCKET, prefix + "a.csv")
    osscse_services["oss"].overwrite_stored(TEST_BUCKET, prefix + "b.csv", a.data, metadata=dict(a.metadata))
    with pytest.raises(IntegrityError, match="bound"):
        download(prefix, tmp_path / "out").execute({})
    assert "b.csv" not in files_under(tmp_path / "out")


def test_verified_download_xcom_reports_integrity_verified(prefix: str, tmp_path: Path) -> None:
    upload(prefix + "ok.csv", b"fine")
    result = download(prefix + "ok.csv", tmp_path / "ok.csv").execute({})
    assert result["integrity"] == "verified" and (tmp_path / "ok.csv").read_bytes() == b"fine"


# ------------------------------------------------------------------ upload operators
def test_local_upload_passes_matdesc_and_writes_bound_tags_unless_told_otherwise(
    osscse_services: dict,
    prefix: str,
    tmp_path: Path,
) -> None:
    src = tmp_path / "report.csv"
    src.write_bytes(b"a,b\n1,2\n")
    op = LocalFilesystemToEncryptedOSSOperator(
        task_id="up",
        source_path=str(src),
        dest_key=prefix + "bound.csv",
        dest_bucket=TEST_BUCKET,
        cmk=TRANSIT_CMK,
        matdesc={"team": "{{ params.team }}"},
    )
    assert "matdesc" in op.template_fields
    op.matdesc = {"team": "etl"}  # as rendered
    result = op.execute({})
    stored = osscse_services["oss"].stored_object(TEST_BUCKET, prefix + "bound.csv").metadata
    assert stored[MATDESC_HEADER] == '{"team":"etl"}' and ";bind=" in stored[INTEGRITY_HEADER]
    assert result["integrity"] == "tagged"

    unbound_result = LocalFilesystemToEncryptedOSSOperator(
        task_id="up2",
        source_path=str(src),
        dest_key=prefix + "unbound.csv",
        dest_bucket=TEST_BUCKET,
        cmk=TRANSIT_CMK,
        bind_integrity_tag=False,
    ).execute({})
    assert unbound_result["integrity"] == "tagged-unbound"
    unbound = osscse_services["oss"].stored_object(TEST_BUCKET, prefix + "unbound.csv")
    assert ";bind=" not in unbound.metadata[INTEGRITY_HEADER] and MATDESC_HEADER not in unbound.metadata
    # What bind_integrity_tag=False gives up: the object replayed under another name still verifies.
    osscse_services["oss"].overwrite_stored(
        TEST_BUCKET, prefix + "elsewhere.csv", unbound.data, metadata=dict(unbound.metadata)
    )
    assert download(prefix + "elsewhere.csv", tmp_path / "e.csv").execute({})["integrity"] == "verified"


def test_sql_and_oss_upload_operators_pass_matdesc_and_bind_integrity_tag(
    osscse_services: dict,
    prefix: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime as dt

    db = tmp_path / "orders.db"
    seed.create_sqlite_orders(db, seed.order_rows(dt.date(2024, 1, 1), 1, per_day=2))
    monkeypatch.setenv("AIRFLOW_CONN_INTEGRITY_SQLITE", seed.sqlite_connection_json(db))
    sql = SqlToEncryptedOSSOperator(
        task_id="export",
        conn_id="integrity_sqlite",
        sql="SELECT id FROM orders",
        dest_bucket=TEST_BUCKET,
        dest_key=prefix + "export.csv",
        cmk=TRANSIT_CMK,
        matdesc={"purpose": "audit"},
        bind_integrity_tag=False,
    )
    assert "matdesc" in sql.template_fields
    assert sql.execute({})["integrity"] == "tagged-unbound"
    exported = osscse_services["oss"].stored_object(TEST_BUCKET, prefix + "export.csv").metadata
    assert exported[MATDESC_HEADER] == '{"purpose":"audit"}' and ";bind=" not in exported[INTEGRITY_HEADER]

    osscse_services["bucket"].put_object(prefix + "plain/one.csv", b"id\n1\n")
    enc = OSSToEncryptedOSSOperator(
        task_id="enc",
        source_key=prefix + "plain/one.csv",
        dest_key=prefix + "enc/one.csv",
        source_bucket=TEST_BUCKET,
        dest_bucket=TEST_BUCKET,
        cmk=TRANSIT_CMK,
        matdesc={"purpose": "audit"},
    )
    assert "matdesc" in enc.template_fields
    (result,) = enc.execute({})
    assert result["verified"] is True and result["read_back_integrity"] == "verified"
    assert result["integrity"] == "tagged"
    copied = osscse_services["oss"].stored_object(TEST_BUCKET, prefix + "enc/one.csv").metadata
    assert copied[MATDESC_HEADER] == '{"purpose":"audit"}' and ";bind=" in copied[INTEGRITY_HEADER]
